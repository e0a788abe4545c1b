"""The core's arrays for one run, and the bars it reads.

`CoreState` holds the account, the symbols, the parameters, the event rows and
the cursor (`tradeloom.core.layout`); `BarInputs` holds the bars, the model's
output and the regime labels the step reads. `CoreState.run` calls the compiled
step (`tradeloom.core.bar.run_bars`) until it needs Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tradeloom.core import layout as L
from tradeloom.core.bar import ROWS_PER_SYMBOL, SCRATCH_SIZE, run_bars
from tradeloom.core.context import State
from tradeloom.core.params import CoreSpec
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "BarInputs",
    "CoreState",
    "start_account",
    "start_portfolio",
    "start_symbols",
    "symbols_key",
]

_ARRAYS = ("acct", "sym", "prm", "limits", "sent", "port", "ev", "cur", "io", "scratch")
"""`CoreState`'s arrays in the order `tradeloom.core.bar.run_bars` takes them."""


@dataclass(frozen=True)
class BarInputs:
    """What the step reads of each bar, for ``bars`` bars starting at bar ``base``.

    Attributes:
        px: ``[6, bars, symbols]``: open, high, low, close, volume, probability.
        flags: ``[2, bars, symbols]`` uint8: anomalous, regime code.
        score: ``[bars, symbols]``: the anomaly detector's scores (NaN: none).
        time_ns: ``[bars]``: open times, UTC ns.
        trainings: ``[bars]``: model trainings journaled at each bar.
        base: The bar of row 0.
    """

    px: npt.NDArray[np.float64]
    flags: npt.NDArray[np.uint8]
    score: npt.NDArray[np.float64]
    time_ns: npt.NDArray[np.int64]
    trainings: npt.NDArray[np.int64]
    base: int = 0
    arrays: tuple[np.ndarray, ...] = field(init=False, repr=False, compare=False)
    """The arrays in `tradeloom.core.context.Bars`'s order (`run_bars`'s ``inputs``)."""

    def __post_init__(self) -> None:
        # made with the inputs: a live tick makes one and reads it once (a cached
        # property's first read was five calls and a lock)
        arrays = (self.px, self.flags, self.score, self.time_ns, self.trainings)
        object.__setattr__(self, "arrays", arrays)

    @classmethod
    def of(
        cls,
        ohlcv: Sequence[npt.NDArray[np.float64]],
        probability: npt.NDArray[np.float64],
        time_ns: npt.NDArray[np.int64],
        *,
        anomalous: npt.NDArray[np.bool_] | None = None,
        score: npt.NDArray[np.float64] | None = None,
        regime: npt.NDArray[np.uint8] | None = None,
        trainings: npt.NDArray[np.int64] | None = None,
        base: int = 0,
    ) -> BarInputs:
        """Return the inputs of one symbol's bars (1-D arrays, one value per bar)."""
        n = len(time_ns)
        px = np.empty((6, n, 1))
        for k, column in enumerate((*ohlcv, probability)):
            px[k, :, 0] = column
        flags = np.zeros((2, n, 1), np.uint8)
        if anomalous is not None:
            flags[0, :, 0] = anomalous
        if regime is not None:
            flags[1, :, 0] = regime
        scores = np.full((n, 1), np.nan)
        if score is not None:
            scores[:, 0] = score
        counts = np.zeros(n, np.int64) if trainings is None else trainings.astype(np.int64)
        return cls(px, flags, scores, np.ascontiguousarray(time_ns, np.int64), counts, base)

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])


class CoreState:
    """The state of one run of the compiled step.

    Args:
        spec: The parameters.
        symbols: How many symbols the strategy trades.
        capacity: Event rows to start with (grows as needed).
    """

    def __init__(self, spec: CoreSpec, symbols: int = 1, capacity: int = 4096) -> None:
        self.spec = spec
        self.prm = spec.vector()
        self.limits = np.asarray(spec.drawdown_limits, np.float64)
        self.acct = start_account(spec.initial_cash)
        self.sym = start_symbols(spec, symbols)
        self.port = start_portfolio(spec, symbols)
        self.sent = np.zeros(int(self.prm[L.P_RATE_CAPACITY]), np.int64)
        self.ev = np.empty((max(capacity, self.reserve), L.EV_WIDTH))
        self.cur = np.zeros(L.CUR_SIZE, np.int64)
        self.io = np.zeros(L.IO_SIZE)
        self.scratch = np.zeros(SCRATCH_SIZE)

    @property
    def reserve(self) -> int:
        """Rows one bar may need: the step's own, and room for a venue's reports."""
        return 2 * ROWS_PER_SYMBOL * int(self.sym.shape[0]) + 64

    @property
    def count(self) -> int:
        """Return the event rows used."""
        return int(self.cur[L.C_COUNT])

    @property
    def bar(self) -> int:
        """Return the bar the step is at (the next to run, between bars)."""
        return int(self.cur[L.C_T])

    def bundle(self) -> State:
        """Return the arrays as the `State` bundle the core's kernels take (as `run_bars` does)."""
        scratch = self.scratch
        return State(
            self.acct, self.sym, self.prm, self.limits, self.sent, self.port, self.ev, self.cur,
            self.io, scratch[0:8], scratch[8:16],
        )  # fmt: skip

    def rows(self, start: int = 0) -> npt.NDArray[np.float64]:
        """Return the event rows from ``start`` (a view)."""
        return self.ev[start : self.count]

    def clear(self) -> None:
        """Forget the event rows (after they were journaled)."""
        self.cur[L.C_COUNT] = 0

    def make_room(self, rows: int) -> None:
        """Grow the event rows so that ``rows`` more fit beside one bar's reserve."""
        needed = self.count + rows + self.reserve
        if needed <= self.ev.shape[0]:
            return
        grown = np.empty((max(needed, 2 * self.ev.shape[0]), L.EV_WIDTH))
        grown[: self.count] = self.ev[: self.count]
        self.ev = grown

    def run(self, inputs: BarInputs, t_end: int) -> int:
        """Run the step up to bar ``t_end`` (exclusive); return its need (`NEED_*`)."""
        self.cur[L.C_BASE] = inputs.base
        while True:
            need: int = run_bars(t_end, inputs.arrays, self.arrays)
            if need != L.NEED_BUFFER:
                return need
            self.make_room(self.ev.shape[0])

    @cached_property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays as `run_bars` takes them (``arrays``), kept until one is replaced.

        Built once, not at each call: the per-bar paths call the step at every bar.
        """
        return tuple(getattr(self, name) for name in _ARRAYS)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in _ARRAYS:
            self.__dict__.pop("arrays", None)


def start_account(initial_cash: float) -> npt.NDArray[np.float64]:
    """Return an account's starting row (`tradeloom.core.layout`'s ``A_*``)."""
    acct = np.zeros(L.ACCT_SIZE)
    acct[L.A_CASH] = initial_cash
    acct[L.A_PEAK] = initial_cash
    acct[L.A_EQUITY] = initial_cash
    acct[L.A_DAY] = -1.0
    return acct


def start_symbols(spec: CoreSpec, symbols: int) -> npt.NDArray[np.float64]:
    """Return the symbols' starting rows (``[symbols, SYM_SIZE]``, ``S_*``).

    They read ``spec``'s `symbols_key` alone.
    """
    sym = np.zeros((symbols, L.SYM_SIZE))
    sym[:, L.S_ENTRY_BAR] = -1.0
    sym[:, L.S_ENTRY_PRICE] = np.nan
    sym[:, L.S_SIG_LAST] = -1.0
    sym[:, L.S_MARK] = np.nan
    sym[:, L.S_LAST_CLOSE] = np.nan
    sym[:, L.S_EXIT_BAR] = np.nan
    sym[:, L.S_BEST] = np.nan
    sym[:, L.S_TRAIL] = np.nan
    groups = spec.portfolio.groups
    if groups and len(groups) != symbols:
        raise ValueError(f"portfolio groups name {len(groups)} symbols, the state has {symbols}")
    sym[:, L.S_GROUP] = groups or -1.0
    dusts = spec.dusts
    if dusts and len(dusts) != symbols:
        raise ValueError(f"the venue's lots name {len(dusts)} symbols, the state has {symbols}")
    sym[:, L.S_DUST] = dusts or spec.dust
    costs = spec.min_costs
    if costs and len(costs) != symbols:
        raise ValueError(
            f"the venue's minimum costs name {len(costs)} symbols, the state has {symbols}"
        )
    sym[:, L.S_MIN_COST] = costs or 0.0
    return sym


def start_portfolio(spec: CoreSpec, symbols: int) -> npt.NDArray[np.float64]:
    """Return the portfolio scratch's starting value (it reads ``spec.portfolio.window``)."""
    return np.full((L.PORT_ROWS + spec.portfolio.window, symbols), np.nan)


def symbols_key(spec: CoreSpec) -> tuple[object, ...]:
    """Return what `start_symbols` and `start_portfolio` read of ``spec``: two specs with
    the same key start their symbols alike."""
    return (spec.portfolio.groups, spec.dusts, spec.dust, spec.min_costs, spec.portfolio.window)
