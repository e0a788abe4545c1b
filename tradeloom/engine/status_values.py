"""What ``tradeloom status`` tells of a run, as values (`tradeloom.engine.status` reads them
from the journal's frames, `tradeloom.engine.status_rows` from its rows)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tradeloom.reporting.json_values import json_safe

if TYPE_CHECKING:
    from tradeloom.reporting.book_figures import BookFigures

__all__ = [
    "AllocationStatus",
    "AllocationWeight",
    "OpenOrder",
    "Position",
    "RunStatus",
]


@dataclass(frozen=True)
class Position:
    """What the journal's fills hold in one market.

    Attributes:
        symbol: The market.
        quantity: Signed quantity (negative: short).
        cost: The position's average entry price (None when flat).
        mark: The last close it is marked at (None: no close known).
        unrealized: ``quantity x (mark - cost)`` (None when unknown).
    """

    symbol: str
    quantity: float
    cost: float | None
    mark: float | None
    unrealized: float | None


@dataclass(frozen=True)
class OpenOrder:
    """An order the journal has sent and that is neither filled, cancelled nor expired."""

    id: str
    symbol: str
    bar: int
    timestamp: str | None
    side: str
    quantity: float
    filled: float
    reason: str


@dataclass(frozen=True)
class AllocationWeight:
    """One symbol's target weight and the weight it holds (signed, of the equity); a
    portfolio file's: one strategy's (``symbol`` its name, `AllocationStatus.weighs`)."""

    symbol: str
    target: float | None
    held: float | None


@dataclass(frozen=True)
class AllocationStatus:
    """The allocation layer's last rebalance (the journal's last ``allocation_decided``).

    Attributes:
        allocator: Its allocator (``allocation.kind``).
        bar: Its decision bar.
        time: That bar's time (ISO 8601, UTC).
        status: ``ok``, or why the last weights held (``infeasible``, ``failed``...).
        message: Why it is not ``ok`` ('' when ok).
        rebalances: The rebalances the journal holds.
        kept: Those that kept the last weights (not ``ok``).
        held_at: ``now`` (the positions at the last bar's close, of the equity) or
            ``rebalance`` (at the decision bar's close: a position without a price now).
        weights: The largest target or held weights, by symbol, in the universe's order.
        others: The symbols not in ``weights``; ``others_target`` and ``others_held``
            their weights summed.
        weighs: What the weights are of: ``symbol``, or ``strategy`` (a portfolio file's
            weights between its strategies: each weight's ``symbol`` a strategy's name).
    """

    allocator: str
    bar: int
    time: str | None
    status: str
    message: str
    rebalances: int
    kept: int
    held_at: str
    weights: list[AllocationWeight]
    others: int = 0
    others_target: float | None = None
    others_held: float | None = None
    weighs: str = "symbol"


@dataclass(frozen=True)
class RunStatus:
    """Everything ``tradeloom status`` shows; `format_status` writes it for a person.

    Times are ISO 8601 (UTC) and ages in seconds; None where the journal does not say.
    """

    run_dir: str
    strategy: str
    mode: str
    process: str
    process_detail: str
    pid: int | None
    state: str
    state_code: str
    state_reason: str
    state_since: str | None
    symbol: str
    timeframe: str
    last_bar: int | None
    last_bar_time: str | None
    last_bar_close_time: str | None
    last_bar_age_seconds: float | None
    last_close: float | None
    bars: int
    stale: bool | None
    staleness: str
    capital: float | None
    cash: float | None
    equity: float | None
    total_return: float | None
    day: str | None
    day_pnl: float | None
    day_return: float | None
    positions: list[Position] = field(default_factory=list)
    open_orders: list[OpenOrder] = field(default_factory=list)
    health: str | None = None
    health_worst: list[str] = field(default_factory=list)
    """The monitors at ``health`` (``rolling_auc[IBM]`` over a universe)."""
    monitors: dict[str, str] = field(default_factory=dict)
    """Each monitor's last status, by label (``rolling_auc``, ``rolling_auc[IBM]``)."""
    signals: int = 0
    orders: int = 0
    fills: int = 0
    rejections: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    strategies: dict[str, float] = field(default_factory=dict)
    """A portfolio file's backtest: each strategy's P&L at the last bar (equity.csv's)."""
    refusals: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    """The run's refusals, ``{stage: {code: {purpose: count}}}`` (`tradeloom.reporting.
    refusals`: as ``metrics.json``'s ``refusals``)."""
    exits_refused: dict[str, int] = field(default_factory=dict)
    """The exits refused by purpose, protective ones first (``metrics.json``'s)."""
    allocation: AllocationStatus | None = None
    """The allocation layer's last rebalance, target against held weights (None: the
    run does not allocate, or has not rebalanced yet)."""
    books: list[BookFigures] = field(default_factory=list)
    """With ``challengers:``, the champion's book then each challenger's shadow book
    (`tradeloom.reporting.book_figures`); empty: the run has none."""
    canary: dict[str, Any] | None = None
    """The last canary's stage (`tradeloom.live.lifecycle.canary`): ``stage`` (``canary`` while
    it runs, ``passed``, ``rolled_back``), ``challenger``, ``fraction``, ``since_bar``,
    ``bars`` (decided at the canary's size so far), ``of_bars``, ``by``, and when rolled
    back its ``rule``, ``figure`` and ``limit``; None: no canary yet."""
    watch: dict[str, Any] | None = None
    """The last watch after a full promotion (`tradeloom.live.lifecycle.promotion_watch`):
    ``stage`` (``watch`` while it runs, ``passed``, ``rolled_back``), ``challenger``,
    ``since_bar``, ``bars`` (watched so far), ``of_bars``, ``by``, and when rolled back
    its ``rule``, ``figure`` and ``limit``; None: no watch yet."""
    parity: dict[str, Any] | None = None
    """The live parity monitor's last check (``live.parity``: the journal's last
    ``parity_checked`` row's fields, its ``bar`` and ``time``, and ``checks``, how many
    the journal holds); None: none yet."""
    models: dict[str, str] = field(default_factory=dict)
    """A paper or live run's model in force, in words, per strategy ('' for a strategy
    run alone; a portfolio file's strategies by name; a universe's every symbol trades
    it): `tradeloom.engine.model_in_force`; empty for a backtest."""

    def to_json(self) -> dict[str, Any]:
        """Return the status as JSON values (NaN as None)."""
        values: dict[str, Any] = json_safe(asdict(self))
        return values
