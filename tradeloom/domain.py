"""Value objects that flow between the layers: bars, signals, orders, fills, decisions.

All are frozen. Bar indices (``bar``) count from 0 over the validated bars of a run;
timestamps are UTC ``pandas.Timestamp``. Directions and sides are ints: +1 long/buy,
-1 short/sell, 0 flat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.time.calendars import CRYPTO, TradingCalendar

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.text.documents import Documents

__all__ = [
    "OHLCV",
    "Absence",
    "AuxiliarySeries",
    "Bar",
    "Bars",
    "BookSnapshot",
    "Cancellation",
    "DataIssue",
    "FeatureReference",
    "Fill",
    "Halt",
    "HealthAction",
    "HealthActionKind",
    "HealthChange",
    "HealthStatus",
    "ModelOutput",
    "ModelTraining",
    "Order",
    "OrderIntent",
    "PortfolioView",
    "Refusal",
    "Rejection",
    "Retraining",
    "RunInfo",
    "Signal",
    "Trade",
    "Universe",
]

OHLCV = ("open", "high", "low", "close", "volume")
"""The columns of every bars frame, in this order."""

HealthStatus = Literal["HEALTHY", "WARNING", "CRITICAL"]
"""A monitor's verdict on the model's health."""

HealthActionKind = Literal["warn", "retrain", "halt"]
"""What a health rule does when it fires."""


@dataclass(frozen=True)
class DataIssue:
    """One kind of problem found in market data, with how many rows and the first one."""

    code: str
    count: int
    first: str
    rows: tuple[int, ...] = ()


@dataclass(frozen=True)
class Bars:
    """Validated OHLCV bars: UTC ``DatetimeIndex`` named ``timestamp``, sorted, unique.

    Attributes:
        frame: Columns ``open high low close volume`` (float64) plus any extra columns
            the source carried (a precomputed probability, for example).
        symbol: Market symbol, e.g. ``BTC/USDT``.
        timeframe: Bar length as written in the file, e.g. ``1h``.
        timeframe_seconds: Bar length in seconds; metrics are annualized from it.
        repaired: Issues that ``validation: repair`` dropped or fixed.
        gaps: Issues kept as they are (gaps cannot be repaired by dropping rows).
        calendar: When the market trades (`tradeloom.time.calendars`): closures are not gaps,
            and metrics are annualized over its year.
        documents: The text sources of ``data.auxiliary`` (kind ``text``) by name: every
            document of each, whatever symbol it is about (a text feature picks those its
            symbol sees, and those visible at each bar's close); empty: none declared.
    """

    frame: pd.DataFrame
    symbol: str
    timeframe: str
    timeframe_seconds: int
    repaired: tuple[DataIssue, ...] = ()
    gaps: tuple[DataIssue, ...] = ()
    calendar: TradingCalendar = CRYPTO
    documents: Mapping[str, Documents] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class Universe:
    """The bars of several symbols on one clock.

    Each symbol keeps its own validated `Bars` (its own index: a symbol not listed yet,
    delisted or halted has no row there); ``index`` is the common clock, the sorted
    union of every symbol's timestamps. A symbol without a bar at a time of the clock
    gets no signal and no fill then.

    Attributes:
        bars: One `Bars` per symbol, in the strategy file's order (symbols unique).
        index: The common clock: UTC ``DatetimeIndex`` named ``timestamp``.
        informative: The bars of the markets that features read but the strategy does
            not trade (``features[].symbol``, informative pairs), each on its own index.

    Series that are not bars (``data.auxiliary``: funding rates, sentiment...) are
    columns of each symbol's ``Bars.frame``, joined as-of with their publication delay
    (`tradeloom.plugins.data.auxiliary`).
    """

    bars: tuple[Bars, ...]
    index: pd.DatetimeIndex
    informative: tuple[Bars, ...] = ()

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols, in order."""
        return tuple(b.symbol for b in self.bars)

    @property
    def timeframe(self) -> str:
        """The common timeframe, as written in the file."""
        return self.bars[0].timeframe

    @property
    def timeframe_seconds(self) -> int:
        """The common timeframe in seconds."""
        return self.bars[0].timeframe_seconds

    def __len__(self) -> int:
        return len(self.index)

    def informative_bars(self) -> dict[str, Bars]:
        """Return the informative markets' bars by symbol."""
        return {b.symbol: b for b in self.informative}

    def present(self) -> npt.NDArray[np.bool_]:
        """Return ``[bars, symbols]``: True where the symbol has a bar on the clock."""
        return np.stack([self.index.isin(b.frame.index) for b in self.bars], axis=1)

    def absences(self) -> tuple[Absence, ...]:
        """Return every run of clock bars where a symbol has no bar, symbol by symbol."""
        out: list[Absence] = []
        for j, present in enumerate(self.present().T):
            steps = np.diff(np.r_[0, (~present).astype(np.int8), 0])
            for first, stop in zip(
                np.flatnonzero(steps == 1), np.flatnonzero(steps == -1), strict=True
            ):
                out.append(
                    Absence(
                        self.bars[j].symbol,
                        self.index[first],
                        self.index[stop - 1],
                        int(stop - first),
                    )
                )
        return tuple(out)


@dataclass(frozen=True)
class BookSnapshot:
    """The top of one market's book at one time (a data source reads it, a live run keeps it).

    Attributes:
        symbol: Unified symbol (``BTC/USDT``).
        time_ms: When the book was so: the exchange's time, else the time of receipt.
        bids: ``(price, size)`` levels, best (highest) first.
        asks: ``(price, size)`` levels, best (lowest) first.
    """

    symbol: str
    time_ms: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Absence:
    """A run of bars of the common clock where one symbol has no bar (a gap, not listed
    yet, delisted or halted): it gets no signal and no fill there.

    Attributes:
        symbol: The symbol.
        first: The clock's first bar without one (open time).
        last: The clock's last bar without one.
        bars: How many clock bars that is.
    """

    symbol: str
    first: pd.Timestamp
    last: pd.Timestamp
    bars: int


@dataclass(frozen=True)
class Bar:
    """One bar as the per-bar layers see it (``symbol``: its market; '' when not told)."""

    index: int
    timestamp: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float
    symbol: str = ""


@dataclass(frozen=True)
class FeatureReference:
    """How each feature was distributed over a fold's training rows (drift's baseline).

    Attributes:
        columns: The feature columns, in the model's order.
        edges: Per column, the sorted interior bin edges (deciles of the training rows,
            duplicates removed); a value v falls in bin ``searchsorted(edges, v, "right")``.
        proportions: Per column, the share of training rows in each bin (sums to 1).
    """

    columns: tuple[str, ...]
    edges: tuple[npt.NDArray[np.float64], ...]
    proportions: tuple[npt.NDArray[np.float64], ...]

    @classmethod
    def of(
        cls, x: npt.NDArray[np.float64], columns: tuple[str, ...], bins: int = 10
    ) -> FeatureReference:
        """Return the reference of training rows ``x`` (rows x columns, all finite)."""
        if x.ndim != 2 or x.shape[1] != len(columns) or len(x) == 0:
            raise ValueError(f"x must be non-empty rows x {len(columns)} columns, was {x.shape}")
        quantiles = np.linspace(0.0, 1.0, bins + 1)[1:-1]
        edges, proportions = [], []
        for j in range(x.shape[1]):
            column = x[:, j]
            cut = np.unique(np.quantile(column, quantiles))
            counts = np.bincount(np.searchsorted(cut, column, side="right"), minlength=len(cut) + 1)
            edges.append(cut)
            proportions.append(counts / len(column))
        return cls(tuple(columns), tuple(edges), tuple(proportions))


@dataclass(frozen=True)
class ModelTraining:
    """One walk-forward fold: the rows trained on and the bars it predicts.

    Bar indices are inclusive. Purging guarantees
    ``train_end + horizon + embargo < predict_start``. ``calibration`` says, for a model
    with ``model.calibration``, which rows the calibrator and the model were fitted on
    ('' without calibration).
    """

    fold: int
    train_start: int
    train_end: int
    predict_start: int
    predict_end: int
    rows: int
    positives: int
    horizon: int
    estimator: str
    skipped: str = ""
    embargo: int = 0
    reason: str = "scheduled"
    reference: FeatureReference | None = field(
        default=None, compare=False, repr=False, metadata={"journal": False}
    )
    calibration: str = field(default="", metadata={"added": True})


@dataclass(frozen=True)
class ModelOutput:
    """Probabilities that the forward return is positive, one per bar (NaN: no prediction).

    ``anomalous`` marks the bars the model's anomaly detector finds unlike its training
    rows (None: the model has no detector); no position is opened on them.
    ``anomaly_score`` is the detector's score of each bar, journaled with a rejection
    (below 0: anomalous; NaN: not scored; None: no detector or no scores).
    """

    probability: pd.Series
    trainings: tuple[ModelTraining, ...] = ()
    anomalous: pd.Series | None = None
    anomaly_score: pd.Series | None = None


@dataclass(frozen=True)
class Retraining:
    """A fold trained at a bar's close because a health rule asked for it.

    Attributes:
        training: The fold: it trains on rows whose labels are known at the bar and
            predicts from the next one (``training.predict_start``) to
            ``training.predict_end``; ``training.reason`` says why.
        probability: The new probability of each bar ``predict_start .. predict_end``
            (NaN: no prediction), which replaces the old ones; None when the fold was
            skipped (``training.skipped``) and the old predictions stand.
        anomaly_score: The new fold's anomaly detector's score of the same bars (NaN:
            not scored; below 0: anomalous), which replaces the old scores and flags;
            None when the model has no detector or the fold was skipped.
    """

    training: ModelTraining
    probability: npt.NDArray[np.float64] | None
    anomaly_score: npt.NDArray[np.float64] | None = None


@dataclass(frozen=True)
class Signal:
    """A decision of the signal layer at a bar's close."""

    bar: int
    timestamp: pd.Timestamp
    direction: int
    confidence: float
    probability: float


@dataclass(frozen=True)
class PortfolioView:
    """The portfolio as the risk layer sees it at a bar's close (marked to that close)."""

    cash: float
    position: float
    equity: float
    peak_equity: float
    price: float
    entry_bar: int | None = None
    entry_price: float | None = None

    @property
    def drawdown(self) -> float:
        """Return the fractional drawdown from the peak equity (0 at the peak)."""
        return 0.0 if self.peak_equity <= 0 else 1.0 - self.equity / self.peak_equity

    @property
    def direction(self) -> int:
        """Return +1 long, -1 short or 0 flat."""
        return int(self.position > 0) - int(self.position < 0)


@dataclass(frozen=True)
class OrderIntent:
    """What the engine wants to trade at a bar's close, before the risk rules see it.

    Attributes:
        target_fraction: Signed fraction of equity the position should be after the order.
        reason: ``ENTRY``, ``REVERSE``, ``EXIT_SIGNAL``, ``EXIT_MAX_HOLDING``, ``EXIT_TIME``,
            ``EXIT_HALT``, ``EXIT_STOP_LOSS``, ``EXIT_BREAK_EVEN``, ``EXIT_TRAILING_STOP``
            or ``EXIT_TAKE_PROFIT``.
        increases_exposure: Whether the order opens or grows a position (risk rules may
            only block these; exits always pass).
    """

    bar: int
    timestamp: pd.Timestamp
    direction: int
    target_fraction: float
    reason: str
    increases_exposure: bool
    probability: float = float("nan")


@dataclass(frozen=True)
class Rejection:
    """A risk decision that blocked an intent: a reason code and the values behind it.

    ``purpose`` is the order reason of what was refused: a signal's ``ENTRY``,
    ``REVERSE`` or ``SCALE_IN``, or an order's own (``EXIT_STOP_LOSS``...) refused by a
    pre-trade check; the engine sets it ('' where it is not known: a plugin's rejection
    before the engine journals it, a journal written before the field). The journal
    added the field to format 3 (``added``): an older file reads it as ''.
    """

    bar: int
    timestamp: pd.Timestamp
    code: str
    message: str
    values: Mapping[str, float] = field(default_factory=dict)
    purpose: str = field(default="", metadata={"added": True})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Halt:
    """Trading stops: the position is closed and no new position is opened."""

    bar: int
    timestamp: pd.Timestamp
    code: str
    message: str
    values: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Order:
    """An order sent to a venue. ``id`` is deterministic: strategy, run, sequence.

    Attributes:
        kind: ``market``; ``stop``: a protective exit (stop-loss or take-profit)
            that triggered during the bar and fills at ``stop_price``; ``limit``: a
            limit order at ``limit_price`` (``execution.orders``).
        reference_price: The price the quantity was sized at (the decision bar's close,
            or the trigger price of a stop).
        limit_price: A limit order's price (NaN: not a limit order).
        parent_id: The id of the sliced order this is a child of (None: not a child).
    """

    id: str
    bar: int
    timestamp: pd.Timestamp
    side: int
    quantity: float
    reason: str
    reference_price: float
    kind: Literal["market", "stop", "limit"] = "market"
    stop_price: float = float("nan")
    limit_price: float = float("nan")
    parent_id: str | None = None


@dataclass(frozen=True)
class Fill:
    """An execution of an order: price includes slippage; fee is in quote currency.

    ``liquidity`` says who set the price: ``taker`` (the order crossed the market),
    ``maker`` (a resting order the market came to), or '' when the venue did not say
    (an exchange trade without ``takerOrMaker``, a journal written before the field).
    The journal added the field to format 2 (``added``): an older file reads it as ''.
    """

    order_id: str
    bar: int
    timestamp: pd.Timestamp
    side: int
    quantity: float
    price: float
    fee: float
    slippage: float
    liquidity: str = field(default="", metadata={"added": True})


@dataclass(frozen=True)
class Cancellation:
    """The venue stopped working an order; ``remaining`` is the quantity left unfilled.

    ``reason``: ``REPLACED`` (a newer decision supersedes it), ``PROTECTIVE_EXIT`` (a
    stop-loss or take-profit closed the position), ``INSUFFICIENT_CASH`` (a spot buy
    larger than the cash left), ``BELOW_MINIMUM`` (what would fill, cut by the cash or
    a bar's volume, or an exit at a gap's price, is below the venue's minimum order
    notional), ``EXPIRED`` (no bar left to fill it).
    """

    order_id: str
    bar: int
    timestamp: pd.Timestamp
    remaining: float
    reason: str


@dataclass(frozen=True)
class Refusal:
    """An intent or order that did not do what it was for: refused, cut or cancelled short.

    Every rejection is one, and every cancellation but the engine's own (a newer
    decision replacing the order, a protective exit closing its position, a limit
    order's rest going on as a market order). The run's refusals are counted by
    ``stage``, ``code`` and ``purpose`` in ``metrics.json`` (``refusals``), the summary,
    the report, ``tradeloom status`` and the console.

    Attributes:
        bar: The bar it was journaled at.
        timestamp: That bar's time.
        stage: ``rejected`` (the risk layer refused it before anything was sent),
            ``cut`` (the venue's cash or minimum cut the order) or ``cancelled`` (it
            stopped short otherwise: no venue could take it, ``NO_ROUTE``; a restart
            found it never sent, ``NOT_SENT``; the venue refused it, ``REJECTED CODE``).
        code: The rejection's code or the cancellation's reason.
        purpose: The order reason of what was refused (``ENTRY``, ``EXIT_STOP_LOSS``...;
            ``UNKNOWN`` where the journal does not say).
        symbol: Its market ('' where the run has one).
        order_id: The order ('' for a rejection: an intent, or an order refused before
            it was journaled).
        remaining: The quantity left unfilled (NaN for a rejection).
        message: The rejection's message ('' for a cancellation).
        exit: It left a position open that it was to close: an exit's order cancelled,
            cut or refused by a pre-trade check, not for dust
            (`tradeloom.core.codes.refused_exit`).
        protective: ``exit``, and a protective one: a stop, a halt's exit, the kill
            switch's flatten, a liquidation.
    """

    bar: int
    timestamp: pd.Timestamp
    stage: Literal["rejected", "cut", "cancelled"]
    code: str
    purpose: str
    symbol: str = ""
    order_id: str = ""
    remaining: float = float("nan")
    message: str = ""
    exit: bool = False
    protective: bool = False


@dataclass(frozen=True)
class HealthChange:
    """The monitoring layer's health moved from one status to another.

    ``symbol`` is the market whose monitor it is ('' for a strategy of one market: the
    run's); a monitor leaves it '' and the run stamps it.
    """

    bar: int
    timestamp: pd.Timestamp
    monitor: str
    status: HealthStatus
    previous: HealthStatus
    metric: str
    value: float
    symbol: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class HealthAction:
    """A health rule fired: its condition became true at a bar's close.

    Attributes:
        rule: The rule's index under ``health:``.
        metric: ``<monitor name>.<metric>``, as the rule names it.
        condition: ``above`` or ``below``.
        threshold: The value the metric crossed.
        value: The metric's value at the bar.
        action: ``warn``, ``retrain`` or ``halt``.
        symbol: The market whose monitors the rule read ('' for a strategy of one
            market: the run's).
    """

    bar: int
    timestamp: pd.Timestamp
    rule: int
    metric: str
    condition: Literal["above", "below"]
    threshold: float
    value: float
    action: HealthActionKind
    symbol: str = field(default="", kw_only=True)

    @property
    def reason(self) -> str:
        """Return why it fired, e.g. ``health.0: calibration.brier 0.291047 > 0.27``
        (over a universe, ``... > 0.27 on ETH/USDT``)."""
        sign = ">" if self.condition == "above" else "<"
        on = f" on {self.symbol}" if self.symbol else ""
        return f"health.{self.rule}: {self.metric} {self.value:.6g} {sign} {self.threshold:g}{on}"


@dataclass(frozen=True)
class RunInfo:
    """What observers learn about a run when it starts."""

    run_id: str
    strategy: str
    mode: str
    run_dir: str


@dataclass(frozen=True)
class Trade:
    """A round trip: from the fill that opened a position to the one that closed it.

    Attributes:
        direction: +1 long, -1 short.
        quantity: The largest size the position reached.
        entry_price: The average entry price.
        exit_price: The average price of the reductions that closed it.
        fees: Every fee paid while it was open (a flipping fill's fee is split).
        pnl: The profit, net of those fees, in quote currency.
        symbol: Its market ('' when the run did not name it).
    """

    direction: int
    entry_bar: int
    entry_time: pd.Timestamp
    exit_bar: int
    exit_time: pd.Timestamp
    quantity: float
    entry_price: float
    exit_price: float
    fees: float
    pnl: float
    symbol: str = ""

    @property
    def return_pct(self) -> float:
        """Return the profit as a fraction of the entry notional."""
        return self.pnl / (self.quantity * self.entry_price)

    @classmethod
    def from_kernel(
        cls,
        fields: Mapping[str, float],
        entry_time: pd.Timestamp,
        exit_time: pd.Timestamp,
        symbol: str = "",
    ) -> Trade:
        """Build a trade from the fields of the core's trade row, by name
        (`tradeloom.core.records.TRADE`: `tradeloom.core.accounting.TRADE_FIELDS`)."""
        return cls(
            direction=int(fields["direction"]),
            entry_bar=int(fields["entry_bar"]),
            entry_time=entry_time,
            exit_bar=int(fields["exit_bar"]),
            exit_time=exit_time,
            quantity=float(fields["quantity"]),
            entry_price=float(fields["entry_price"]),
            exit_price=float(fields["exit_price"]),
            fees=float(fields["fees"]),
            pnl=float(fields["pnl"]),
            symbol=symbol,
        )


@dataclass(frozen=True)
class AuxiliarySeries:
    """One validated series beside the bars (funding rates, a recorded order book's
    levels...): sorted unique times and their values.

    Attributes:
        name: The column it is joined to.
        times: UTC nanoseconds, sorted, unique.
        values: float64, one per time.
        delay_ns: ``available_after`` in nanoseconds.
        symbol: The symbol it belongs to; None: every symbol's.
    """

    name: str
    times: np.ndarray
    values: np.ndarray
    delay_ns: int
    symbol: str | None = None

    def published(self) -> np.ndarray:
        """Return when each value is published: its time plus the delay."""
        return self.times + self.delay_ns

    def published_by(self, time_ns: int) -> AuxiliarySeries:
        """Return the values published at or before ``time_ns`` (what was known then)."""
        keep = self.published() <= time_ns
        return replace(self, times=self.times[keep], values=self.values[keep])

    def applies_to(self, symbol: str) -> bool:
        """Return whether it is joined to ``symbol``'s bars."""
        return self.symbol is None or self.symbol == symbol
