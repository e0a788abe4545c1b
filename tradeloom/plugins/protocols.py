"""What each layer's component must implement, and what trading live asks besides.

A factory returns an object of the protocol of its layer. The engines call these
methods and nothing else, so a third-party component written in plain Python is
driven exactly like a built-in one.

A paper or live run asks more of some layers: a data source that is a `LiveFeed`, a
model that is a `LiveModel` (and may be a `LiveTrainer`, a `LiveAnomalyGate` and a
`WindowedModel`), and
for ``--mode live`` a venue that is a `LiveVenue`. These capabilities are checked when
the pipeline is wired for that mode (``tradeloom validate FILE --mode live``), before
any bar, and the live driver calls them and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tradeloom.domain import (
    OHLCV,
    Bar,
    Bars,
    Cancellation,
    Fill,
    Halt,
    HealthChange,
    ModelOutput,
    ModelTraining,
    Order,
    OrderIntent,
    PortfolioView,
    Rejection,
    Retraining,
    Signal,
    Universe,
)
from tradeloom.plugins.protocols_models import (
    DescribedModel,
    LabelHorizon,
    LiveAnomalyGate,
    LiveModel,
    LiveTrainer,
    ModelCalibration,
    ModelParityNote,
    PerSymbolModels,
    SavedModelFile,
    SymbolIdModel,
    WalkForwardModel,
    WindowedModel,
)
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.domain import AuxiliarySeries
    from tradeloom.plugins.component import ParamError
    from tradeloom.plugins.data.auxiliary import AsOfRows, Auxiliary
    from tradeloom.text.cutoff import CutoffGuard
    from tradeloom.text.documents import DocumentFeed

__all__ = [
    "AuxiliaryData",
    "BarStream",
    "CancelsTogether",
    "ClockRefusal",
    "CrossSectionalFeature",
    "DataSource",
    "DescribedModel",
    "ExtraColumns",
    "Feature",
    "FitsFoldTransforms",
    "FoldFittedFeature",
    "FoldTransform",
    "InformativeSource",
    "JoinsAuxiliary",
    "KnownClock",
    "KnownLength",
    "KnownSymbols",
    "LabelHorizon",
    "LiveAnomalyGate",
    "LiveAuxiliaryFeed",
    "LiveDocuments",
    "LiveFeed",
    "LiveModel",
    "LiveTrainer",
    "LiveVenue",
    "MarketLots",
    "Model",
    "ModelCalibration",
    "ModelParityNote",
    "Monitor",
    "MonitorInput",
    "MonitorMetrics",
    "MultiVenue",
    "NeedsCalibration",
    "OrderKeys",
    "PerSymbolModels",
    "QuietAtOpen",
    "ReadsBarsColumn",
    "ReadsColumns",
    "ReadsOrderBook",
    "ReadsText",
    "ReadsVolume",
    "Retrainable",
    "RiskContext",
    "RiskRule",
    "SavedModelFile",
    "SignalRule",
    "Sizer",
    "StopsResting",
    "SymbolIdModel",
    "UniverseRefusal",
    "Venue",
    "VenueLimits",
    "VenueTerms",
    "VolumeAware",
    "WalkForwardModel",
    "WindowedModel",
    "input_columns_of",
    "missing_members",
    "reads_beside_ohlcv",
]


def input_columns_of(feature: object) -> tuple[str, ...]:
    """Return the bars' columns ``feature`` declares it reads, in order, each once:
    `ReadsColumns`'s, and the older declarations' (`ReadsVolume`: ``volume``,
    `ReadsBarsColumn`: its column)."""
    found: list[str] = []
    if isinstance(feature, ReadsColumns):
        found.extend(str(c) for c in feature.input_columns())
    if isinstance(feature, ReadsVolume) and feature.needs_volume:
        found.append("volume")
    if isinstance(feature, ReadsBarsColumn) and isinstance(feature.bars_column, str):
        found.append(feature.bars_column)
    return tuple(dict.fromkeys(found))


def reads_beside_ohlcv(feature: object) -> bool:
    """Return whether ``feature`` declares a column of the bars beside OHLCV (which a
    higher timeframe's resampling and an informative pair's bars do not carry)."""
    return any(c not in OHLCV for c in input_columns_of(feature))


def missing_members(obj: object, protocol: type) -> list[str]:
    """Return the attributes and methods of ``protocol`` that ``obj`` lacks, in order."""
    names: list[str] = []
    for cls in reversed(protocol.__mro__):
        if cls in (object, Protocol) or not getattr(cls, "_is_protocol", False):
            continue
        for name in [*getattr(cls, "__annotations__", {}), *vars(cls)]:
            if not name.startswith("_") and name not in names:
                names.append(name)
    return [name for name in names if not hasattr(obj, name)]


@runtime_checkable
class DataSource(Protocol):
    """Data layer: every symbol's validated bars on one clock.

    One market is a universe of one: a source of ``data.symbol`` returns the universe of
    that symbol (`Universe` of one `Bars`, its clock the bars' own index). A source of
    the single-market form (``load() -> Bars``) is deprecated; it runs through
    `tradeloom.plugins.protocols_symbols.UniverseOfOne`.
    """

    def load_universe(self) -> Universe:
        """Return every symbol's validated bars and the common clock.

        Raises `tradeloom.errors.DataError` for bad data, naming the symbol.
        """
        ...


@runtime_checkable
class InformativeSource(Protocol):
    """Data layer that can also load markets the strategy does not trade (informative
    pairs, ``features[].symbol``): the same kind of bars, the same timeframe and range."""

    def informative_refusal(self, symbol: str) -> str | None:
        """Return why ``symbol``'s bars cannot be loaded beside the traded ones, or None.

        Called before anything is loaded (validation); the reason ends with the remedy.
        """
        ...

    def load_informative(self, symbol: str) -> Bars:
        """Return ``symbol``'s validated bars, loaded as the traded market's are.

        Raises `tradeloom.errors.DataError` for bad data, naming the symbol.
        """
        ...


@runtime_checkable
class Feature(Protocol):
    """Feature layer: compute columns from bars (and earlier features), causally.

    A feature may also offer ``stepper(context)``, returning a per-bar computation
    (`tradeloom.plugins.protocols_steps.SteppedFeature`); live trading and the per-bar
    driver use it. A feature without one is stepped by recomputing ``compute`` over
    the history so far: slower, same values.
    """

    def columns(self) -> list[str]:
        """Return the names of the columns `compute` returns, known before any data."""
        ...

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return `columns()` indexed like ``bars.frame``; row t may use rows <= t only.

        Args:
            bars: The validated bars (``bars.frame`` is the OHLCV frame).
            features: The columns of the features defined before this one.
        """
        ...


@runtime_checkable
class CrossSectionalFeature(Feature, Protocol):
    """A feature computed across the symbols of a universe at each bar (rank, z-score).

    It reads per-symbol columns (`inputs`, of features defined before it) and, at each
    bar of the common clock, sees that bar's values of every symbol present then, and
    nothing else: row t uses only row t of each symbol (causal by construction). The
    engines call `compute_cross`; `compute` is the universe of one (a strategy trading
    one symbol is refused one at validation).
    """

    def inputs(self) -> list[str]:
        """Return the per-symbol columns it reads, in order."""
        ...

    def compute_cross(
        self, values: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.float64]:
        """Return ``[bars, symbols, columns]`` from ``values`` ``[bars, symbols, inputs]``.

        Args:
            values: Each bar's `inputs` of each symbol (NaN where it has no bar or no value).
            present: ``[bars, symbols]``: whether the symbol has a bar then; a symbol that
                is not present takes no part in the bar's statistics.
        """
        ...


@dataclass(frozen=True)
class FoldTransform:
    """What a `FoldFittedFeature` asks the model to fit inside each walk-forward fold.

    Attributes:
        columns: The feature's columns the transformer reads (all of them, or some);
            the model replaces them by the transformer's outputs.
        transformer: An unfitted transformer (scikit-learn's ``fit``/``transform``),
            fitted on each fold's training rows of ``columns`` only and saved with the
            fold's estimator: a scikit-learn class or one of
            `tradeloom.plugins.model.fold_transforms` (the registry loads no other
            code). One with ``row_exact = True`` transforms a row alone as in a batch.
    """

    columns: tuple[str, ...]
    transformer: Any


@runtime_checkable
class FoldFittedFeature(Feature, Protocol):
    """A feature some of whose columns a model may use only through a transform fitted
    inside each walk-forward fold, on that fold's training rows (a projection of
    embeddings to a few components): fitted on every row, it would learn from the bars
    a fold predicts. The wiring hands the transforms to the model
    (`BuildContext.fold_transforms`); a model that cannot fit them (`FitsFoldTransforms`)
    is refused at validation."""

    def fold_transform(self) -> FoldTransform:
        """Return the columns to transform per fold and the unfitted transformer."""
        ...


@runtime_checkable
class FitsFoldTransforms(Protocol):
    """A model that fits the features' `FoldTransform` inside each of its folds, on the
    fold's training rows, and saves them with the fold."""

    fits_fold_transforms: bool


@runtime_checkable
class Model(Protocol):
    """Model layer: per symbol, the probability that the forward return over `horizon`
    bars is up.

    One market is a universe of one: a model of ``data.symbol`` is given the universe of
    that symbol. A model may train over every symbol at once (the ``sklearn`` model's
    ``pooling: pooled``) or each apart; a model that trains each symbol apart and keeps
    what it trained for each is a `PerSymbolModels`. A model of the single-market form
    (``fit_predict(bars, features) -> ModelOutput``) is deprecated; it runs through
    `tradeloom.plugins.protocols_symbols.ModelOverSymbols` (a fresh copy trained on each
    symbol of a universe, as before).
    """

    horizon: int

    def fit_predict_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> tuple[ModelOutput, ...]:
        """Train walk-forward over the symbols; return each symbol's output on the clock.

        A prediction at clock bar s uses only labels known at s.

        Args:
            universe: The symbols' bars on one clock (one market: its bars' own index).
            features: Per symbol, its feature rows indexed like its own bars.

        Returns:
            One output per symbol, indexed by ``universe.index`` (NaN where the symbol
            has no bar); the trainings, in clock bars, on each symbol's output (a pooled
            model's, of the whole universe, on the first).
        """
        ...


@runtime_checkable
class SignalRule(Protocol):
    """Signal layer: turn a probability at a bar's close into a signal or nothing."""

    def on_bar(self, bar: Bar, probability: float) -> Signal | None:
        """Return a signal for this bar, or None. ``probability`` may be NaN."""
        ...


@dataclass(frozen=True)
class RiskContext:
    """What a risk rule sees at a bar's close, for one symbol (``bar.symbol``).

    ``portfolio`` is the account with that symbol's position; ``features`` and
    ``probability`` are that symbol's.
    """

    bar: Bar
    portfolio: PortfolioView
    features: Mapping[str, float]
    probability: float


@runtime_checkable
class Sizer(Protocol):
    """Sizing (risk layer): how large a new position is, as a fraction of equity."""

    def size(self, signal: Signal, context: RiskContext) -> float | Rejection:
        """Return a fraction of equity in (0, 1], or a rejection with its reason."""
        ...


@runtime_checkable
class RiskRule(Protocol):
    """A risk rule: may block exposure-increasing intents and may halt trading."""

    def check(self, intent: OrderIntent, context: RiskContext) -> Rejection | None:
        """Return a rejection to block ``intent`` (only called when it increases exposure)."""
        ...

    def on_bar(self, context: RiskContext) -> Halt | None:
        """Return a halt to stop trading for the rest of the run, or None."""
        ...


@runtime_checkable
class Venue(Protocol):
    """Execution layer: accept orders, return fills.

    The engine keeps at most one market order working: a new decision cancels the
    working order first. A ``stop`` order (a triggered stop-loss or take-profit) is
    submitted during its bar and fills in the ``intrabar`` phase at its stop price.
    """

    allow_short: bool
    initial_cash: float

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price``, the venue's costs included."""
        ...

    def submit(self, order: Order) -> None:
        """Accept an order decided at ``order.bar``'s close (or during it, for a stop)."""
        ...

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Return the fills (and cancellations) at this bar's ``phase``.

        ``phase`` is ``open``, ``intrabar`` or ``close``, called in that order.
        """
        ...

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Stop working an order; return its cancellation, or None if it is not working."""
        ...

    def pending(self) -> list[Order]:
        """Return the orders accepted but not completely filled yet."""
        ...


@runtime_checkable
class CancelsTogether(Protocol):
    """A venue that cancels several orders in one request (a live account with
    ``execution.orders.batch``): the engine tells it the orders first, then cancels each
    as `Venue.cancel` does, which returns what the one request ended."""

    def cancel_together(self, order_ids: list[str], reason: str) -> None:
        """Cancel ``order_ids`` in as few requests as the venue takes."""
        ...


@runtime_checkable
class CancelFills(Protocol):
    """A venue whose cancel can turn up fills (a live exchange answers a cancel with the
    order partly or wholly filled since the bar's opening poll): the engine books them
    right after its cancels, before it sizes the order that replaces the cancelled one."""

    def cancel_fills(self, order_ids: list[str], bar: Bar) -> list[Fill | Cancellation]:
        """Return, off the venue's next report, the fills of ``order_ids`` it holds (at
        ``bar``), in order."""
        ...


@runtime_checkable
class QuietAtOpen(Protocol):
    """A venue that can say, cheaply, that a bar's open has nothing for the engine (a live
    account whose orders are all finished and reported): the engine then does not ask it
    for the open's fills, and builds no bar to ask with."""

    def quiet_at_open(self) -> bool:
        """Return True only if ``match(bar, "open")`` now would return no event and change
        nothing, and ``pending()`` is empty (False: ask, as any venue is asked)."""
        ...


@runtime_checkable
class StopsResting(Protocol):
    """A live venue whose stops rest at the exchange and trade between the engine's
    bars: their trades wait for an exit of the engine to bind to
    (`tradeloom.live.orders.exchange_stops`)."""

    def stops_traded(self, bar: Bar) -> list[str]:
        """Return the symbols whose resting stop traded by ``bar``'s open with trades no
        exit is booked to yet (the engine's kill switch lets their exit through)."""
        ...

    def bind_stop(self, order: Order) -> None:
        """Book ``order`` (an exit the kill switch let through) to its symbol's resting
        stop that traded, and send nothing: what the stop did not sell is reported
        cancelled (``KILL_SWITCH``)."""
        ...


@dataclass(frozen=True)
class MonitorInput:
    """What a monitor sees at a bar's close.

    Both drivers fill it alike (a monitor's figures are the same in a backtest and a
    replay), after the fills of the bar's open and stops and before any decision.

    Attributes:
        probability: This bar's prediction (NaN if none).
        resolved_probability: The prediction made ``horizon`` bars ago, whose outcome is
            now known (NaN if none).
        resolved_up: Whether the close rose over those ``horizon`` bars.
        features: This bar's features by column.
        orders: The orders sent since the previous bar's monitors ran, in journal order.
        fills: The fills since then, in journal order.
        cancellations: The orders the venue stopped working since then.
        training: The model's fold in effect at this bar (its ``reference`` is the
            distribution of its training rows); None before the first fold, in a
            skipped fold's segment, or for a model that journals none.
    """

    bar: Bar
    probability: float
    resolved_probability: float
    resolved_up: bool
    features: Mapping[str, float] = field(default_factory=dict)
    orders: tuple[Order, ...] = ()
    fills: tuple[Fill, ...] = ()
    cancellations: tuple[Cancellation, ...] = ()
    training: ModelTraining | None = None


@runtime_checkable
class Monitor(Protocol):
    """Monitoring layer: watch predictions, outcomes and fills, report health.

    A monitor whose figures health rules may act on also implements `MonitorMetrics`.
    """

    name: str

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Update with one bar; return a change of health status, or None."""
        ...

    def summary(self) -> Mapping[str, Any]:
        """Return figures for ``metrics.json`` (JSON-safe)."""
        ...


@runtime_checkable
class MonitorMetrics(Protocol):
    """A monitor's figures, by name, for the strategy's ``health:`` rules.

    Separate from `Monitor` so that a monitor written before health rules still is
    one; a rule naming a monitor without metrics is refused when the file is validated.
    """

    metric_names: tuple[str, ...]
    """Every name `metrics` returns, known when the monitor is built (before any data),
    so that a rule naming a metric is checked before the run starts."""

    def metrics(self) -> Mapping[str, float]:
        """Return the current value of each metric (NaN: not enough data yet).

        Called after `Monitor.on_bar` at each bar that a rule reads the monitor.
        """
        ...


@runtime_checkable
class Retrainable(Protocol):
    """A model that can train a new fold mid-run, when a health rule says ``retrain``."""

    def retrain(self, bar: int, reason: str) -> Retraining | None:
        """Train at ``bar``'s close on rows whose labels are known then; predict from bar + 1.

        Called after `Model.fit_predict_universe`. The new fold predicts ``bar + 1`` up to
        the bar before the next scheduled fold (or the last bar); scheduled folds stay.

        Args:
            bar: The bar at whose close the rule fired.
            reason: Why, for the journal (``ModelTraining.reason``).

        Returns:
            The fold and its probabilities; None when there is nothing to retrain (no
            bar before the next scheduled fold, or too few labelled rows yet).
        """
        ...


# --- live capabilities ------------------------------------------------------------------


@runtime_checkable
class BarStream(Protocol):
    """A push stream of closed bars (a websocket), as a `LiveFeed` offers one.

    The live runner starts it, asks it at each wake-up for the bars closed since the
    last one it has, and falls back to `LiveFeed.closed_bars_of` whenever it cannot vouch
    for them (not connected yet, reconnecting, a gap).
    """

    def start(self) -> None:
        """Start receiving (in the background)."""
        ...

    def stop(self) -> None:
        """Stop receiving and release the connection; safe to call twice."""
        ...

    def closed_since(self, last_seen: pd.Timestamp) -> pd.DataFrame | None:
        """Return the bars opened after ``last_seen`` that have closed, or None: poll.

        Returns:
            OHLCV indexed by UTC open time (possibly empty), or None when the stream
            cannot vouch for every bar after ``last_seen``.
        """
        ...


@runtime_checkable
class LiveFeed(Protocol):
    """Data layer, paper and live: each symbol's bars as they close.

    One market is a universe of one: `DataSource.load_universe` gives the history a run
    starts from (each symbol's last bar closed); then the live runner asks each symbol
    for the bars closed since the newest one it has, by REST (`closed_bars_of`) or by
    its websocket stream (`bar_stream_of`, with ``live.stream``). A feed of the
    single-market form (``closed_bars``, ``bar_stream``) is deprecated; it runs through
    `tradeloom.plugins.protocols_symbols.LiveUniverseOfOne`.
    """

    def load_universe(self) -> Universe:
        """Return every symbol's validated history on one clock, up to the last closed bar."""
        ...

    def closed_bars_of(
        self, symbol: str, last_seen: pd.Timestamp, now: pd.Timestamp
    ) -> pd.DataFrame:
        """Return ``symbol``'s bars opened after ``last_seen`` and closed by ``now``, checked.

        Args:
            symbol: One symbol of the universe.
            last_seen: The open time of the newest bar the runner has of it.
            now: The run's clock.

        Returns:
            OHLCV indexed by UTC open time; empty when the exchange has published none.

        Raises:
            tradeloom.runtime.retrying.RetriesExhausted: The exchange did not answer; the runner
                journals it and asks again at its next wake-up.
        """
        ...

    def bar_stream_of(
        self, symbol: str, *, grace_seconds: float, clock: Callable[[], float]
    ) -> BarStream | None:
        """Return ``symbol``'s stream of closed bars (not started), or None: none (poll).

        Args:
            symbol: One symbol of the universe.
            grace_seconds: How long after its close a bar counts as closed without a
                later one (``live.close_delay_seconds``).
            clock: Epoch seconds now (the run's clock).
        """
        ...


@runtime_checkable
class LiveVenue(Protocol):
    """Execution layer, live: the exchange account that ``--mode live`` sends orders to.

    Live orders go through ccxt (`tradeloom.live.orders.ccxt_venue.CcxtVenue`:
    journaled before they are sent, sent once, found again by client order id), so a
    live venue names the exchange and makes the account's client. The same component
    is a `Venue` for backtests and paper runs.
    """

    exchange: str
    """The ccxt exchange id (``binance``)."""

    def trading_client(self) -> Any:
        """Return a ccxt client of the account, with its keys; no request is made.

        Raises:
            tradeloom.plugins.component.ParamError: The account cannot trade (no keys);
                its key names the setting to give.
        """
        ...


# --- optional capabilities ---------------------------------------------------------------
# A component has one of these or not; the engines ask with isinstance, never by probing
# for an attribute, so a third-party component gains a capability by implementing it.


@runtime_checkable
class NeedsCalibration(Protocol):
    """Risk layer: a sizer that reads the probability's value as a probability (fractional
    Kelly), so that a model swapped in must be calibrated (optional)."""

    needs_calibration: bool


@runtime_checkable
class ClockRefusal(Protocol):
    """A component that cannot run on bars that end when they do (optional): a model
    trained elsewhere needs bars after its training data. It says so before any bar, so
    that validation refuses the file where the run would
    (`tradeloom.engine.universe_checks.clock_problems`)."""

    def clock_refusal(self, last_open: pd.Timestamp) -> ParamError | None:
        """Return why it cannot run on bars whose last one opens at ``last_open`` (UTC),
        at the key that says so (None: it can)."""
        ...


@runtime_checkable
class UniverseRefusal(Protocol):
    """A component that cannot run over a universe of some sizes, for a reason its keys
    give (optional): it says so before any bar, so that validation refuses the file where
    the run would (`tradeloom.engine.universe_checks.universe_problems`)."""

    def universe_refusal(self, symbols: int) -> ParamError | None:
        """Return why it cannot run over ``symbols`` symbols, at the key that says so
        (None: it can)."""
        ...


@runtime_checkable
class VolumeAware(Protocol):
    """A data source that says, before loading, whether its bars have a volume column."""

    def has_volume(self) -> bool:
        """Return whether the bars will have volume."""
        ...


@runtime_checkable
class ReadsColumns(Protocol):
    """A feature that declares the columns of the bars it reads.

    Validation (``tradeloom validate``, and every run before its first bar) checks them
    against what the data source provides, one rule for every feature: ``volume`` from a
    file without that column, or a column beside OHLCV the source does not join
    (`ExtraColumns`), is refused with the feature's path. A feature that does not
    declare is not checked (nor is one that declares nothing it cannot have).
    """

    def input_columns(self) -> tuple[str, ...]:
        """Return the bars' columns it reads: of ``open``, ``high``, ``low``, ``close``,
        ``volume``, and any column beside them (an auxiliary series)."""
        ...


@runtime_checkable
class ReadsVolume(Protocol):
    """A feature that reads the bars' volume (`ReadsColumns` says it and more: a feature
    declaring either is checked)."""

    needs_volume: bool


@runtime_checkable
class ExtraColumns(Protocol):
    """A data source that says which columns beside OHLCV its bars carry."""

    def extra_columns(self) -> set[str] | None:
        """Return those columns (None: not known before loading)."""
        ...


@runtime_checkable
class ReadsBarsColumn(Protocol):
    """A feature that reads a column of the bars beside OHLCV (an auxiliary series;
    `ReadsColumns` says it and more: a feature declaring either is checked)."""

    @property
    def bars_column(self) -> str:
        """The column it reads."""
        ...


@runtime_checkable
class ReadsOrderBook(Protocol):
    """A feature of the recorded order book's columns of the bars (``data.order_book``),
    which a higher timeframe's resampling and an informative pair's bars do not carry."""

    def check_depth(self, columns: Iterable[object]) -> int:
        """Return the book levels recorded in ``columns``; raise `DataError` for too few."""
        ...


@runtime_checkable
class KnownLength(Protocol):
    """A data source that says, before loading, how many bars it has."""

    def bar_count(self) -> int | None:
        """Return the number of bars (None: not known before loading)."""
        ...


@runtime_checkable
class KnownClock(Protocol):
    """A data source that says, before loading, the clock its bars will be on."""

    def declared_clock(self) -> tuple[str, int, int] | None:
        """Return the bars' timeframe as written, the first bar's open (UTC nanoseconds)
        and how many bars there are, every one of them on that regular clock (None: not
        known before loading)."""
        ...


@runtime_checkable
class KnownSymbols(Protocol):
    """A universe source that says, before loading, how many symbols it has."""

    def symbol_count(self) -> int:
        """Return the number of symbols."""
        ...


@runtime_checkable
class AuxiliaryData(Protocol):
    """A data source that joins auxiliary series onto its bars (``data.auxiliary``)."""

    def auxiliary_series(self) -> tuple[AuxiliarySeries, ...]:
        """Return the series it joins, as declared."""
        ...


@runtime_checkable
class LiveAuxiliaryFeed(Protocol):
    """A live data source that reads its ``data.auxiliary`` series as bars close."""

    def live_auxiliary(self, symbol: str) -> AsOfRows | None:
        """Return ``symbol``'s series, row by row as its bars close (None: none declared)."""
        ...


@runtime_checkable
class ReadsText(Protocol):
    """A text feature (`tradeloom.plugins.features.text.TextFeature`): it reads documents
    of the data's text sources (``data.auxiliary`` kind ``text``) through a scorer that
    may have learnt the world up to a knowledge cutoff."""

    def text_sources(self) -> tuple[str, ...]:
        """Return the names of the text sources it reads (validation checks them)."""
        ...

    def cutoff_guard(self) -> CutoffGuard:
        """Return what the knowledge-cutoff guard checks (`tradeloom.text.cutoff`)."""
        ...


@runtime_checkable
class LiveDocuments(Protocol):
    """A live data source that reads its text sources (``data.auxiliary`` kind ``text``)
    as they grow, for the text features' per-bar drivers."""

    def live_documents(self) -> Mapping[str, DocumentFeed]:
        """Return each text source by name, read again as it grows (empty: none)."""
        ...


@runtime_checkable
class JoinsAuxiliary(Protocol):
    """A built-in data source's declared series and order book (``data.auxiliary``,
    ``data.order_book``), known before anything is loaded."""

    auxiliary: Auxiliary
    """What it joins onto its bars (`tradeloom.plugins.data.auxiliary.Auxiliary`)."""


@runtime_checkable
class VenueLimits(Protocol):
    """Execution layer: the smallest position it holds apart from flat and the smallest
    order it takes (a live market's lot and minimum cost, the simulated venue's minimum)."""

    dust: float
    """A position within this of zero is flat for the engine's decisions (a lot)."""

    min_notional: float
    """The smallest order notional it takes (quote); the core refuses a smaller one."""


@runtime_checkable
class MarketLots(Protocol):
    """Execution layer over several markets: each market's lot and minimum order cost, in
    the symbols' order."""

    dusts: tuple[float, ...]
    """A position within its market's lot of zero is flat."""

    min_costs: tuple[float, ...]
    """The core refuses an order of a symbol worth less than its market's minimum cost,
    and counts a position worth less as flat."""


@runtime_checkable
class OrderKeys(Protocol):
    """Execution layer, live: how its orders go to an exchange (``execution.orders``: limit
    orders' flags, fallback and expiry, where stops rest). Without it: market orders."""

    order_keys: Any
    """The ``execution.orders`` keys
    (`tradeloom.plugins.protocols_orders.order_params.OrdersParams`)."""


@dataclass(frozen=True)
class VenueTerms:
    """One venue of a `MultiVenue` component: what the routing policy knows of it.

    Attributes:
        name: The venue's name (``execution.venues[].name``), as the journal names it.
        index: Its place in the file (``execution.venues.<index>``): the tie-break.
        kind: Its component's kind (``simulated``, ``ccxt``).
        component: Its built execution component (a `LiveVenue` to trade it live).
        taker_fee: Fee rate of the orders it fills by taking (0.001 = 10 bps).
        maker_fee: Fee rate of its resting orders' fills (negative: a rebate).
        slippage: Adverse price move of a taking fill without a book, as a fraction.
        initial_cash: The quote it holds at the start of a backtest or paper run.
        min_notional: The smallest order it takes, in quote (backtest and paper).
        outages: When it is down in a backtest or paper run: ``(start, end)`` times,
            start included, end not (its fault schedule).
    """

    name: str
    index: int
    kind: str
    component: object
    taker_fee: float
    maker_fee: float
    slippage: float
    initial_cash: float
    min_notional: float
    outages: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()


@runtime_checkable
class MultiVenue(Protocol):
    """Execution layer over several named venues: each order is routed over them.

    A backtest and a paper run trade `modelled_venue`, which models every venue (its
    fees, cash, base held, minimum and outages) and splits each order by the routing
    policy; a live run opens each venue's exchange account from `venue_terms` and
    routes over them with the same policy.
    """

    policy: Any
    """The routing policy's keys (``execution.policy``)."""

    order_keys: Any
    """The order types' keys (``execution.orders``), the same for every venue."""

    def venue_terms(self) -> tuple[VenueTerms, ...]:
        """Return each venue's terms, in file order."""
        ...

    def modelled_venue(self, record: Callable[[Any], None]) -> Venue:
        """Return a new `Venue` modelling every venue for a backtest or a paper run.

        Args:
            record: Journals an event (each child's ``route_decision``, each venue's
                ``venue_fill`` and ``venue_health``) before the venue goes on.
        """
        ...
