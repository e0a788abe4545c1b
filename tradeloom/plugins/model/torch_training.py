"""Training one fold's network: seeded, deterministic, early stopping on its own last rows.

A fold trains `fit_network` on its windows: the module is built and trained with torch's
generators seeded by the strategy's seed alone (the same fold gets the same network
whichever folds came before it, in a backtest or when a paper run trains it at a bar's
close), with torch's deterministic algorithms, Adam on shuffled mini-batches, and early
stopping on the fold's last training rows (`TrainingSettings.validation`): the epoch
with the lowest loss on them is kept. The process's torch random state and
deterministic setting are as they were afterwards (`seeded`). What it returns is a
`TorchFold` (`tradeloom.plugins.model.torch_fold`).

Threads: torch's intra-op pool runs on the process's native thread count
(`configure_threads`, ``--threads``), as the other estimators' do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradeloom.errors import UserError
from tradeloom.plugins.model.labels import BINARY_KINDS
from tradeloom.plugins.model.torch_fold import TorchFold, configure_threads, scaled
from tradeloom.plugins.model.torch_networks import NetworkSpec, build_network
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

__all__ = [
    "TrainingSettings",
    "fit_network",
    "outputs_of",
    "resolve_device",
    "seeded",
    "standard_scaler",
]


@dataclass(frozen=True)
class TrainingSettings:
    """``model.training``: how a fold's network is trained (`TrainingParams`)."""

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    validation: float = 0.2
    patience: int = 3
    max_grad_norm: float | None = 1.0


def outputs_of(kind: str) -> int:
    """Return the outputs a network needs for label ``kind``: 3 for classes, else 1."""
    return 3 if kind == "classes" else 1


def resolve_device(device: str) -> str:
    """Return the device ``device`` (``auto``, ``cpu``, ``cuda``) means here.

    Raises:
        UserError: ``cuda`` where torch sees no GPU.
    """
    import torch

    if device == "cpu":
        return "cpu"
    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise UserError(
            f"model.device: cuda, and torch {torch.__version__} sees no GPU "
            "(torch.cuda.is_available() is False); set device: auto or cpu"
        )
    return "cuda" if available else "cpu"


@contextlib.contextmanager
def seeded(seed: int, device: str = "cpu") -> Iterator[None]:
    """Run the block with torch's generators seeded by ``seed`` and its deterministic
    algorithms on; put back the process's random state and setting after."""
    import torch

    if device == "cuda":  # cuBLAS's deterministic workspace, read when CUDA starts
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    devices = [torch.cuda.current_device()] if device == "cuda" else []
    was = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was)


def standard_scaler(
    x: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the per-column mean and standard deviation of rows ``x`` (1 where it is 0)."""
    mean = np.asarray(x, dtype=np.float64).mean(axis=0)
    scale = np.asarray(x, dtype=np.float64).std(axis=0)
    return mean, np.where(scale > 0.0, scale, 1.0)


def fit_network(
    spec: NetworkSpec,
    kind: str,
    x: npt.NDArray[np.float64],
    rows: npt.NDArray[np.intp],
    y: npt.NDArray[Any],
    held: tuple[npt.NDArray[np.intp], npt.NDArray[Any]] | None,
    settings: TrainingSettings,
    *,
    seed: int,
    scaler: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None,
    device: str = "cpu",
) -> TorchFold:
    """Train a new network of ``spec`` on the windows ending at ``rows`` of ``x``, targets
    ``y``; return the fold.

    Args:
        spec: The architecture (its ``window`` is the windows' rows).
        kind: The label kind (binary: a logit and BCE; ``classes``: three logits and
            cross-entropy; ``return``: mean squared error on the return divided by its
            standard deviation over ``y``).
        x: The feature rows, unscaled (every row a window reads: finite).
        rows: The rows whose windows it trains on, ascending.
        y: Their targets.
        held: The early-stopping rows and their targets (None: every epoch runs).
        settings: ``model.training``.
        seed: The strategy's seed.
        scaler: The per-column mean and scale (None: no scaler).
        device: Where it trains.
    """
    import torch

    mean, scale = (None, None) if scaler is None else scaler
    target_scale = 1.0
    if kind == "return":
        spread = float(np.std(y))
        target_scale = spread if spread > 0 else 1.0
    configure_threads()
    with seeded(seed, device):
        network = build_network(spec).to(device)
        x_train = _windows(x, rows, spec.window, scaler, device)
        t_train = _targets(y, kind, target_scale, device)
        held_x = held_t = None
        if held is not None:
            held_x = _windows(x, held[0], spec.window, scaler, device)
            held_t = _targets(held[1], kind, target_scale, device)
        loss_of = _loss(kind)
        optimiser = torch.optim.Adam(
            network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        order = torch.Generator().manual_seed(seed)
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        trained = 0
        for epoch in range(settings.epochs):
            network.train()
            for batch in torch.split(
                torch.randperm(len(x_train), generator=order), settings.batch_size
            ):
                optimiser.zero_grad()
                loss = loss_of(_shaped(network(x_train[batch]), kind), t_train[batch])
                loss.backward()
                if settings.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(network.parameters(), settings.max_grad_norm)
                optimiser.step()
            trained = epoch + 1
            if held_x is None or held_t is None:
                continue
            network.eval()
            with torch.no_grad():
                held_loss = float(loss_of(_shaped(network(held_x), kind), held_t))
            if best is None or held_loss < best[0]:
                state = {k: v.detach().clone() for k, v in network.state_dict().items()}
                best = (held_loss, epoch + 1, state)
            elif epoch + 1 - best[1] >= settings.patience:
                break
        kept = trained
        if best is not None:
            network.load_state_dict(best[2])
            kept = best[1]
    return TorchFold(
        spec,
        network,
        kind,
        mean=mean,
        scale=scale,
        target_scale=target_scale,
        epochs=(trained, kept),
        device=device,
    )


def _windows(
    x: npt.NDArray[np.float64],
    rows: npt.NDArray[np.intp],
    window: int,
    scaler: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None,
    device: str,
) -> torch.Tensor:
    """The float32 windows ending at ``rows``: the rows they read scaled once (element by
    element: what scaling each window gives, with 1/window of the work), then gathered."""
    import torch

    first = int(rows[0]) - window + 1
    block = scaled(x[first : int(rows[-1]) + 1], *(scaler or (None, None)))
    values = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
    every = values.unfold(0, window, 1).transpose(
        1, 2
    )  # [i]: the window ending at first + i + window - 1
    at = torch.from_numpy(np.asarray(rows, dtype=np.int64) - int(rows[0]))
    return every[at].contiguous().to(device)


def _targets(y: npt.NDArray[Any], kind: str, target_scale: float, device: str) -> torch.Tensor:
    import torch

    if kind == "classes":
        return torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)
    values = np.asarray(y, dtype=np.float64)
    if kind == "return":
        values = values / target_scale
    return torch.from_numpy(values.astype(np.float32)).to(device)


def _shaped(out: torch.Tensor, kind: str) -> torch.Tensor:
    return out if kind == "classes" else out.reshape(-1)


def _loss(kind: str) -> Any:
    from torch import nn

    if kind in BINARY_KINDS:
        return nn.BCEWithLogitsLoss()
    if kind == "classes":
        return nn.CrossEntropyLoss()
    return nn.MSELoss()
