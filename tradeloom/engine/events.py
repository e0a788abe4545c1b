"""Record what happens in a run: journal it, tell the observers, keep it for the outputs.

Every event is journaled first and broadcast second, so an observer never sees
an event the journal does not hold. At ``--log-level debug`` every signal, risk
decision, order and fill is also logged, one line each, with its bar, correlation id
and client order id; a backtest's are logged as its bulk rows are decoded after the
compiled run (`Recorder.absorb`), so the default level costs nothing per event.

Events are the typed kinds of `tradeloom.journal.events`; the recorder stamps the
header (the run's symbol on market events, the correlation id of the decision).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import pandas as pd
import pluggy

from tradeloom.core import records as R
from tradeloom.core.codes import PROTECTIVE_REASONS, refusal_stage, refused_exit
from tradeloom.core.columns import RowEvent, Table, Tables
from tradeloom.domain import (
    Cancellation,
    Fill,
    Halt,
    HealthAction,
    HealthChange,
    ModelTraining,
    Order,
    Refusal,
    Rejection,
    RunInfo,
    Signal,
)
from tradeloom.engine.logs import writes_debug
from tradeloom.journal import (
    NO_TIME,
    AllocationDecided,
    Event,
    FillEvent,
    HaltEvent,
    HealthActionFired,
    HealthChanged,
    JournalStore,
    ModelTrained,
    OrderCancelled,
    OrderEvent,
    RegimeChanged,
    RejectionEvent,
    RiskDecision,
    SignalEvent,
)
from tradeloom.reporting.refusals import UNKNOWN, RefusalTable, count_refusals
from tradeloom.runtime.lazy import logger
from tradeloom.tables.kept import Kept

__all__ = ["Recorder", "debug_logging"]

_log = logger("tradeloom.run")

_E = TypeVar("_E", bound=Event)


class Recorder:
    """Journal, broadcast and keep the events of one run.

    Args:
        journal: The run's journal.
        hook: The plugin manager's hook relay.
        run: The run observers are told about.
        symbol: The market the run trades (stamped on market events).
    """

    def __init__(
        self, journal: JournalStore, hook: pluggy.HookRelay, run: RunInfo, symbol: str = ""
    ) -> None:
        self.journal = journal
        self.hook = hook
        self.run = run
        self.symbol = symbol
        self.orders: Kept[Order] = Kept()
        self.order_symbols: dict[str, str] = {}
        """The market of each order, by client order id (the symbol when it was kept)."""
        self.fills: Kept[Fill] = Kept()
        self.signals = 0
        self.signal_events: Kept[Signal] = Kept()
        self.signal_symbols: list[str] = []
        """The market of each of `signal_events`."""
        self.monitor_values: dict[str, list[tuple[int, dict[str, float]]]] = {}
        self.rejections: dict[str, int] = {}
        self.rejected: dict[tuple[str, str], int] = {}
        """How many rejections of each ``(code, purpose)`` (`refusals`)."""
        self._reasons: dict[str, str] = {}
        """Each order's reason, by client order id (`purpose_of`)."""
        self.halt: Halt | None = None
        self.trainings: list[ModelTraining] = []
        self.cancellations: Kept[Cancellation] = Kept()
        self.health_actions: list[HealthAction] = []
        self.health_changes: list[HealthChange] = []
        self.allocations: list[AllocationDecided] = []
        """The allocation layer's decisions, in order (`allocated`)."""
        self.last_decision = ""
        """The last risk decision (``accepted``, ``hold``... or ``rejected CODE``)."""
        self.decision_count = 0
        """How many risk decisions and rejections were recorded."""
        self._listened = _listened(hook)
        self.debug = debug_logging()
        """Whether signals, decisions, rejections, orders and fills are logged (debug level)."""
        self._live_events = False
        self.journaled_kinds: set[str] = set()
        """The kinds of the events journaled so far (one at a time, or in bulk)."""

    def tell_live_events(self) -> None:
        """Tell observers of every event from now on (`tradeloom_live_event`): a live run."""
        self._live_events = "tradeloom_live_event" in self._listened

    def record(self, event: Event) -> None:
        """Journal an event (and, in a live run, tell `tradeloom_live_event` of it)."""
        self.journal.append(event)
        self.journaled_kinds.add(event.KIND)
        if self._live_events:
            self.hook.tradeloom_live_event(run=self.run, event=event)

    def at(
        self, bar: int | None, timestamp: Any = NO_TIME, *, market: bool = False
    ) -> dict[str, Any]:
        """Return the header of an event at ``bar`` (its own decision; -1/None: no bar).

        Args:
            bar: The bar (None: none).
            timestamp: That bar's time (NaT: none).
            market: Stamp the run's symbol (the event concerns its market).
        """
        index = -1 if bar is None else bar
        return {
            "bar": index,
            "timestamp": NO_TIME if timestamp is None else timestamp,
            "symbol": self.symbol if market else "",
            "correlation_id": index,
        }

    def decision(
        self, bar: int, timestamp: pd.Timestamp, outcome: str, reason: str, **values: Any
    ) -> None:
        """Journal what the risk layer did with a signal it did not reject."""
        self.record(
            RiskDecision(
                **self.at(bar, timestamp, market=True), outcome=outcome, reason=reason, **values
            )
        )
        self._decision(bar, outcome, reason, values)

    def regime(self, bar: int, timestamp: pd.Timestamp, change: dict[str, Any]) -> None:
        """Journal a bar whose regime differs from the previous bar's."""
        self.record(RegimeChanged(**self.at(bar, timestamp, market=True), **change))

    def training(self, training: ModelTraining, timestamp: Any, owner: str = "") -> None:
        """Record a walk-forward fold (journaled at the first bar it predicts).

        ``owner`` is stamped as its symbol: a portfolio file's strategy whose model it is.
        """
        header = self.at(training.predict_start, timestamp)
        if owner:
            header["symbol"] = owner
        self.record(_event(ModelTrained, training, **header))
        self._training(training)

    def signal(self, signal: Signal) -> None:
        """Record a signal."""
        self.record(_event(SignalEvent, signal, symbol=self.symbol, correlation_id=signal.bar))
        self._signal(signal)

    def monitor_metrics(self, bar: int, monitor: str, values: Mapping[str, float]) -> None:
        """Keep a monitor's figures at a bar for the report's charts (not journaled)."""
        self.monitor_values.setdefault(monitor, []).append((bar, dict(values)))

    def rejection(self, rejection: Rejection) -> None:
        """Record a refused intent with its reason code and values."""
        self.record(
            _event(RejectionEvent, rejection, symbol=self.symbol, correlation_id=rejection.bar)
        )
        self._rejection(rejection)

    def halted(self, halt: Halt) -> None:
        """Record a halt."""
        self.record(_event(HaltEvent, halt, correlation_id=halt.bar))
        self._halted(halt)

    def order(self, order: Order) -> None:
        """Record an order before the venue receives it."""
        self.record(_event(OrderEvent, order, symbol=self.symbol, correlation_id=order.bar))
        self._order(order)

    def fill(self, fill: Fill, decision_bar: int) -> None:
        """Record a fill; it carries the correlation id of the decision behind its order."""
        self.record(_event(FillEvent, fill, symbol=self.symbol, correlation_id=decision_bar))
        self._fill(fill, decision_bar)

    def cancelled(self, cancellation: Cancellation, decision_bar: int) -> None:
        """Record that the venue stopped working an order, and how much was left (a
        refusal, unless it is the engine's own cancel: `tradeloom_refusal`)."""
        self.record(
            _event(OrderCancelled, cancellation, symbol=self.symbol, correlation_id=decision_bar)
        )
        self.cancellations.append(cancellation)
        self._tell_cancel(cancellation)

    def refusals(self) -> RefusalTable:
        """Return the run's refusals by stage, code and purpose, as kept
        (`tradeloom.reporting.refusals.count_refusals`)."""
        cancels, orders = self.cancellations, self.orders
        if not len(cancels):  # no order to join: a backtest's orders stay columns unread
            return count_refusals(self.rejected, (), (), (), ())
        return count_refusals(
            self.rejected,
            cancels.column("order_id"),
            cancels.column("reason"),
            orders.column("id"),
            orders.column("reason"),
        )

    def purpose_of(self, order_id: str) -> str:
        """Return the reason of order ``order_id`` (`UNKNOWN`: not an order kept)."""
        reason = self._reasons.get(order_id)
        if reason is None and len(self._reasons) < len(self.orders):  # kept as columns
            ids, reasons = self.orders.column("id"), self.orders.column("reason")
            self._reasons = dict(zip(ids.tolist(), reasons.tolist(), strict=True))
            reason = self._reasons.get(order_id)
        return UNKNOWN if reason is None else str(reason)

    def allocated(self, decision: AllocationDecided) -> None:
        """Keep a rebalance's decision (journaled by the engine, in the core's order)."""
        self.allocations.append(decision)

    def health(self, change: HealthChange) -> None:
        """Record a change of health status."""
        self.record(_event(HealthChanged, change, correlation_id=change.bar))
        self._health(change)

    def health_action(self, action: HealthAction) -> None:
        """Record a health rule that fired, before its action is taken."""
        self.record(_event(HealthActionFired, action, correlation_id=action.bar))
        self._health_action(action)

    # --- what a bulk journal leaves to the recorder ------------------------------------

    def observe(self, value: HealthChange | HealthAction) -> None:
        """Keep and tell a health event whose journal row is written in bulk later."""
        if isinstance(value, HealthChange):
            self._health(value)
        else:
            self._health_action(value)

    def absorb(self, tables: Tables, symbols: Sequence[str] | None = None) -> None:
        """Keep and tell the events of rows a backtest journaled in bulk.

        What the outputs read is kept: the counts, the halt, the trainings, and the
        orders, fills, cancellations and signals as the tables' columns (their objects
        are built only if read as objects). The events a plugin listens to (and, at
        debug level, those logged) are told one by one in the rows' order, as objects.
        Health events were told when they happened (`observe`). Over several
        ``symbols``, each event's market is its own row's.
        """
        run_symbol = self.symbol

        def markets(table: Table) -> list[str]:
            if symbols is None:
                return [run_symbol] * len(table)
            return [run_symbol if s < 0 else symbols[s] for s in table.symbol.tolist()]

        signals = tables.get("signal")
        if signals is not None:
            self.signals += len(signals)
            self.signal_symbols += markets(signals)
            self.signal_events.add(len(signals), _fields_of(signals), signals.objects)
        orders = tables.get("order")
        if orders is not None:
            self.order_symbols.update(zip(orders.columns["id"], markets(orders), strict=True))
            self.orders.add(len(orders), _fields_of(orders), orders.objects)
        fills = tables.get("fill")
        if fills is not None:
            self.fills.add(len(fills), _fields_of(fills), fills.objects)
        cancels = tables.get("cancel")
        if cancels is not None:
            self.cancellations.add(len(cancels), _fields_of(cancels), cancels.objects)
        rejections = tables.get("rejection")
        decisions = tables.get("decision")
        last = -1
        if rejections is not None:
            for rejection in rejections.objects():
                self._keep_rejection(rejection)
            last = int(rejections.positions[-1])
        if decisions is not None:
            self.decision_count += len(decisions)
            if int(decisions.positions[-1]) > last:
                self.last_decision = str(decisions.columns["outcome"].array()[-1])
        told = {"halt", "training"}  # rare; a halt is always logged
        told.update(kind for kind, hook in _TOLD.items() if self.debug or hook in self._listened)
        if "tradeloom_refusal" in self._listened:
            told.update(("rejection", "cancel"))
        if self.debug:  # a decision has no hook: it is only logged
            told.add("decision")
        for event in tables.events(told):
            if symbols is not None and event.symbol >= 0:
                self.symbol = symbols[event.symbol]
            _TELL[event.kind](self, event)
        self.symbol = run_symbol

    def _tell(self, hook: str, **event: Any) -> None:
        """Call event hook ``hook`` with the run and ``event``, if a plugin implements it."""
        if hook in self._listened:
            getattr(self.hook, hook)(run=self.run, **event)

    def _decision(self, bar: int, outcome: str, reason: str, values: Mapping[str, Any]) -> None:
        self.last_decision = outcome
        self.decision_count += 1
        self._log_decision(bar, outcome, reason, values)

    def _log_decision(self, bar: int, outcome: str, reason: str, values: Mapping[str, Any]) -> None:
        if self.debug:
            extra = {k: v for k, v in values.items() if k not in ("outcome", "reason")}
            _log.debug(
                "risk_decision",
                bar=bar,
                outcome=outcome,
                reason=reason,
                correlation_id=_corr(bar),
                **extra,
            )

    def _training(self, training: ModelTraining) -> None:
        self.trainings.append(training)
        _log.debug("model_trained", **_fields(training))
        self._tell("tradeloom_model_trained", training=training)

    def _signal(self, signal: Signal) -> None:
        self.signals += 1
        self.signal_events.append(signal)
        self.signal_symbols.append(self.symbol)
        self._tell_signal(signal)

    def _tell_signal(self, signal: Signal) -> None:
        if self.debug:
            _log.debug(
                "signal",
                bar=signal.bar,
                timestamp=_time(signal.timestamp),
                direction=signal.direction,
                confidence=signal.confidence,
                probability=signal.probability,
                correlation_id=_corr(signal.bar),
            )
        self._tell("tradeloom_signal", signal=signal)

    def _rejection(self, rejection: Rejection) -> None:
        self._keep_rejection(rejection)
        self._tell_rejection(rejection)

    def _keep_rejection(self, rejection: Rejection) -> None:
        self.rejections[rejection.code] = self.rejections.get(rejection.code, 0) + 1
        key = (rejection.code, rejection.purpose)
        self.rejected[key] = self.rejected.get(key, 0) + 1
        self.last_decision = f"rejected {rejection.code}"
        self.decision_count += 1

    def _tell_rejection(self, rejection: Rejection) -> None:
        if self.debug:
            _log.debug(
                "risk_rejection",
                bar=rejection.bar,
                code=rejection.code,
                message=rejection.message,
                correlation_id=_corr(rejection.bar),
            )
        self._tell("tradeloom_risk_rejection", rejection=rejection)
        if "tradeloom_refusal" in self._listened:
            code, purpose = rejection.code, rejection.purpose or UNKNOWN
            self._tell_refusal(
                Refusal(
                    rejection.bar,
                    rejection.timestamp,
                    "rejected",
                    code,
                    purpose,
                    symbol=self.symbol,
                    message=rejection.message,
                    exit=refused_exit(code, purpose, cancelled=False),
                )
            )

    def _tell_cancel(self, cancellation: Cancellation) -> None:
        if "tradeloom_refusal" not in self._listened:
            return
        code = cancellation.reason
        stage = refusal_stage(code, cancelled=True)
        if stage is None:  # the engine's own cancel
            return
        purpose = self.purpose_of(cancellation.order_id)
        self._tell_refusal(
            Refusal(
                cancellation.bar,
                cancellation.timestamp,
                stage,  # type: ignore[arg-type]
                code,
                purpose,
                symbol=self.symbol,
                order_id=cancellation.order_id,
                remaining=cancellation.remaining,
                exit=refused_exit(code, purpose, cancelled=True),
            )
        )

    def _tell_refusal(self, refusal: Refusal) -> None:
        if refusal.exit and refusal.purpose in PROTECTIVE_REASONS:
            refusal = dataclasses.replace(refusal, protective=True)
        self._tell("tradeloom_refusal", refusal=refusal)

    def _halted(self, halt: Halt) -> None:
        self.halt = halt
        _log.warning(
            "halt",
            bar=halt.bar,
            code=halt.code,
            message=halt.message,
            correlation_id=_corr(halt.bar),
        )
        self._tell("tradeloom_halt", halt=halt)

    def _order(self, order: Order) -> None:
        self.orders.append(order)
        self.order_symbols[order.id] = self.symbol
        if len(self._reasons) == len(self.orders) - 1:  # else `purpose_of` reads them all
            self._reasons[order.id] = order.reason
        self._tell_order(order)

    def _tell_order(self, order: Order) -> None:
        if self.debug:
            _log.debug(
                "order",
                bar=order.bar,
                client_order_id=order.id,
                side=order.side,
                quantity=order.quantity,
                reason=order.reason,
                reference_price=order.reference_price,
                correlation_id=_corr(order.bar),
            )
        self._tell("tradeloom_order", order=order)

    def _fill(self, fill: Fill, decision_bar: int | None = None) -> None:
        self.fills.append(fill)
        self._tell_fill(fill, decision_bar)

    def _tell_fill(self, fill: Fill, decision_bar: int | None = None) -> None:
        if self.debug:
            _log.debug(
                "fill",
                bar=fill.bar,
                client_order_id=fill.order_id,
                side=fill.side,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                slippage=fill.slippage,
                correlation_id=_corr(decision_bar),
            )
        self._tell("tradeloom_fill", fill=fill)

    def _health(self, change: HealthChange) -> None:
        self.health_changes.append(change)
        _log.info(
            "health_changed",
            monitor=change.monitor,
            status=change.status,
            previous=change.previous,
            value=round(change.value, 4),
            bar=change.bar,
        )
        self._tell("tradeloom_health_changed", change=change)

    def _health_action(self, action: HealthAction) -> None:
        self.health_actions.append(action)
        _log.warning(
            "health_action",
            action=action.action,
            reason=action.reason,
            bar=action.bar,
            correlation_id=_corr(action.bar),
        )
        self._tell("tradeloom_health_action", action=action)


_TOLD = {
    "signal": "tradeloom_signal",
    "rejection": "tradeloom_risk_rejection",
    "order": "tradeloom_order",
    "fill": "tradeloom_fill",
}
"""The kinds of a bulk write told one by one when their hook has a listener (or at
debug level, which logs each)."""

_TELL: dict[str, Callable[[Recorder, RowEvent], None]] = R.dispatch(
    {
        R.SIGNAL: lambda rec, e: rec._tell_signal(e.value),
        R.REJECT: lambda rec, e: rec._tell_rejection(e.value),
        R.ORDER: lambda rec, e: rec._tell_order(e.value),
        R.FILL: lambda rec, e: rec._tell_fill(e.value, e.decision_bar),
        R.CANCEL: lambda rec, e: rec._tell_cancel(e.value),
        R.HALT: lambda rec, e: rec._halted(e.value),
        R.TRAINING: lambda rec, e: rec._training(e.value),
        # a decision has no hook: it is only logged
        R.DECISION: lambda rec, e: rec._log_decision(
            e.bar, e.value["outcome"], e.value["reason"], e.value
        ),
    },
    # the account's and the outputs' rows are journaled, not told one by one
    without=(R.TRADE, R.REGIME, R.STATE, R.LIQUIDATION, R.EXTERNAL, R.PARENT, R.FUNDING),
)
"""What `Recorder.absorb` does with each kind of row it tells one by one."""


class _Fields(Mapping[str, Any]):
    """A table's columns by its objects' attribute names, each made when read."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def __getitem__(self, name: str) -> Any:
        if name == "bar":
            return self._table.bar
        if name == "timestamp":
            return self._table.timestamp
        return self._table.column(name)

    def __iter__(self) -> Iterator[str]:
        return iter(["bar", "timestamp", *self._table.columns])

    def __len__(self) -> int:
        return 2 + len(self._table.columns)


def _fields_of(table: Table) -> Mapping[str, Any]:
    return _Fields(table)


def _listened(hook: pluggy.HookRelay) -> frozenset[str]:
    """Return the event hooks some plugin implements (the others are not called)."""
    names = [name for name in dir(hook) if name.startswith("tradeloom_")]
    return frozenset(
        name for name in names if getattr(getattr(hook, name), "get_hookimpls", list)()
    )


def debug_logging() -> bool:
    """Return whether structlog, as configured now, writes debug lines (`writes_debug`)."""
    return writes_debug()


def _time(value: Any) -> str | None:
    return None if value is None or value is pd.NaT else pd.Timestamp(value).isoformat()


def _corr(bar: int | None) -> str:
    return "" if bar is None else f"bar-{bar}"


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        fields = dataclasses.fields(cls)
        names = _NAMES[cls] = tuple(f.name for f in fields if f.metadata.get("journal", True))
    return names


_MAKERS: dict[tuple[type, type], Callable[[object, dict[str, Any]], Any]] = {}
"""`_event`'s constructors, by event class and class of the value."""


def _event(cls: type[_E], value: object, **header: Any) -> _E:
    """Return the event ``cls`` of a domain ``value`` (the event subclasses its class)."""
    key = (cls, type(value))
    make = _MAKERS.get(key)
    if make is None:
        make = _MAKERS[key] = _maker(cls, type(value))
    return make(value, header)  # type: ignore[no-any-return]


def _maker(cls: type, kind: type) -> Callable[[object, dict[str, Any]], Any]:
    """Compile ``cls(**{journaled fields of a kind value, then the header})``: each field
    read inline (a live tick makes an event of each signal, rejection, order and fill,
    where a ``getattr`` per field cost more than the rest). A header field overrides
    the value's: a value read back from a journal is an event already."""
    fields = "".join(f"{name!r}: v.{name}, " for name in _names(kind))
    source = f"def make(v, h):\n    return cls(**{{{fields}**h}})\n"
    env: dict[str, Any] = {"cls": cls}
    exec(compile(source, f"<event {cls.__name__} of {kind.__name__}>", "exec"), env)
    return env["make"]  # type: ignore[no-any-return]


def _fields(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in _names(type(obj))}
