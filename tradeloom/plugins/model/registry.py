"""Save every trained fold of a run in its ``models`` folder, with what it takes to trust it.

For each fold ``models/fold-NNNN.pkl``: one pickle (protocol 5) of the fitted estimator,
its anomaly detector if it has one, and the metadata a loaded model acts on (see
`tradeloom.plugins.model.bundle`), so that the file's SHA-256 covers all three; a fold
that saves itself (`SavesItself`: a torch network's ``fold-NNNN.pt``, weights only,
`tradeloom.plugins.model.torch_fold`) writes its own file with the same metadata inside. Beside it
``fold-NNNN.json``, the readable description: the feature specification and its hash,
the training and prediction windows as bar indices and UTC times, the hash of the
training data, label, estimator and params, library versions, the feature distribution
drift monitoring compares against, and the SHA-256 and size of the pickle.
``models/index.json`` lists the folds in training order and names the latest. Reading
them back is `tradeloom.plugins.model.loading`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    # imported where a fold is saved: the metadata's pydantic models cost a run that
    # saves none (a precomputed or loaded model) ~25 ms of its start
    from tradeloom.plugins.model.metadata import (
        BundledMetadata,
        EstimatorInfo,
        FileInfo,
        IndexEntry,
        ModelIndex,
        ModelMetadata,
    )

__all__ = [
    "INDEX_FILE",
    "MODELS_DIR",
    "ModelFiles",
    "SavedModels",
    "file_info",
    "label_record",
    "model_files",
    "registry_metrics",
    "save_models",
    "top_package",
]


@runtime_checkable
class TrainsFolds(Protocol):
    """A model whose trained folds the registry saves (`TrainedFold` items, in order)."""

    trained: Sequence[Any]


@runtime_checkable
class EstimatorModel(Protocol):
    """A model configured with an estimator, a scaler and a label (the built-in sklearn
    model): its folds' metadata describe them."""

    estimator: Any
    scaler: str
    label: Any


@runtime_checkable
class LabelledModel(Protocol):
    """A model trained on a declared label (`LabelParams`): its folds' metadata record it."""

    label: Any


@runtime_checkable
class SavesItself(Protocol):
    """A fitted fold that writes its own file, weights and numbers rather than a pickle
    (a torch network, `tradeloom.plugins.model.torch_fold`)."""

    suffix: str
    """Its file's suffix (``.pt``)."""

    library: str
    """The library whose version its metadata records (``torch``)."""

    def estimator_info(self) -> dict[str, Any]:
        """Return its `EstimatorInfo` fields: import path, name, params, scaler."""
        ...

    def saved_bytes(self, metadata: BundledMetadata) -> bytes:
        """Return its file's bytes, ``metadata`` inside them."""
        ...


@runtime_checkable
class LoadedFromFile(Protocol):
    """A model loaded from a saved fold (``loaded_from``: its source and SHA-256)."""

    loaded_from: Mapping[str, Any]


MODELS_DIR = "models"
"""The folder of a run directory that holds its saved models."""

INDEX_FILE = "index.json"
"""The file of `MODELS_DIR` that lists the saved folds."""


@dataclass(frozen=True)
class ModelFiles:
    """A run's saved folds as the files of its ``models`` folder, made but not written.

    Attributes:
        index: The index (``index.latest`` names the latest fold's pickle).
        files: Each file's bytes by its name in the folder (the pickles, their
            descriptions and ``index.json``), in the order they are written.
    """

    index: ModelIndex
    files: Mapping[str, bytes]

    @property
    def latest(self) -> IndexEntry:
        """Return the index entry of the latest fold."""
        return next(e for e in self.index.folds if e.model.file == self.index.latest)

    def journal_row(self) -> dict[str, Any]:
        """Return the ``models_saved`` journal payload (the folder relative to the run)."""
        latest = self.latest
        return {
            "dir": MODELS_DIR,
            "count": len(self.index.folds),
            "latest": latest.model.file,
            "sha256": latest.model.sha256,
        }

    def write(self, folder: Path) -> SavedModels:
        """Write the files into ``folder`` (created); return what was saved."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (folder / name).write_bytes(data)
        return SavedModels(folder=folder, index=self.index)


@dataclass(frozen=True)
class SavedModels:
    """What `save_models` wrote.

    Attributes:
        folder: The ``models`` folder.
        index: The index it wrote (``index.latest`` names the latest fold's pickle).
    """

    folder: Path
    index: ModelIndex

    @property
    def latest(self) -> IndexEntry:
        """Return the index entry of the latest fold."""
        return next(e for e in self.index.folds if e.model.file == self.index.latest)

    def journal_row(self) -> dict[str, Any]:
        """Return the ``models_saved`` journal payload (the folder relative to the run)."""
        return ModelFiles(self.index, {}).journal_row()


def save_models(
    folder: Path,
    model: Any,
    *,
    strategy: str,
    feature_spec: Sequence[Mapping[str, Any]],
    timestamps: pd.DatetimeIndex,
) -> SavedModels | None:
    """Save every fold in ``model.trained`` into ``folder``; return None if there is none.

    `model_files`, written: see there.
    """
    files = model_files(model, strategy=strategy, feature_spec=feature_spec, timestamps=timestamps)
    return None if files is None else files.write(folder)


def model_files(
    model: Any,
    *,
    strategy: str,
    feature_spec: Sequence[Mapping[str, Any]],
    timestamps: pd.DatetimeIndex,
) -> ModelFiles | None:
    """Return the files that save every fold in ``model.trained``; None if there is none.

    Called at the end of a run, so that folds retrained mid-run are saved too. The index
    lists the folds in ``model.trained`` order; its ``latest`` is the fold predicting the
    last bars (the model a live run would trade on). A model without ``trained``
    (``precomputed``, a loaded model) saves nothing.

    Args:
        model: The run's model; ``model.trained`` holds `TrainedFold` items in order.
        strategy: The strategy's name.
        feature_spec: The strategy's features (`StrategyConfig.feature_spec`).
        timestamps: The run's bar times, to turn bar indices into UTC times.
    """
    trained = list(model.trained) if isinstance(model, TrainsFolds) else []
    if not trained:
        return None
    from tradeloom.plugins.model.metadata import FORMAT, IndexEntry, ModelIndex

    files: dict[str, bytes] = {}
    entries: list[IndexEntry] = []
    used: set[str] = set()
    for trained_fold in trained:
        stem = _stem(trained_fold.training.fold, used)
        metadata = _save_fold(files, stem, trained_fold, model, strategy, feature_spec, timestamps)
        training = metadata.training_window
        entries.append(
            IndexEntry(
                fold=metadata.training.fold,
                reason=metadata.training.reason,
                model=metadata.model,
                metadata=f"{stem}.json",
                has_detector=metadata.has_detector,
                train_start=training.start_bar,
                train_end=training.end_bar,
                train_start_time=training.start,
                train_end_time=training.end,
            )
        )
    # A health rule's retraining is appended after the scheduled folds; the latest model
    # is the one predicting the last bars (of two, the one that starts predicting later).
    latest = max(
        range(len(trained)),
        key=lambda i: (trained[i].training.predict_end, trained[i].training.predict_start, i),
    )
    index = ModelIndex(
        format=FORMAT, strategy=strategy, folds=entries, latest=entries[latest].model.file
    )
    files[INDEX_FILE] = _json_bytes(index)
    return ModelFiles(index=index, files=files)


def registry_metrics(saved: SavedModels | ModelFiles | None, model: Any) -> dict[str, Any] | None:
    """Return ``metrics.json``'s ``model_registry``: what was saved, and what was loaded.

    None for a model that neither saves folds nor was loaded from a file.
    """
    loaded = model.loaded_from if isinstance(model, LoadedFromFile) else None
    if saved is None and loaded is None and not isinstance(model, TrainsFolds):
        return None
    figures: dict[str, Any] = {"dir": None, "files": 0, "latest": None}
    if saved is not None:
        latest = saved.latest.model
        figures = {
            "dir": MODELS_DIR,  # relative to the run directory, as in the journal
            "files": len(saved.index.folds),
            "latest": {"file": latest.file, "sha256": latest.sha256},
        }
    if loaded is not None:
        figures["loaded"] = dict(loaded)
    return figures


def label_record(label: Any) -> dict[str, Any]:
    """Return ``label`` as a saved fold records it: its kind and every key it sets."""
    return dict(_json_safe(_label_keys(label)))


def file_info(path: Path, data: bytes) -> FileInfo:
    """Return the `FileInfo` of ``data`` saved as ``path``."""
    from tradeloom.plugins.model.metadata import FileInfo

    return FileInfo(file=path.name, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def top_package(import_path: str) -> str:
    """Return the top-level package of a dotted import path."""
    return import_path.split(".")[0]


def _save_fold(
    files: dict[str, bytes],
    stem: str,
    trained_fold: Any,
    model: Any,
    strategy: str,
    feature_spec: Sequence[Mapping[str, Any]],
    timestamps: pd.DatetimeIndex,
) -> ModelMetadata:
    from tradeloom.plugins.model.bundle import Bundle, dump_bundle
    from tradeloom.plugins.model.compatibility import library_versions
    from tradeloom.plugins.model.metadata import (
        FORMAT,
        BundledMetadata,
        EstimatorInfo,
        FeatureSpec,
        FoldInfo,
        ModelMetadata,
        TimeWindow,
        TrainingWindow,
    )
    from tradeloom.plugins.model.reference_info import ReferenceInfo

    training = trained_fold.training
    detector = trained_fold.detector
    spec = FeatureSpec(
        features=[dict(entry) for entry in feature_spec], columns=list(trained_fold.columns)
    )
    fitted = trained_fold.fitted
    writer = fitted if isinstance(fitted, SavesItself) else None
    estimator = (
        EstimatorInfo(**writer.estimator_info())
        if writer is not None
        else _estimator_info(model, fitted)
    )
    horizon = int(training.horizon)
    labels_end = min(training.train_end + horizon, len(timestamps) - 1)
    fields = {
        f.name: getattr(training, f.name)
        for f in dataclasses.fields(training)
        if f.metadata.get("journal", True)
        # an added field that is empty is left out: an older fold's record is unchanged
        and not (f.metadata.get("added", False) and getattr(training, f.name) == "")
    }
    label = model.label if isinstance(model, LabelledModel) else None
    training_window = TrainingWindow(
        start_bar=training.train_start,
        end_bar=training.train_end,
        start=_time(timestamps, training.train_start),
        end=_time(timestamps, training.train_end),
        labels_end=_time(timestamps, labels_end),
    )
    bundled = BundledMetadata(
        estimator=estimator.import_path,
        columns=spec.columns,
        feature_spec_sha256=spec.sha256(),
        label=_json_safe(_label_keys(label)) if label is not None else {},
        horizon=horizon,
        labels_end=training_window.labels_end,
        reference=None if training.reference is None else ReferenceInfo.of(training.reference),
        libraries=library_versions(
            writer.library if writer is not None else top_package(estimator.import_path)
        ),
        training=FoldInfo(**_json_safe(fields)),
    )
    if writer is not None:
        data, path = writer.saved_bytes(bundled), Path(f"{stem}{writer.suffix}")
    else:
        data, path = dump_bundle(Bundle(fitted, detector, bundled)), Path(f"{stem}.pkl")
    files[path.name] = data
    metadata = ModelMetadata(
        format=FORMAT,
        strategy=strategy,
        model=file_info(path, data),
        has_detector=detector is not None,
        training=bundled.training,
        training_window=training_window,
        predict_window=TimeWindow(
            start_bar=training.predict_start,
            end_bar=training.predict_end,
            start=_time(timestamps, training.predict_start),
            end=_time(timestamps, training.predict_end),
        ),
        feature_spec=spec,
        feature_spec_sha256=bundled.feature_spec_sha256,
        training_data_sha256=trained_fold.data_sha256,
        label=bundled.label,
        horizon=horizon,
        estimator=estimator,
        libraries=bundled.libraries,
        reference=bundled.reference,
    )
    assert not metadata.bundled().differences(bundled)  # one source for both copies
    files[f"{stem}.json"] = _json_bytes(metadata)
    return metadata


def _estimator_info(model: Any, fitted: Any) -> EstimatorInfo:
    from tradeloom.plugins.model.metadata import EstimatorInfo

    configured = isinstance(model, EstimatorModel)
    # a model without a configured estimator: describe the fitted one
    estimator = model.estimator if configured else fitted
    cls = type(estimator)
    get_params = getattr(estimator, "get_params", None)
    params = get_params(deep=False) if callable(get_params) else {}
    return EstimatorInfo(
        import_path=f"{cls.__module__}.{cls.__qualname__}",
        name=cls.__name__,
        params=_json_safe(dict(params)),
        scaler=str(model.scaler) if configured else "none",
    )


def _stem(fold: int, used: set[str]) -> str:
    # A fold retrained mid-run keeps its number; its files get a suffix.
    stem, n = f"fold-{fold:04d}", 1
    while stem in used:
        n += 1
        stem = f"fold-{fold:04d}-{n}"
    used.add(stem)
    return stem


def _json_bytes(record: Any) -> bytes:
    text = json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _time(timestamps: pd.DatetimeIndex, bar: int) -> datetime:
    moment: datetime = pd.Timestamp(timestamps[bar]).to_pydatetime()
    return moment


def _json_safe(value: Any) -> Any:
    """Return ``value`` with what JSON cannot hold (classes, NaN, arrays) as its repr."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return repr(value)


def _label_keys(label: Any) -> dict[str, Any]:
    recorded = getattr(label, "recorded", None)  # LabelParams: only the keys its kind sets
    return dict(recorded() if callable(recorded) else label.model_dump(mode="json"))
