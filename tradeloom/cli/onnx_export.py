"""A finished run's saved folds written as ONNX, each proven to give tradeloom's probability.

`export_run` reads a run folder as every reader of one does: its journal verified first
(`tradeloom.journal.verify`: the hash chain, and the strategy file the chain names), then
each fold of its ``models`` folder (``models/<SYMBOL>/`` for a model per symbol) through
the registry's loader (`tradeloom.plugins.model.loading.load_saved_model`: the hash the
index lists, the metadata, the library versions, the restricted unpickler or torch's
``weights_only``). A fold of scikit-learn, LightGBM or XGBoost becomes a graph over rows
(`tradeloom.cli.onnx_sklearn`), a torch fold one over windows (`tradeloom.cli.onnx_torch`);
both have the output ``probability_up``.

Each graph is then run by onnxruntime on the fold's own feature rows (its training and
predicted bars, from the run's ``features.parquet``) and compared with the fold's
prediction through tradeloom (`FoldPredictor`, `TorchFold.predict`): a difference above
`TOLERANCE` is a refusal, as is a fold that cannot be converted; never a fold left out.
``manifest.json`` beside the ``.onnx`` files says, per fold, its window, its features in
input order, the output, the check and the hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.errors import UserError
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

    from tradeloom.plugins.model.loading import LoadedModel
    from tradeloom.plugins.model.metadata import IndexEntry

__all__ = ["MANIFEST", "ONNX_LIBRARIES", "TOLERANCE", "Exported", "export_run"]

TOLERANCE = 1e-6
"""Largest difference allowed between onnxruntime's probability and tradeloom's."""

MANIFEST = "manifest.json"
"""The file beside the graphs that describes them."""

ONNX_LIBRARIES = ("onnx", "onnxruntime", "skl2onnx", "onnxmltools")
"""The ``[onnx]`` extra's modules."""

FORMAT = 1
"""The manifest's format."""


@dataclass(frozen=True)
class Exported:
    """What `export_run` wrote.

    Attributes:
        folder: Where (``--out``, or the run's ``onnx`` folder).
        folds: Each fold's manifest entry, in the order written.
    """

    folder: Path
    folds: tuple[Mapping[str, Any], ...]


def export_run(run_dir: Path, out: Path | None = None) -> Exported:
    """Write every saved fold of the run ``run_dir`` as ONNX into ``out``.

    Raises:
        UserError: One line: the extra is missing; not a run folder; its journal or a
            model file is refused; no models were saved; a fold cannot be exported, or
            its graph does not give tradeloom's probability (naming the fold and why).
    """
    from tradeloom.runtime.extras import require

    for module in ONNX_LIBRARIES:
        require(module, "tradeloom models export --onnx")
    folders = _model_folders(run_dir)
    trusted = _trusted_packages(run_dir)
    features = _features(run_dir)
    target = run_dir / "onnx" if out is None else out
    written: list[Mapping[str, Any]] = []
    for folder, symbol in folders:
        dest = target if symbol is None else target / folder.name
        written.extend(_export_folder(run_dir, folder, symbol, dest, trusted, features))
    return Exported(target, tuple(written))


def _model_folders(run_dir: Path) -> list[tuple[Path, str | None]]:
    from tradeloom.journal import journal_path, verify
    from tradeloom.plugins.model.registry import INDEX_FILE, MODELS_DIR

    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run directory")
    journal = journal_path(run_dir)
    if not journal.is_file():
        raise UserError(
            f"{run_dir}: not a run directory (no {journal.name}); give the folder a run wrote"
        )
    verify(journal)  # the chain, and the strategy.yaml its first record names
    models = run_dir / MODELS_DIR
    if (models / INDEX_FILE).is_file():
        return [(models, None)]
    own = sorted(p.parent for p in models.glob(f"*/{INDEX_FILE}"))
    if not own:
        raise UserError(
            f"{run_dir} holds no saved models ({MODELS_DIR}/{INDEX_FILE} not found); give "
            "the folder of a run whose model trained (an sklearn or torch model)"
        )
    return [(folder, folder.name) for folder in own]


def _trusted_packages(run_dir: Path) -> tuple[str, ...]:
    """The packages whose estimators the run's own strategy file names (verified with
    its journal): a run that trained a LightGBM model trusts lightgbm to load it."""
    from tradeloom.files.reading import read_yaml_kept
    from tradeloom.journal.owner import STRATEGY_FILE

    path = run_dir / STRATEGY_FILE
    if not path.is_file():
        return ()
    document = read_yaml_kept(path, "a run's strategy file")
    model = document.get("model") if isinstance(document, Mapping) else None
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key == "estimator" and isinstance(item, str):
                    found.append(item.split(".")[0])
                elif key == "trusted_packages" and isinstance(item, list):
                    found.extend(str(p) for p in item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(model)
    return tuple(p for p in dict.fromkeys(found) if p != "sklearn")


def _features(run_dir: Path) -> pd.DataFrame | None:
    from tradeloom.runtime.lazy import pandas as pd

    path = run_dir / "features.parquet"
    return pd.read_parquet(path) if path.is_file() else None


def _export_folder(
    run_dir: Path,
    folder: Path,
    symbol: str | None,
    dest: Path,
    trusted: tuple[str, ...],
    features: pd.DataFrame | None,
) -> list[Mapping[str, Any]]:
    from tradeloom.plugins.model.loading import read_index

    index = _refused(run_dir, None, lambda: read_index(folder))
    graphs: list[tuple[str, bytes]] = []
    entries: list[Mapping[str, Any]] = []
    for entry in index.folds:
        loaded = _refused(run_dir, entry.fold, lambda e=entry: _load(folder, e, trusted))
        graph, entry_info = _graph(run_dir, entry, loaded, features, symbol)
        name = Path(entry.model.file).with_suffix(".onnx").name
        data = graph.SerializeToString()
        graphs.append((name, data))
        entries.append(
            {
                "fold": entry.fold,
                "file": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "source": {"file": entry.model.file, "sha256": loaded.sha256},
                "reason": entry.reason,
                "train_window": loaded.metadata.training_window.model_dump(mode="json"),
                "predict_window": loaded.metadata.predict_window.model_dump(mode="json"),
                **entry_info,
            }
        )
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in graphs:
        (dest / name).write_bytes(data)
    manifest = {
        "format": FORMAT,
        "run": str(run_dir),
        "strategy": index.strategy,
        "symbol": symbol,
        "libraries": _libraries(),
        "tolerance": TOLERANCE,
        "folds": entries,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
    (dest / MANIFEST).write_text(text, encoding="utf-8")
    return entries


def _refused(run_dir: Path, fold: int | None, work: Any) -> Any:
    from tradeloom.cli.onnx_sklearn import NotExported
    from tradeloom.plugins.component import ParamError

    where = f"{run_dir}: " if fold is None else f"{run_dir}: fold {fold}: "
    try:
        return work()
    except ParamError as exc:
        raise UserError(f"{where}{exc.message}") from None
    except NotExported as exc:
        raise UserError(f"{where}cannot export it: {exc}") from None


def _load(folder: Path, entry: IndexEntry, trusted: tuple[str, ...]) -> LoadedModel:
    from tradeloom.plugins.model.loading import ModelRequest, load_saved_model

    request = ModelRequest(
        path=folder / entry.model.file, sha256=entry.model.sha256, trusted_packages=trusted
    )
    return load_saved_model(request, feature_spec=None, columns=())


def _graph(
    run_dir: Path,
    entry: IndexEntry,
    loaded: LoadedModel,
    features: pd.DataFrame | None,
    symbol: str | None,
) -> tuple[Any, dict[str, Any]]:
    from tradeloom.cli.onnx_sklearn import INPUT, OUTPUT, sklearn_graph
    from tradeloom.plugins.model.loading import WEIGHTS_SUFFIX

    columns = list(loaded.bundled.columns)
    kind = str(loaded.bundled.label.get("kind", "direction"))
    torch = loaded.source.suffix == WEIGHTS_SUFFIX
    if torch:
        from tradeloom.cli.onnx_torch import EXPORTER, WINDOWS, torch_graph

        graph = _refused(run_dir, entry.fold, lambda: torch_graph(loaded.fitted))
        window = int(loaded.fitted.window)
        shape: list[Any] = ["n", window, len(columns)]
        name, exporter = WINDOWS, EXPORTER
    else:
        graph = _refused(
            run_dir, entry.fold, lambda: sklearn_graph(loaded.fitted, len(columns), kind)
        )
        window, shape, name = 1, ["n", len(columns)], INPUT
        exporter = "skl2onnx" + (
            " + onnxmltools"
            if loaded.metadata.estimator.import_path.split(".")[0] != "sklearn"
            else ""
        )
    checked, difference = 0, None
    if features is not None:
        bars = (
            loaded.metadata.training_window.start_bar,
            loaded.metadata.predict_window.end_bar,
        )
        x, rows = _fold_rows(features, columns, bars, symbol, window)
        if len(rows):
            expected, inputs = _expected(loaded, x, rows, torch, window)
            got = _onnx_run(graph, name, inputs)
            difference = float(np.max(np.abs(got - expected)))
            checked = len(rows)
            if not difference <= TOLERANCE:
                raise UserError(
                    f"{run_dir}: fold {entry.fold}: cannot export it: onnxruntime's "
                    f"probabilities differ from tradeloom's by up to {difference:.3g} on its "
                    f"{checked} rows (at most {TOLERANCE:g} is allowed)"
                )
    info = {
        "label": kind,
        "estimator": loaded.metadata.estimator.import_path,
        "calibration": loaded.bundled.training.calibration or None,
        "exporter": exporter,
        "input": {"name": name, "dtype": "float64", "shape": shape},
        "features": columns,
        "output": OUTPUT,
        "checked_rows": checked,
        "max_difference": difference,
        "detector": (
            "not exported (the fold's anomaly detector gates positions; probability_up "
            "does not depend on it)"
            if loaded.detector is not None
            else None
        ),
    }
    return graph, info


def _fold_rows(
    features: pd.DataFrame,
    columns: Sequence[str],
    bars: tuple[int, int],
    symbol: str | None,
    window: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """The feature rows of the fold's symbol(s), and the positions among them of its
    bars (``bars``: its first training bar and last predicted bar) whose window of rows
    is finite."""
    from tradeloom.backtest.saved_models import folder_name

    frames = [features]
    if "symbol" in features.columns:
        groups = [
            g
            for s, g in features.groupby("symbol", sort=True)
            if symbol is None or folder_name(str(s)) == symbol
        ]
        frames = groups or frames
    blocks: list[npt.NDArray[np.float64]] = []
    rows: list[npt.NDArray[np.intp]] = []
    offset = 0
    for frame in frames:
        x = frame[list(columns)].to_numpy(dtype=np.float64)
        finite = np.isfinite(x).all(axis=1)
        counts = np.concatenate([[0], np.cumsum(~finite)])
        ends = np.arange(len(x))
        start = np.maximum(ends - window + 1, 0)
        whole = (ends >= window - 1) & (counts[ends + 1] - counts[start] == 0)
        span = (ends >= bars[0]) & (ends <= bars[1])
        rows.append(np.flatnonzero(whole & span) + offset)
        blocks.append(x)
        offset += len(x)
    return np.concatenate(blocks), np.concatenate(rows)


def _expected(
    loaded: LoadedModel,
    x: npt.NDArray[np.float64],
    rows: npt.NDArray[np.intp],
    torch: bool,
    window: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    if torch:
        fold = loaded.fitted
        windows = np.stack([x[r - window + 1 : r + 1] for r in rows])
        return np.asarray(fold.predict(windows), np.float64), windows
    from tradeloom.plugins.model.fold_predictor import FoldPredictor

    kind = str(loaded.bundled.label.get("kind", "direction"))
    return FoldPredictor(loaded.fitted, kind).predict(x[rows]), x[rows]


def _onnx_run(graph: Any, name: str, inputs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    from tradeloom.cli.onnx_sklearn import OUTPUT

    return np.asarray(session.run([OUTPUT], {name: inputs})[0], dtype=np.float64)


def _libraries() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ("tradeloom", "onnx", "onnxruntime", "skl2onnx", "onnxmltools", "scikit-learn",
             "lightgbm", "xgboost", "torch")  # fmt: skip
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
