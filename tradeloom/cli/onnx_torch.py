"""A saved torch fold as an ONNX graph whose ``probability_up`` output is the probability
tradeloom decides on.

The graph reads ``windows``: float64 ``(n, window, columns)``, each the ``window`` feature
rows ending at a bar, unscaled, in the fold's column order. It holds what
`tradeloom.plugins.model.torch_fold.TorchFold.predict` does: the fold's scaler, the
network in float64 (as the fold predicts, from its float32 weights), the label kind's map
to ``probability_up`` and the fold's calibrator, all written as torch operations in one
module (`_exported`), exported by ``torch.onnx.export``'s TorchScript exporter (`EXPORTER`).

Two choices, measured on this project's machine (torch 2.13, onnx 1.23, onnxscript 0.7.2,
onnxruntime 1.30): onnxruntime's ``LSTM``, ``GRU`` and ``Conv`` operators compute in float32
only, 1e-5 from the fold's float64 probability after an isotonic calibrator, so the
recurrent cells are unrolled over the window and the convolutions written as matrix
products (`_unrolled`), all float64; and the dynamo exporter (``dynamo=True``) writes the
same graphs, equal to 1e-16, but took 4-40 s per fold where the TorchScript exporter takes
0.3-1 s.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.plugins.model.calibration import Calibrator
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import onnx
    import torch

    from tradeloom.plugins.model.torch_fold import TorchFold

__all__ = ["EXPORTER", "WINDOWS", "torch_graph"]

WINDOWS = "windows"
"""The graph's input: float64 windows ``(n, window, columns)``."""

EXPORTER = "torch.onnx.export (TorchScript)"
"""Which exporter wrote a torch fold's graph (the manifest says it)."""


def torch_graph(fold: TorchFold) -> onnx.ModelProto:
    """Return ``fold`` as an ONNX graph (input `WINDOWS`, output ``probability_up``).

    Raises:
        NotExported: The exporter refuses the network, naming why.
    """
    import warnings

    import onnx
    import torch

    from tradeloom.cli.onnx_sklearn import OPSET, OUTPUT, NotExported

    module = _exported(fold)
    example = torch.zeros((2, fold.window, fold.spec.n_features), dtype=torch.float64)
    folder = tempfile.TemporaryDirectory(prefix="tradeloom-onnx-")
    path = Path(folder.name) / "fold.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing, not the user's
            torch.onnx.export(
                module,
                (example,),
                path,
                input_names=[WINDOWS],
                output_names=[OUTPUT],
                dynamic_axes={WINDOWS: {0: "n"}, OUTPUT: {0: "n"}},
                opset_version=OPSET[""],
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many kinds
        first = (str(exc).strip().splitlines() or [""])[0]
        raise NotExported(
            f"torch.onnx.export refused its network {fold.spec.network} "
            f"({type(exc).__name__}: {first[:200]})"
        ) from None
    else:
        return onnx.load_from_string(path.read_bytes())
    finally:
        folder.cleanup()


def _exported_class() -> type:
    import torch
    from torch import nn

    class Exported(nn.Module):
        mean: torch.Tensor
        scale: torch.Tensor
        lower: torch.Tensor
        upper: torch.Tensor
        slope: torch.Tensor

        def __init__(self, fold: TorchFold) -> None:
            super().__init__()
            self.network = _unrolled(copy.deepcopy(fold.network)).double().eval()
            columns = fold.spec.n_features
            mean = np.zeros(columns) if fold.mean is None else fold.mean
            scale = np.ones(columns) if fold.scale is None else fold.scale
            self.register_buffer("mean", torch.from_numpy(np.asarray(mean, np.float64).copy()))
            self.register_buffer("scale", torch.from_numpy(np.asarray(scale, np.float64).copy()))
            self.kind = fold.kind
            self.outputs = fold.spec.outputs
            self.target_scale = float(fold.target_scale)
            self.calibrator = fold.calibrator
            if fold.calibrator is not None and fold.calibrator.method == "isotonic":
                t, v = fold.calibrator.thresholds, fold.calibrator.values
                slope = np.diff(v) / np.diff(t) if len(v) > 1 else np.zeros(0)
                self.register_buffer("lower", torch.from_numpy(t[:-1].copy()))
                self.register_buffer("upper", torch.from_numpy(t[1:].copy()))
                self.register_buffer("slope", torch.from_numpy(np.asarray(slope, np.float64)))

        def forward(self, windows: torch.Tensor) -> torch.Tensor:
            scaled = (windows - self.mean) / self.scale
            out = self.network(scaled).reshape(-1, self.outputs)
            if self.kind == "classes":
                proba = torch.softmax(out, dim=1)
                p = proba[:, 2] + proba[:, 1] * 0.5
            elif self.kind == "return":
                p = torch.clamp(0.5 + out[:, 0] * self.target_scale * 0.5, 0.0, 1.0)
            else:
                p = torch.sigmoid(out[:, 0])
            return self._calibrated(p)

        def _calibrated(self, p: torch.Tensor) -> torch.Tensor:
            calibrator: Calibrator | None = self.calibrator
            if calibrator is None:
                return p
            if calibrator.method == "sigmoid":
                return torch.sigmoid(-(p * calibrator.a + calibrator.b))
            clipped = torch.clamp(p, calibrator.low, calibrator.high)
            first = float(calibrator.values[0])
            if len(calibrator.values) == 1:
                return clipped * 0.0 + first
            # np.interp: the first value plus each segment's slope over its part below p
            column = clipped.unsqueeze(1)
            inside = torch.minimum(torch.maximum(column, self.lower), self.upper)
            return ((inside - self.lower) * self.slope).sum(dim=1) + first

    return Exported


def _unrolled(network: torch.nn.Module) -> torch.nn.Module:
    """Return ``network`` with each ``LSTM`` and ``GRU`` in it replaced by the same cell
    unrolled over the window, and each ``Conv1d`` by its taps' matrix products, in plain
    operations (onnxruntime's ``LSTM``, ``GRU`` and ``Conv`` compute in float32 only; the
    fold predicts in float64)."""
    from torch import nn

    for name, child in list(network.named_children()):
        if isinstance(child, nn.LSTM | nn.GRU):
            setattr(network, name, _recurrent_class()(child))
        elif isinstance(child, nn.Conv1d):
            setattr(network, name, _convolution_class()(child))
        else:
            _unrolled(child)
    return network


def _recurrent_class() -> type:
    import torch
    from torch import nn

    class Unrolled(nn.Module):
        """A unidirectional ``nn.LSTM`` or ``nn.GRU`` step by step, its weights shared."""

        def __init__(self, rnn: nn.LSTM | nn.GRU) -> None:
            super().__init__()
            from tradeloom.cli.onnx_sklearn import NotExported

            projected = int(getattr(rnn, "proj_size", 0)) > 0
            if rnn.bidirectional or projected or not rnn.bias:
                raise NotExported(
                    f"its {type(rnn).__name__} is bidirectional, projected or without bias, "
                    "which the export does not unroll"
                )
            self.rnn = rnn
            self.lstm = isinstance(rnn, nn.LSTM)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
            rnn = self.rnn
            steps = x if rnn.batch_first else x.transpose(0, 1)
            finals_h, finals_c = [], []
            for layer in range(rnn.num_layers):
                w_ih = getattr(rnn, f"weight_ih_l{layer}")
                w_hh = getattr(rnn, f"weight_hh_l{layer}")
                b_ih = getattr(rnn, f"bias_ih_l{layer}")
                b_hh = getattr(rnn, f"bias_hh_l{layer}")
                h = steps.new_zeros((steps.shape[0], rnn.hidden_size))
                c = h
                states = []
                for t in range(steps.shape[1]):
                    gi = steps[:, t] @ w_ih.T + b_ih
                    gh = h @ w_hh.T + b_hh
                    if self.lstm:
                        i, f, g, o = (gi + gh).chunk(4, dim=1)
                        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                        h = torch.sigmoid(o) * torch.tanh(c)
                    else:
                        ir, iz, inn = gi.chunk(3, dim=1)
                        hr, hz, hn = gh.chunk(3, dim=1)
                        r = torch.sigmoid(ir + hr)
                        z = torch.sigmoid(iz + hz)
                        n = torch.tanh(inn + r * hn)
                        h = (1 - z) * n + z * h
                    states.append(h)
                steps = torch.stack(states, dim=1)
                finals_h.append(h)
                finals_c.append(c)
            out = steps if rnn.batch_first else steps.transpose(0, 1)
            hidden = torch.stack(finals_h)
            if self.lstm:
                return out, (hidden, torch.stack(finals_c))
            return out, hidden

    return Unrolled


def _convolution_class() -> type:
    from torch import nn

    class Taps(nn.Module):
        """A ``Conv1d`` (stride 1, no padding, one group) as a sum over its taps of the
        weights' matrix product with the input shifted by the tap's dilation."""

        def __init__(self, conv: nn.Conv1d) -> None:
            super().__init__()
            from tradeloom.cli.onnx_sklearn import NotExported

            if conv.stride != (1,) or conv.padding != (0,) or conv.groups != 1:
                raise NotExported(
                    "its Conv1d has a stride, padding or groups, which the export does not "
                    "write as matrix products"
                )
            self.conv = conv

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            conv = self.conv
            size, dilation = conv.kernel_size[0], conv.dilation[0]
            length = x.shape[2] - (size - 1) * dilation
            out = conv.weight[:, :, 0] @ x[:, :, :length]
            for tap in range(1, size):
                start = tap * dilation
                out = out + conv.weight[:, :, tap] @ x[:, :, start : start + length]
            if conv.bias is not None:
                out = out + conv.bias[:, None]
            return out

    return Taps


def _exported(fold: TorchFold) -> torch.nn.Module:
    module: Any = _exported_class()(fold)
    return module  # type: ignore[no-any-return]
