"""A trained torch fold: how it predicts windows, and its file (weights, never code).

A `TorchFold` is what a fold of the ``torch`` model keeps: the network (in eval mode), its
scaler's numbers, its calibrator's numbers, and the label kind that maps its outputs to
``probability_up``. `TorchFold.predict` answers a batch of windows and one window through
the same code, in float64 from the float32 weights the fold trained; a single window's
answer may differ from a batch's in float64's last bits (a matrix product adds in
another order for one row than for many), about 1e-16 (`PARITY_NOTE`). A window is the
``window`` rows ending at a bar, of one symbol (`TorchFold.scaled_windows`, `window_rows`).

Its saved file, ``models/fold-NNNN.pt``, is one ``torch.save`` of a dict of plain types
and tensors (`dump_torch_fold`, `read_torch_fold`):

- ``format``: the registry's `FORMAT`; ``kind``: ``tradeloom.torch`` (`KIND`);
- ``network``: the architecture (`NetworkSpec.record`: the built-in network's name or
  the user's module's import path, its params, ``n_features``, ``window``, ``outputs``);
- ``state_dict``: the network's weights (float32, on the CPU);
- ``scaler``: the per-column ``mean`` and ``scale`` (float64), or None;
- ``target_scale``: what the network's output is multiplied by (``return``; else 1.0);
- ``calibrator``: the fold's calibrator as numbers (`Calibrator`), or None;
- ``epochs``: ``[trained, kept]`` (early stopping);
- ``metadata``: the `BundledMetadata`, JSON types, as a tree's bundle holds it.

``torch.load(..., weights_only=True)`` reads it: torch's unpickler admits tensors and
plain containers only, so the file cannot name code to run. The module is built again
from ``network`` (a built-in, or a user's module whose package the strategy file trusts,
`tradeloom.plugins.model.loading`) and the weights loaded strictly into it: a file whose
weights do not fit its architecture is refused. An exporter (ONNX) needs nothing else:
`read_torch_fold` gives the module, the scaler and the calibrator.

Threads: torch's intra-op pool is set to the process's native thread count
(`tradeloom.runtime.threads`, ``--threads``), as the other estimators' are.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tradeloom.plugins.model.bundle import Bundle, BundleError
from tradeloom.plugins.model.calibration import Calibrator
from tradeloom.plugins.model.fold_predictor import (
    up_probability_of_classes,
    up_probability_of_return,
)
from tradeloom.plugins.model.metadata import FORMAT, BundledMetadata, describe_invalid
from tradeloom.plugins.model.torch_networks import NetworkSpec, build_network
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.threads import native_threads

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch
    from torch import nn

__all__ = [
    "KIND",
    "PARITY_NOTE",
    "PREDICT_CHUNK",
    "TorchFold",
    "check_window",
    "configure_threads",
    "dump_torch_fold",
    "read_torch_fold",
    "scaled",
    "window_rows",
]

PREDICT_CHUNK = 4096
"""Windows predicted per forward pass in a batch (bounds the memory of a long segment)."""

PARITY_NOTE = (
    "the torch network predicts a backtest's windows in batches and a live bar's window "
    "alone (in float64, from its float32 weights): a matrix product may add a window's "
    "terms in another order for one window than for many, so paper and live may differ "
    "from the backtest in the last bits (about 1e-16)"
)


def configure_threads() -> None:
    """Run torch's intra-op pool on the process's native thread count: what ``--threads``
    (or ``TRADELOOM_THREADS``) exported as ``OMP_NUM_THREADS``, as the other native
    libraries read it (`tradeloom.runtime.threads`); else the policy's default."""
    import torch

    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    threads = int(text) if text.isdigit() and int(text) >= 1 else native_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def check_window(block: npt.NDArray[np.float64], columns: int) -> None:
    """Refuse rows that are not ``(rows, columns)``.

    Raises:
        ValueError: Naming the shape given.
    """
    if block.ndim != 2 or block.shape[1] != columns:
        raise ValueError(
            f"rows must be (rows, {columns}): one value per feature column, has shape {block.shape}"
        )


def window_rows(usable: npt.NDArray[np.bool_], window: int) -> npt.NDArray[np.bool_]:
    """Return which rows end a window of ``window`` usable rows (theirs and the ones before)."""
    bad = np.concatenate([[0], np.cumsum(~usable)])
    n = len(usable)
    ends = np.arange(n)
    complete = ends >= window - 1
    start = np.maximum(ends - window + 1, 0)
    return np.asarray(complete & (bad[ends + 1] - bad[start] == 0))


def scaled(
    x: npt.NDArray[np.float64],
    mean: npt.NDArray[np.float64] | None,
    scale: npt.NDArray[np.float64] | None,
) -> npt.NDArray[np.float64]:
    """Return rows (or windows) ``x`` less ``mean``, over ``scale``, element by element in
    float64 (a row is scaled the same alone or in a batch); ``x`` itself without a scaler."""
    if mean is None or scale is None:
        return np.asarray(x, dtype=np.float64)
    return np.asarray((np.asarray(x, dtype=np.float64) - mean) / scale)


class TorchFold:
    """A fold's trained network and the numbers around it; predicts windows.

    Args:
        spec: The network's architecture.
        network: The trained module.
        kind: The label kind it was trained on.
        mean: The scaler's per-column mean (None: no scaler).
        scale: The scaler's per-column standard deviation (1 where it was 0).
        target_scale: ``return``: the training targets' standard deviation, which the
            network's output is multiplied by (1.0 otherwise).
        calibrator: The fold's calibrator, or None.
        epochs: Epochs trained, and the one kept (early stopping).
        device: Where the network runs.
    """

    suffix = ".pt"
    """The saved fold's file suffix (`dump_torch_fold`)."""

    library = "torch"
    """The library whose version a saved fold records (`tradeloom.plugins.model.registry`)."""

    def __init__(
        self,
        spec: NetworkSpec,
        network: nn.Module,
        kind: str,
        *,
        mean: npt.NDArray[np.float64] | None,
        scale: npt.NDArray[np.float64] | None,
        target_scale: float = 1.0,
        calibrator: Calibrator | None = None,
        epochs: tuple[int, int] = (0, 0),
        device: str = "cpu",
    ) -> None:
        self.spec = spec
        self.network = network.eval()
        self._double: nn.Module | None = None
        self.kind = kind
        self.mean = mean
        self.scale = scale
        self.target_scale = target_scale
        self.calibrator = calibrator
        self.epochs = epochs
        self.device = device

    @property
    def window(self) -> int:
        """Rows per window."""
        return self.spec.window

    def estimator_info(self) -> dict[str, Any]:
        """Return what a saved fold's metadata says of its estimator: the network's class,
        its params and window, and the scaler."""
        return {
            "import_path": self.spec.class_path,
            "name": self.spec.class_name,
            "params": {"network": self.spec.network, "window": self.window, **self.spec.params},
            "scaler": "none" if self.mean is None else "standard",
        }

    def saved_bytes(self, metadata: Any) -> bytes:
        """Return the fold's file (`dump_torch_fold`): weights, never code."""
        return dump_torch_fold(self, metadata)

    def with_calibrator(self, calibrator: Calibrator | None) -> TorchFold:
        """Return this fold with ``calibrator`` (the network shared, not copied)."""
        fold = TorchFold(
            self.spec,
            self.network,
            self.kind,
            mean=self.mean,
            scale=self.scale,
            target_scale=self.target_scale,
            calibrator=calibrator,
            epochs=self.epochs,
            device=self.device,
        )
        fold._double = self._double
        return fold

    def scaled(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return rows (or windows) ``x`` scaled by the fold's scaler (`scaled`)."""
        return scaled(x, self.mean, self.scale)

    def scaled_windows(
        self, x: npt.NDArray[np.float64], rows: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """Return the scaled windows ending at ``rows`` (ascending) of feature rows ``x``:
        the rows they read scaled once, element by element (what scaling each window
        gives), then gathered."""
        if not len(rows):
            return np.empty((0, self.window, x.shape[1]))
        first = int(rows[0]) - self.window + 1
        block = self.scaled(x[first : int(rows[-1]) + 1])
        every = np.lib.stride_tricks.sliding_window_view(block, self.window, axis=0)
        return np.ascontiguousarray(every[np.asarray(rows) - int(rows[0])].transpose(0, 2, 1))

    def outputs(self, windows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return the network's raw outputs ``(n, outputs)`` for scaled windows, in float64."""
        import torch

        rows = np.ascontiguousarray(windows, dtype=np.float64)
        out = np.empty((len(rows), self.spec.outputs), dtype=np.float64)
        network = self._inference()
        configure_threads()
        with torch.inference_mode():
            for first in range(0, len(rows), PREDICT_CHUNK):
                part = torch.from_numpy(rows[first : first + PREDICT_CHUNK]).to(self.device)
                answer = network(part).reshape(len(part), self.spec.outputs)
                out[first : first + len(part)] = answer.to("cpu").numpy()
        return out

    def _inference(self) -> nn.Module:
        """The network in float64, made once: it predicts in float64 from the float32
        weights it trained, so that a window's answer alone and in a batch differ by
        float64's rounding (about 1e-16, `PARITY_NOTE`), not float32's (about 1e-7),
        and a batch cut short (a backtest over fewer bars) moves no probability by more
        than `tradeloom.diagnostics.lookahead`'s tolerance."""
        if self._double is None:
            import copy

            self._double = copy.deepcopy(self.network).double().eval()
        return self._double

    def uncalibrated(self, windows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return ``probability_up`` of each scaled window before calibration."""
        out = self.outputs(windows)
        if self.kind == "classes":
            shifted = np.exp(out - out.max(axis=1, keepdims=True))
            proba = shifted / shifted.sum(axis=1, keepdims=True)
            return up_probability_of_classes(proba, np.arange(3, dtype=np.intp))
        if self.kind == "return":
            return up_probability_of_return(out[:, 0] * self.target_scale)
        from scipy.special import expit

        return np.asarray(expit(out[:, 0]), dtype=np.float64)

    def calibrated(self, p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return probabilities ``p`` through the fold's calibrator (themselves without one)."""
        return p if self.calibrator is None else self.calibrator.apply(p)

    def predict_rows(
        self, x: npt.NDArray[np.float64], rows: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """Return ``probability_up`` of the windows ending at ``rows`` of ``x`` (a batch)."""
        return self.calibrated(self.uncalibrated(self.scaled_windows(x, rows)))

    def predict(self, windows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return ``probability_up`` of each unscaled window ``(n, window, columns)``."""
        return self.calibrated(self.uncalibrated(self.scaled(windows)))

    def predict_one(self, window: npt.NDArray[np.float64]) -> float:
        """Return ``probability_up`` of one unscaled window ``(window, columns)``."""
        return float(self.predict(np.asarray(window)[None])[0])


KIND = "tradeloom.torch"
"""The ``kind`` a torch fold's file holds."""

_ZIP = b"PK\x03\x04"
"""How a file ``torch.save`` writes begins (a zip archive's local file header)."""

_KEYS = (
    "format",
    "kind",
    "network",
    "state_dict",
    "scaler",
    "target_scale",
    "calibrator",
    "epochs",
    "label_kind",
    "metadata",
)


def dump_torch_fold(fold: TorchFold, metadata: BundledMetadata) -> bytes:
    """Return ``fold`` and ``metadata`` as the bytes of its ``.pt`` file."""
    import torch

    scaler = None
    if fold.mean is not None and fold.scale is not None:
        scaler = {
            "mean": torch.from_numpy(fold.mean.copy()),
            "scale": torch.from_numpy(fold.scale.copy()),
        }
    content = {
        "format": FORMAT,
        "kind": KIND,
        "network": fold.spec.record(),
        "state_dict": {
            k: v.detach().to("cpu").clone() for k, v in fold.network.state_dict().items()
        },
        "scaler": scaler,
        "target_scale": float(fold.target_scale),
        "calibrator": None if fold.calibrator is None else _calibrator_record(fold.calibrator),
        "epochs": [int(fold.epochs[0]), int(fold.epochs[1])],
        "label_kind": fold.kind,
        "metadata": metadata.model_dump(mode="json"),
    }
    buffer = io.BytesIO()
    torch.save(content, buffer)
    return buffer.getvalue()


def read_torch_fold(data: bytes) -> Bundle:
    """Return the `Bundle` a ``.pt`` file's bytes hold: the `TorchFold` (on the CPU) as its
    model, no detector, and its metadata.

    Raises:
        BundleError: The bytes are not a torch file torch reads with ``weights_only``, or
            not a tradeloom torch fold of this format, or its weights do not fit its
            network, or its metadata is invalid.
    """
    import torch

    if not data.startswith(_ZIP):
        raise BundleError("it is not a torch weights file (torch.save writes a zip archive)")
    try:
        content = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign or damaged file can raise nearly anything
        text = str(exc).strip()
        first = text.splitlines()[0].split(". ")[0].rstrip(".") if text else ""
        raise BundleError(
            f"it is not a torch weights file ({type(exc).__name__}: {first})".replace(": )", ")")
        ) from None
    if not isinstance(content, dict) or set(content) != set(_KEYS) or content["kind"] != KIND:
        raise BundleError(
            f"it holds a {type(content).__name__}, not a tradeloom torch fold "
            f"(a dict of {', '.join(_KEYS)})"
        )
    if content["format"] != FORMAT:
        raise BundleError(f"it is a torch fold of format {content['format']!r}, not {FORMAT}")
    try:
        metadata = BundledMetadata.model_validate(content["metadata"])
    except ValidationError as exc:
        raise BundleError(f"its bundled metadata is invalid: {describe_invalid(exc)}") from exc
    try:
        spec = NetworkSpec.of_record(content["network"])
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    if spec.class_path != metadata.estimator:
        raise BundleError(
            f"its network is {spec.class_path}, its metadata names {metadata.estimator}"
        )
    kind = content["label_kind"]
    if kind != metadata.label.get("kind", "direction"):
        raise BundleError(f"its label kind {kind!r} is not its metadata's")
    fold = TorchFold(
        spec,
        _network(spec, content["state_dict"]),
        str(kind),
        **_scaler(content["scaler"]),
        target_scale=_number(content["target_scale"], "target_scale"),
        calibrator=None if content["calibrator"] is None else _calibrator(content["calibrator"]),
        epochs=_epochs(content["epochs"]),
    )
    return Bundle(fold, None, metadata)


def _network(spec: NetworkSpec, state: Any) -> torch.nn.Module:
    import torch

    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise BundleError("its state_dict is not a mapping of names to tensors")
    try:
        network = build_network(spec)
        network.load_state_dict(state, strict=True)
    except Exception as exc:  # the architecture and the weights disagree
        first = str(exc).strip().splitlines()[0]
        raise BundleError(f"its weights do not fit its network {spec.network}: {first}") from None
    return network.eval()


def _scaler(record: Any) -> dict[str, Any]:
    import torch

    if record is None:
        return {"mean": None, "scale": None}
    if (
        not isinstance(record, Mapping)
        or set(record) != {"mean", "scale"}
        or not all(
            isinstance(v, torch.Tensor) and v.dtype == torch.float64 for v in record.values()
        )
    ):
        raise BundleError("its scaler must be float64 tensors mean and scale")
    return {"mean": record["mean"].numpy().copy(), "scale": record["scale"].numpy().copy()}


def _calibrator_record(calibrator: Calibrator) -> dict[str, Any]:
    import torch

    return {
        "method": calibrator.method,
        "thresholds": torch.from_numpy(calibrator.thresholds.copy()),
        "values": torch.from_numpy(calibrator.values.copy()),
        "low": float(calibrator.low),
        "high": float(calibrator.high),
        "a": float(calibrator.a),
        "b": float(calibrator.b),
    }


def _calibrator(record: Any) -> Calibrator:
    import torch

    keys = {"method", "thresholds", "values", "low", "high", "a", "b"}
    if not isinstance(record, Mapping) or set(record) != keys:
        raise BundleError(f"its calibrator must have the keys {', '.join(sorted(keys))}")
    if record["method"] not in ("isotonic", "sigmoid"):
        raise BundleError(
            f"its calibrator's method {record['method']!r} is not isotonic or sigmoid"
        )
    arrays = [record[k] for k in ("thresholds", "values")]
    if not all(isinstance(a, torch.Tensor) and a.dtype == torch.float64 for a in arrays):
        raise BundleError("its calibrator's thresholds and values must be float64 tensors")
    return Calibrator(
        str(record["method"]),
        np.asarray(arrays[0].numpy(), dtype=np.float64).copy(),
        np.asarray(arrays[1].numpy(), dtype=np.float64).copy(),
        low=_number(record["low"], "calibrator.low"),
        high=_number(record["high"], "calibrator.high"),
        a=_number(record["a"], "calibrator.a"),
        b=_number(record["b"], "calibrator.b"),
    )


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BundleError(f"its {key} must be a number, was {type(value).__name__}")
    return float(value)


def _epochs(value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise BundleError("its epochs must be two integers")
    return int(value[0]), int(value[1])
