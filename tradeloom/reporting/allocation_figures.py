"""The allocation layer's rebalances as a person reads them, from the journal's
``allocation_decided`` rows: for the report, ``tradeloom status`` and ``metrics.json``.

A rebalance's *turnover* is the weight it asked to move, ``sum |target - held|`` over the
symbols (of the equity; a change that ``min_trade`` leaves untraded is counted); a
rebalance that was not ``ok`` kept the last weights (it *held*) and moved none. A
universe of more than `MOST_SHOWN` symbols is shown by its largest weights, the rest
summed (`top_columns`).

``metrics.json``'s ``allocation`` block (`allocation_block`) is the same in every mode:
a backtest's from the decisions it recorded, a paper or live run's from its journal's
``allocation_decided`` rows (`RebalanceTally`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tradeloom.journal import AllocationDecided

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

__all__ = [
    "LATE",
    "MOST_SHOWN",
    "REBALANCE",
    "AllocationHistory",
    "RebalanceTally",
    "allocation_block",
    "allocation_history",
    "rebalance_figures",
    "refused_rebalances",
    "top_columns",
    "turnover",
]

LATE = "late"
"""The status of a rebalance whose solve passed its deadline (paper and live;
`tradeloom.journal.AllocationDecided`): it kept the last weights, and is not a failure."""

REBALANCE = "REBALANCE"
"""The reason of a rebalance's orders (the purpose its refusals are counted under)."""

Decision = tuple[str, Sequence[float], Sequence[float]]
"""A rebalance as the figures read it: ``(status, weights, held)``."""

MOST_SHOWN = 15
"""Symbols shown one by one at most; past it the largest ``MOST_SHOWN - 1`` and the rest
summed."""


def turnover(status: str, weights: Sequence[float], held: Sequence[float]) -> float:
    """Return the weight a rebalance asked to move: ``sum |target - held|`` when ``ok``,
    else 0 (the last weights held and nothing was traded)."""
    if status != "ok" or len(weights) != len(held) or not len(weights):
        return 0.0
    moved = np.abs(np.asarray(weights, np.float64) - np.asarray(held, np.float64))
    return float(moved.sum())


def rebalance_figures(decisions: Iterable[Decision]) -> dict[str, Any]:
    """Return ``metrics.json``'s turnover figures of rebalances given as ``(status,
    weights, held)``: how many held the last weights (any status but ``ok``), the mean
    turnover per rebalance (a held one counts 0) and the total."""
    moved = [(status != "ok", turnover(status, w, h)) for status, w, h in decisions]
    total = float(np.sum([t for _, t in moved])) if moved else 0.0
    return {
        "held": sum(held for held, _ in moved),
        "mean_turnover": total / len(moved) if moved else 0.0,
        "total_turnover": total,
    }


def refused_rebalances(refusals: Mapping[str, Mapping[str, Mapping[str, int]]]) -> int:
    """Return how many of a run's orders for a rebalance were refused, cut or cancelled
    short: the ``REBALANCE`` purpose of ``metrics.json``'s ``refusals``
    (``{stage: {code: {purpose: count}}}``)."""
    return sum(
        int(count)
        for codes in refusals.values()
        for purposes in codes.values()
        for purpose, count in purposes.items()
        if purpose == REBALANCE
    )


def allocation_block(
    kind: str,
    decisions: Iterable[Decision],
    refusals: Mapping[str, Mapping[str, Mapping[str, int]]],
) -> dict[str, Any]:
    """Return ``metrics.json``'s ``allocation`` block, the same in every mode.

    The allocator; its rebalances; those that failed (any status but ``ok`` and
    ``late``), by status; those whose solve passed its deadline (``late``: paper and live
    only); each of the last two kept the last weights. Then `rebalance_figures` (how many
    held, the turnover) and ``refused_orders``, its orders refused, cut or cancelled
    short (`refused_rebalances`).

    Args:
        kind: ``allocation.kind``.
        decisions: The rebalances, oldest first, as ``(status, weights, held)``.
        refusals: ``metrics.json``'s ``refusals``.
    """
    decided = list(decisions)
    failed: dict[str, int] = {}
    late = 0
    for status, _, _ in decided:
        if status == LATE:
            late += 1
        elif status != "ok":
            failed[status] = failed.get(status, 0) + 1
    return {
        "allocator": kind,
        "rebalances": len(decided),
        "failed": sum(failed.values()),
        "failed_by_status": dict(sorted(failed.items())),
        "late": late,
        **rebalance_figures(decided),
        "refused_orders": refused_rebalances(refusals),
    }


class RebalanceTally:
    """The rebalances of a journal as they are read (a paper or live run's files): keep
    each ``allocation_decided`` event handed to `add`, for `allocation_block`."""

    def __init__(self) -> None:
        self.decisions: list[Decision] = []

    def add(self, events: Iterable[object]) -> None:
        """Keep the rebalances among ``events`` (the journal's, in order)."""
        for event in events:
            if isinstance(event, AllocationDecided):
                self.decisions.append((event.status, event.weights, event.held))


@dataclass(frozen=True)
class AllocationHistory:
    """A run's rebalances, oldest first.

    Attributes:
        symbols: The universe's symbols, the weights' columns.
        bars: Each rebalance's decision bar.
        times: Its bar's time (UTC).
        allocators: The allocator that decided it.
        statuses: Its status (``ok``, ``infeasible``, ``failed``, ``too_few_bars``,
            ``error``, ``late``).
        messages: Why it is not ok ('' when ok).
        target: The target weights in force after it (``[rebalances, symbols]``; NaN
            before the first feasible one).
        held: The weights held at its decision bar's close.
        turnover: The weight it asked to move (`turnover`).
    """

    symbols: tuple[str, ...]
    bars: npt.NDArray[np.int64]
    times: pd.DatetimeIndex
    allocators: tuple[str, ...]
    statuses: tuple[str, ...]
    messages: tuple[str, ...]
    target: npt.NDArray[np.float64]
    held: npt.NDArray[np.float64]
    turnover: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.statuses)

    @property
    def kept(self) -> npt.NDArray[np.bool_]:
        """Whether each rebalance kept the last weights (it was not ``ok``)."""
        return np.array([s != "ok" for s in self.statuses], dtype=bool)


def allocation_history(frame: pd.DataFrame) -> AllocationHistory | None:
    """Return the rebalances of the journal's ``allocation_decided`` frame
    (`tradeloom.journal.read_frame`); None: none."""
    if not len(frame):
        return None
    ordered = frame.sort_values("seq", kind="stable")
    symbols = tuple(str(s) for s in ordered["symbols"].iloc[-1])
    column = {s: k for k, s in enumerate(symbols)}
    n = len(ordered)
    target = np.full((n, len(symbols)), np.nan)
    held = np.full((n, len(symbols)), np.nan)
    for i, (names, weights, holding) in enumerate(
        zip(ordered["symbols"], ordered["weights"], ordered["held"], strict=True)
    ):
        if tuple(names) == symbols:  # the universe of every row but a changed one's
            if len(weights) == len(symbols):  # empty: no feasible weights yet
                target[i] = weights
            held[i] = holding
            continue
        where = [column.get(str(s), -1) for s in names]
        for j, w in zip(where, weights, strict=False):
            if j >= 0:
                target[i, j] = float(w)
        for j, h in zip(where, holding, strict=False):
            if j >= 0:
                held[i, j] = float(h)
    statuses = tuple(str(s) for s in ordered["status"])
    moved = [
        turnover(s, w, h)
        for s, w, h in zip(statuses, ordered["weights"], ordered["held"], strict=True)
    ]
    return AllocationHistory(
        symbols=symbols,
        bars=ordered["bar"].to_numpy(np.int64),
        times=_utc(ordered["timestamp"]),
        allocators=tuple(str(a) for a in ordered["allocator"]),
        statuses=statuses,
        messages=tuple(str(m or "") for m in ordered["message"]),
        target=target,
        held=held,
        turnover=np.array(moved, dtype=np.float64),
    )


def top_columns(values: npt.NDArray[np.float64], most: int = MOST_SHOWN) -> list[int]:
    """Return the columns of ``values`` (``[rows, symbols]``) shown one by one: all of them
    up to ``most``; past it the ``most - 1`` of the largest mean ``|weight|`` (ties by
    column), in column order. The others are summed as one ("the rest")."""
    k = values.shape[1]
    if k <= most:
        return list(range(k))
    size = np.nan_to_num(np.abs(values)).mean(axis=0) if len(values) else np.zeros(k)
    ranked = sorted(range(k), key=lambda j: (-float(size[j]), j))
    return sorted(ranked[: most - 1])


def _utc(values: pd.Series) -> pd.DatetimeIndex:
    import pandas as pd

    return pd.DatetimeIndex(pd.to_datetime(values, utc=True))
