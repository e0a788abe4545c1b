"""Prometheus metrics of a paper or live run: ``live.metrics: {port, host}``.

`LiveMetrics` holds every metric of one run on its own registry (never the global
one, so that several runs in one process, or tests in parallel, do not mix). It is
fed three ways, each cheap:

- as an observer plugin (its ``@hookimpl`` methods): orders, fills, rejections,
  halts, health, the run's journaled events (`tradeloom_live_event`) and exchange
  errors (`tradeloom_exchange_error`); observers never change a decision;
- by the runner's timing points (`LiveMetrics.stage`):
  ``perf_counter`` differences the session takes anyway;
- after each tick (`after_tick`): equity, drawdown, positions, the trading state
  and the monitors' last figures, read from the session.

`serve` binds the HTTP endpoint before the first bar; a taken port is refused in one
line. `METRICS` names every metric with its type and help, for the docs and tests.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tradeloom.core import layout as L
from tradeloom.domain import Fill, Halt, HealthChange, Order, Refusal, Rejection, RunInfo
from tradeloom.errors import UserError
from tradeloom.journal import (
    Event,
    FillEvent,
    Liquidation,
    OrderCancelled,
    OrderEvent,
    OrderExpired,
    OrderSent,
    RouteDecision,
    SlicedOrder,
    StaleData,
)
from tradeloom.journal.events import dispatch
from tradeloom.live.tick.services import JournalLink, Markets, Observer, RunFiles
from tradeloom.plugins.hookspecs import hookimpl
from tradeloom.reporting.execution_quality import (
    ExecutionTerms,
    order_type,
    shortfall_bps,
    terms_of,
)
from tradeloom.reporting.monitor_labels import monitor_label
from tradeloom.runtime.extras import require
from tradeloom.version import __version__

require("prometheus_client", "live.metrics (a run's Prometheus endpoint)")

from prometheus_client import (  # noqa: E402 (after `require`, which names its extra)
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
)

__all__ = ["METRICS", "STAGES", "LiveMetrics", "MetricSpec", "serve"]


STAGES: tuple[str, ...] = ("fetch", "features", "predict", "decide", "send", "journal", "train")
"""The stages of a tick whose latency is measured (``stage`` label)."""

TRADING_STATES: tuple[str, ...] = ("ACTIVE", "REDUCING", "HALTED")
HEALTH_STATES: tuple[str, ...] = ("HEALTHY", "WARNING", "CRITICAL")

# Seconds: a tick's stages run from tens of microseconds (a feature step) to seconds
# (an exchange round trip, a model's training).
_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_SLIPPAGE_BUCKETS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
# bps: a resting limit fills below its decision price (a gain), a market order above it
_SHORTFALL_BUCKETS = (
    -200.0, -100.0, -50.0, -20.0, -10.0, -5.0, -2.0, 0.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
    200.0,
)  # fmt: skip
# seconds: a market order fills within a second live, a resting limit after bars
_FILL_BUCKETS = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)


@dataclass
class _Measured:
    """What a fill of an order is measured against (a sliced child: its parent's)."""

    venue: str
    order_type: str
    side: int
    reference: float
    sent: float


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric: its name (as scraped, before suffixes), type, labels and help."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("tradeloom_run", "info", (), "The run: run_id, strategy, mode, tradeloom version."),
    MetricSpec("tradeloom_bars_processed", "counter", (), "Bars traded live since the start."),
    MetricSpec(
        "tradeloom_tick_stage_seconds",
        "histogram",
        ("stage",),
        "Latency of each stage of a bar: fetch, features, predict, decide, send, journal, train.",
    ),
    MetricSpec(
        "tradeloom_orders", "counter", ("status",), "Orders: submitted, cancelled, expired."
    ),
    MetricSpec("tradeloom_fills", "counter", (), "Fills applied to the portfolio."),
    MetricSpec(
        "tradeloom_risk_rejections", "counter", ("code",), "Intents refused, by reason code."
    ),
    MetricSpec(
        "tradeloom_refusals",
        "counter",
        ("stage", "code", "purpose"),
        "Intents and orders refused, cut or cancelled short (metrics.json's refusals), by "
        "stage, code and the order reason of what was refused.",
    ),
    MetricSpec(
        "tradeloom_exits_refused",
        "counter",
        ("purpose",),
        "Exits refused: each left open the position it was to close.",
    ),
    MetricSpec("tradeloom_halts", "counter", ("code",), "Halts, by reason code."),
    MetricSpec("tradeloom_liquidations", "counter", (), "Positions liquidated (margin)."),
    MetricSpec(
        "tradeloom_slippage_bps", "histogram", (), "Slippage of each fill, bps of its notional."
    ),
    MetricSpec("tradeloom_equity", "gauge", (), "Equity at the last bar, in quote currency."),
    MetricSpec("tradeloom_drawdown_ratio", "gauge", (), "Drawdown from the peak equity (0..1)."),
    MetricSpec("tradeloom_position", "gauge", ("symbol",), "Position held, in base units."),
    MetricSpec("tradeloom_trading_state", "stateset", (), "ACTIVE, REDUCING or HALTED."),
    MetricSpec("tradeloom_health", "stateset", (), "Worst monitor status: HEALTHY..CRITICAL."),
    MetricSpec("tradeloom_model_auc", "gauge", ("monitor",), "Rolling AUC of the predictions."),
    MetricSpec("tradeloom_model_brier", "gauge", ("monitor",), "Rolling Brier score."),
    MetricSpec("tradeloom_feature_psi_max", "gauge", ("monitor",), "Worst feature PSI."),
    MetricSpec(
        "tradeloom_data_staleness_seconds",
        "gauge",
        (),
        "Time since the last bar traded closed, less one bar length (0: on time).",
    ),
    MetricSpec("tradeloom_stale_data_alarms", "counter", (), "Stale-data alarms raised."),
    MetricSpec(
        "tradeloom_journal_write_seconds", "histogram", (), "Latency of each journal commit."
    ),
    MetricSpec(
        "tradeloom_exchange_errors", "counter", ("error",), "Exchange errors, by ccxt class."
    ),
    MetricSpec(
        "tradeloom_execution_shortfall_bps",
        "histogram",
        ("venue", "order_type"),
        "Implementation shortfall of each fill, bps of its order's decision price (+: cost).",
    ),
    MetricSpec(
        "tradeloom_execution_fill_seconds",
        "histogram",
        ("venue", "order_type"),
        "Time from an order's send (a sliced order's decision) to each of its fills.",
    ),
    MetricSpec(
        "tradeloom_execution_fills",
        "counter",
        ("venue", "order_type", "liquidity"),
        "Fills by venue, order type and liquidity (maker, taker, unknown).",
    ),
    MetricSpec("tradeloom_alerts_sent", "counter", ("target",), "Alerts delivered."),
    MetricSpec("tradeloom_alerts_failed", "counter", ("target",), "Alert deliveries that failed."),
    MetricSpec(
        "tradeloom_alerts_dropped",
        "counter",
        ("reason",),
        "Alerts not sent: queue_full, rate_limited or duplicate.",
    ),
)
"""Every metric a run exports (counters gain ``_total`` when scraped)."""


class LiveMetrics(Observer):
    """The metrics of one paper or live run, on their own registry: an `Observer` of the
    run's stages and ticks, and an observer plugin of its events.

    Args:
        run: The run (its info metric).
    """

    def __init__(self, run: RunInfo) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        specs = {spec.name: spec for spec in METRICS}

        def counter(name: str) -> Counter:
            spec = specs[name]
            return Counter(name, spec.help, spec.labels, registry=registry)

        def gauge(name: str) -> Gauge:
            spec = specs[name]
            return Gauge(name, spec.help, spec.labels, registry=registry)

        def histogram(name: str, buckets: tuple[float, ...]) -> Histogram:
            spec = specs[name]
            return Histogram(name, spec.help, spec.labels, buckets=buckets, registry=registry)

        def enum(name: str, states: Sequence[str]) -> Enum:
            return Enum(name, specs[name].help, states=list(states), registry=registry)

        info = Info("tradeloom_run", specs["tradeloom_run"].help, registry=registry)
        info.info(
            {
                "run_id": run.run_id,
                "strategy": run.strategy,
                "mode": run.mode,
                "version": __version__,
            }
        )
        self.bars = counter("tradeloom_bars_processed")
        self.stages = histogram("tradeloom_tick_stage_seconds", _LATENCY_BUCKETS)
        self._stage = {name: self.stages.labels(stage=name) for name in STAGES}
        self.orders = counter("tradeloom_orders")
        for status in ("submitted", "cancelled", "expired"):
            self.orders.labels(status=status)
        self.fills = counter("tradeloom_fills")
        self.rejections = counter("tradeloom_risk_rejections")
        self.refusals = counter("tradeloom_refusals")
        self.exits_refused = counter("tradeloom_exits_refused")
        self.halts = counter("tradeloom_halts")
        self.liquidations = counter("tradeloom_liquidations")
        self.slippage = histogram("tradeloom_slippage_bps", _SLIPPAGE_BUCKETS)
        self.equity = gauge("tradeloom_equity")
        self.drawdown = gauge("tradeloom_drawdown_ratio")
        self.position = gauge("tradeloom_position")
        self.state = enum("tradeloom_trading_state", TRADING_STATES)
        self.health = enum("tradeloom_health", HEALTH_STATES)
        self.auc = gauge("tradeloom_model_auc")
        self.brier = gauge("tradeloom_model_brier")
        self.psi = gauge("tradeloom_feature_psi_max")
        self.staleness = gauge("tradeloom_data_staleness_seconds")
        self.stale_alarms = counter("tradeloom_stale_data_alarms")
        self.journal_writes = histogram("tradeloom_journal_write_seconds", _LATENCY_BUCKETS)
        self.exchange_errors = counter("tradeloom_exchange_errors")
        self.alerts_sent = counter("tradeloom_alerts_sent")
        self.alerts_failed = counter("tradeloom_alerts_failed")
        self.alerts_dropped = counter("tradeloom_alerts_dropped")
        for reason in ("queue_full", "rate_limited", "duplicate"):
            self.alerts_dropped.labels(reason=reason)
        self.shortfall = histogram("tradeloom_execution_shortfall_bps", _SHORTFALL_BUCKETS)
        self.fill_seconds = histogram("tradeloom_execution_fill_seconds", _FILL_BUCKETS)
        self.execution_fills = counter("tradeloom_execution_fills")
        self._measured: dict[str, _Measured] = {}
        self._terms = ExecutionTerms()
        self._health: dict[str, str] = {}
        self._run: tuple[RunFiles, JournalLink, Markets] | None = None

    # --- the runner's timing points and ticks -------------------------------------------

    times_stages = True

    def stage(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` spent in ``stage`` of a bar (one of `STAGES`).

        The ``journal`` stage is the bar's journal write (its rows appended and
        committed): it is also a journal write's latency.
        """
        self._stage[stage].observe(seconds)
        if stage == "journal":
            self.journal_writes.observe(seconds)

    def follow(self, files: RunFiles, link: JournalLink, markets: Markets) -> None:
        """Read the run's clock and terms from ``files``, its monitors from ``link``'s
        recorder and its session from ``markets`` (the data staleness at each scrape)."""
        self._run = (files, link, markets)
        self._terms = terms_of(files.config.document)
        self.staleness.set_function(self._staleness)

    def after_tick(self, processed: int, state: str) -> None:
        """Update the figures read from the session after a tick that ran ``processed`` bars
        and left the run in trading ``state``."""
        if self._run is None:
            return
        files, link, markets = self._run
        session = markets.session
        if session is None:
            return
        if processed:
            self.bars.inc(processed)
        acct = session.engine.state.acct
        equity = float(acct[L.A_EQUITY])
        peak = float(acct[L.A_PEAK])
        self.equity.set(equity)
        self.drawdown.set(max(0.0, 1.0 - equity / peak) if peak > 0 else 0.0)
        book = session.engine.portfolio
        symbols = session.engine.symbols or (files.symbol,)
        for s, symbol in enumerate(symbols):
            self.position.labels(symbol=symbol).set(float(book.position_of(s)))
        self.state.state(state)  # REDUCING while the journal is lost
        recorder = link.recorder
        if recorder is not None:
            for monitor, values in recorder.monitor_values.items():
                if not values:
                    continue
                last = values[-1][1]
                for key, target in (("auc", self.auc), ("brier", self.brier)):
                    if key in last:
                        target.labels(monitor=monitor).set(last[key])
                if "psi_max" in last:
                    self.psi.labels(monitor=monitor).set(last["psi_max"])

    def _staleness(self) -> float:
        if self._run is None:
            return 0.0
        files, _, markets = self._run
        if markets.session is None:
            return 0.0
        history = markets.session.history
        try:
            late = files.now() - history.last_time
        except Exception:  # a scrape must never fail for a moment of the runner's state
            return math.nan
        seconds = late / pd.Timedelta(seconds=1) - 2 * history.timeframe_seconds
        return max(0.0, float(seconds))

    # --- alerts' own counts -------------------------------------------------------------

    def alert_targets(self, names: list[str]) -> None:
        """Show every target's sent and failed counts from zero."""
        for name in names:
            self.alerts_sent.labels(target=name)
            self.alerts_failed.labels(target=name)

    def alert_sent(self, target: str) -> None:
        """Count an alert delivered to ``target``."""
        self.alerts_sent.labels(target=target).inc()

    def alert_failed(self, target: str) -> None:
        """Count an alert that ``target`` did not accept."""
        self.alerts_failed.labels(target=target).inc()

    def alert_dropped(self, reason: str) -> None:
        """Count an alert not sent (``queue_full``, ``rate_limited``, ``duplicate``)."""
        self.alerts_dropped.labels(reason=reason).inc()

    # --- observer hooks -----------------------------------------------------------------

    @hookimpl
    def tradeloom_order(self, order: Order) -> None:
        """Count an order submitted."""
        self.orders.labels(status="submitted").inc()

    @hookimpl
    def tradeloom_fill(self, fill: Fill) -> None:
        """Count a fill and its slippage in bps of the notional before slippage."""
        self.fills.inc()
        if fill.quantity > 0:
            base = fill.price - fill.side * fill.slippage / fill.quantity
            notional = base * fill.quantity
            if notional > 0:
                self.slippage.observe(fill.slippage / notional * 1e4)

    @hookimpl
    def tradeloom_risk_rejection(self, rejection: Rejection) -> None:
        """Count a rejection by its reason code."""
        self.rejections.labels(code=rejection.code).inc()

    @hookimpl
    def tradeloom_refusal(self, refusal: Refusal) -> None:
        """Count a refusal by stage, code and purpose; an exit's, by purpose too."""
        self.refusals.labels(stage=refusal.stage, code=refusal.code, purpose=refusal.purpose).inc()
        if refusal.exit:
            self.exits_refused.labels(purpose=refusal.purpose).inc()

    @hookimpl
    def tradeloom_halt(self, halt: Halt) -> None:
        """Count a halt by its reason code."""
        self.halts.labels(code=halt.code).inc()

    @hookimpl
    def tradeloom_health_changed(self, change: HealthChange) -> None:
        """Show the worst status over the monitors (over a universe, every symbol's)."""
        self._health[monitor_label(change.monitor, change.symbol)] = change.status
        worst = max(self._health.values(), key=HEALTH_STATES.index)
        self.health.state(worst)

    @hookimpl
    def tradeloom_live_event(self, event: Event) -> None:
        """Count cancellations, expiries, liquidations and stale-data alarms; measure
        each fill's execution (`tradeloom.reporting.execution_quality`'s rules)."""
        counted = _COUNTED.get(event.KIND)
        if counted is not None:
            counted(self, event)

    def _sliced(self, event: SlicedOrder) -> None:
        self._measured[event.id] = _Measured(
            self._terms.venue, event.slicing, event.side, event.reference_price, self._now()
        )

    def _sent(self, event: OrderSent) -> None:
        measured = self._measured.get(event.id)
        if measured is not None and measured.order_type == "limit" and event.post_only:
            measured.order_type = "limit_post_only"

    def _order(self, event: OrderEvent) -> None:
        parent = self._measured.get(event.parent_id) if event.parent_id else None
        if parent is not None:
            self._measured[event.id] = parent
        else:
            kind = order_type(event.kind, self._terms.post_only)
            self._measured[event.id] = _Measured(
                self._terms.venue, kind, event.side, event.reference_price, self._now()
            )

    def _routed(self, event: RouteDecision) -> None:
        measured = self._measured.get(event.order_id)
        if measured is not None:
            measured.venue = event.venue

    def _fill(self, event: FillEvent) -> None:
        measured = self._measured.get(event.order_id)
        if measured is None:
            return  # an order of before a restart
        labels = {"venue": measured.venue, "order_type": measured.order_type}
        self.execution_fills.labels(**labels, liquidity=event.liquidity or "unknown").inc()
        cost = shortfall_bps(measured.side, event.price, measured.reference)
        if math.isfinite(cost):
            self.shortfall.labels(**labels).observe(cost)
        waited = self._now() - measured.sent
        if math.isfinite(waited):
            self.fill_seconds.labels(**labels).observe(max(0.0, waited))

    def _cancelled(self, event: OrderCancelled) -> None:
        self.orders.labels(status="cancelled").inc()

    def _expired(self, event: OrderExpired) -> None:
        self.orders.labels(status="expired").inc()

    def _liquidated(self, event: Liquidation) -> None:
        self.liquidations.inc()

    def _stale(self, event: StaleData) -> None:
        self.stale_alarms.inc()

    def _now(self) -> float:
        return math.nan if self._run is None else self._run[0].now().value / 1e9

    @hookimpl
    def tradeloom_exchange_error(self, error: str) -> None:
        """Count an exchange error by its ccxt class."""
        self.exchange_errors.labels(error=error).inc()


_COUNTED: dict[str, Callable[[LiveMetrics, Any], None]] = dispatch(
    {
        SlicedOrder: LiveMetrics._sliced,
        OrderEvent: LiveMetrics._order,
        OrderSent: LiveMetrics._sent,
        FillEvent: LiveMetrics._fill,
        RouteDecision: LiveMetrics._routed,
        OrderCancelled: LiveMetrics._cancelled,
        OrderExpired: LiveMetrics._expired,
        Liquidation: LiveMetrics._liquidated,
        StaleData: LiveMetrics._stale,
    },
    "metrics",
)
"""What the metrics do with each kind declared read by them (``metrics``)."""


@contextmanager
def serve(metrics: LiveMetrics, host: str, port: int, where: str) -> Iterator[int]:
    """Serve ``metrics`` on ``http://host:port/metrics`` inside the block; yield the port.

    Args:
        metrics: The run's metrics.
        host: The address to bind (127.0.0.1 unless the strategy says otherwise).
        port: The port (0: any free one).
        where: How messages name the setting (``file:line:col live.metrics.port``).

    Raises:
        UserError: The port is taken, or the address cannot be bound.
    """
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(
                f"{where}: port {port} on {host} is taken by another program; choose a free "
                "port (0: any free one)"
            ) from None
        raise UserError(
            f"{where}: cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
