"""The driver of the compiled bar: run the core, answer what it asks, journal what it did.

`Engine` holds one run's core state (`tradeloom.core.state.CoreState`) and calls
the compiled step (`tradeloom.core.bar.run_bars`) over the bars it is given:
every bar of a backtest in one call when every sequential layer is built in, one
bar at a time in paper and live. Whenever the step needs Python (a plugin's signal
rule, sizing or risk rule, a live venue, the monitors) it stops; `Engine` answers
through the layer's protocol and calls it again. Before each answer, and at the
end, the event rows written so far are journaled (`Engine.flush`): an order is in
the journal before a venue sees it.

The order of a bar and every rule live in `tradeloom.core`; nothing here decides.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pandas as pd

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.columns import RowContext, RowEvent, Tables, decode, few_events
from tradeloom.core.context import FillReport
from tradeloom.core.curves import equity_curve, fill_marks, universe_curve
from tradeloom.core.feed import (
    cancel_for_kill,
    cancel_unconfirmed,
    feed_cancel,
    feed_fill,
    kill,
    kill_cancels,
    latch_halt,
    record_external,
    resume,
)
from tradeloom.core.params import CoreSpec
from tradeloom.core.risk import kill_holds, kill_spares
from tradeloom.core.state import BarInputs, CoreState
from tradeloom.domain import (
    Bar,
    Cancellation,
    Fill,
    HealthAction,
    HealthChange,
    ModelTraining,
    Order,
    OrderIntent,
    Rejection,
    Signal,
    Trade,
)
from tradeloom.engine.allocating import AllocationDecision, rebalancer_of
from tradeloom.engine.book import Book
from tradeloom.engine.bulk_journal import journal_batches
from tradeloom.engine.core_spec import core_spec, sizing_year
from tradeloom.engine.events import Recorder
from tradeloom.engine.health import health_halt
from tradeloom.engine.monitor_log import RowLog
from tradeloom.engine.row_journal import RowJournal
from tradeloom.engine.watch import EventLog, FeatureRow, Watch, symbol_watches
from tradeloom.engine.wiring import Pipeline
from tradeloom.journal import (
    AllocationDecided,
    Event,
    TradingStateChanged,
)
from tradeloom.plugins.protocols import (
    CancelFills,
    CancelsTogether,
    LabelHorizon,
    Monitor,
    QuietAtOpen,
    RiskContext,
    RiskRule,
    Sizer,
    StopsResting,
    Venue,
)
from tradeloom.runtime.lazy import numpy as np
from tradeloom.tables.kept import Kept
from tradeloom.time.calendars import TradingCalendar

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["Engine", "UnknownOrder"]

_LIQUIDITY = {name: code for code, name in enumerate(L.LIQUIDITY)}
_PURE_NEEDS = frozenset((L.NEED_SIGNAL, L.NEED_SIZE, L.NEED_CHECK, L.NEED_QUANTITY))
"""The needs whose answer never moves the venue's orders (the plugins' and its sizes)."""


class UnknownOrder(KeyError):
    """A venue reported an order the engine never decided (a replay that diverged from
    its journal); its argument is the order's id."""

    def __str__(self) -> str:
        return str(self.args[0])


class Engine:
    """Run ``pipeline``'s sequential layers through the compiled core.

    Args:
        pipeline: The built components.
        recorder: Journals and broadcasts the events, in the core's order.
        order_id: The client order id of the n-th order.
        times: The open time of bar ``i``.
        timeframe_seconds: The bars' length.
        calendar: The bars' trading calendar (its year annualizes the sizing,
            `core_spec`).
        features: Returns bar ``i``'s feature row (what plugins and monitors see): one
            row, or over several symbols ``[symbols, columns]``.
        columns: The feature columns, in row order.
        symbols: The symbols traded, in the order of the inputs' symbol axis (None:
            one, the recorder's).
        venue: A Python venue to trade instead of the strategy's own (live, a replay).
        retrain: Called with the bar and the reason when a health rule says retrain.
        trainings_at: The model trainings journaled at each bar (their rows are the core's).
        on_delivery: Told ``(bar, phase, call, events, ended)`` when a Python venue
            reports something (events, or orders it stopped working) at the ``call``-th
            ask of a phase of a bar, before its events are booked (a live run journals
            it; a restart's replay reads it back).
        bulk: Journal in bulk at `finish` (a backtest): the rows are kept and written
            as columns, without a Python object per event. Otherwise each event is
            journaled when the step stops, before Python acts (paper, live).
        order_prefix: When ``order_id(n)`` is ``f"{order_prefix}-{n:06d}"`` (a backtest),
            the bulk journal builds the ids without calling it.
        spec: The core's parameters, when not the pipeline's own (`core_spec`): a
            portfolio file's account (`tradeloom.engine.account`).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        recorder: Recorder,
        order_id: Callable[[int], str],
        *,
        times: Callable[[int], pd.Timestamp],
        timeframe_seconds: int,
        calendar: TradingCalendar,
        features: Callable[[int], npt.NDArray[np.float64]],
        columns: tuple[str, ...],
        symbols: tuple[str, ...] | None = None,
        venue: Venue | None = None,
        retrain: Callable[[int, str], None] | None = None,
        trainings_at: Mapping[int, list[ModelTraining]] | None = None,
        on_delivery: Callable[[int, str, int, int, list[str]], None] | None = None,
        bulk: bool = False,
        order_prefix: str | None = None,
        spec: CoreSpec | None = None,
    ) -> None:
        self.p = pipeline
        self.rec = recorder
        self.venue: Venue = pipeline.venue if venue is None else venue
        self.spec = spec or core_spec(
            pipeline,
            timeframe_seconds,
            periods_per_year=sizing_year(calendar, timeframe_seconds),
            venue=venue,
            symbols=symbols,
        )
        self.symbols = symbols
        self.state = CoreState(self.spec, symbols=1 if symbols is None else len(symbols))
        # a plugin's signal rule keeps state (its last signal...): one per symbol
        self._signals = [pipeline.signal] + [
            copy.deepcopy(pipeline.signal) for _ in range(self.state.sym.shape[0] - 1)
        ]
        self.trainings_at: Mapping[int, list[ModelTraining]] = trainings_at or {}
        self.ctx = RowContext(
            times=times,
            order_id=order_id,
            trainings_at=self.trainings_at,
            allowed_regimes=pipeline.config.signal_regimes,
            bar_length=pd.Timedelta(seconds=timeframe_seconds),
            order_prefix=order_prefix,
            symbols=("",) if symbols is None else symbols,
            groups=tuple(pipeline.config.risk_portfolio.groups),
        )
        self.trades: Kept[Trade] = Kept()
        self.portfolio = Book(self.state, float(self.venue.initial_cash), self.trades)
        self._features = features
        self._columns = {c: j for j, c in enumerate(columns)}
        self._retrain = retrain
        self._on_delivery = on_delivery
        self._calls_bar = -1
        self._working: list[str] | None = None  # `_pending_ids` until the venue may move
        self._asked: tuple[int, set[str]] = (-1, set())  # the orders `_cancel` asked at a bar
        self._calls: dict[str, int] = {}  # the venue's asks at each phase of that bar
        self._quiet_of: Venue | None = None
        self._quiet: Callable[[], bool] | None = None
        """``_quiet_of``'s `QuietAtOpen.quiet_at_open` (None: it cannot tell)."""
        self._timeframe_seconds = timeframe_seconds
        self._calendar = calendar
        self._external: Venue | None = venue
        self.bulk = bulk
        self.log: EventLog = RowLog() if bulk else recorder
        self._journal_row = RowJournal(
            recorder, self.ctx, self.trades, symbols, self._record_training
        )
        self.watches = self._watches(pipeline)
        model = pipeline.model
        horizon = max(int(model.horizon or 0) if isinstance(model, LabelHorizon) else 0, 1)
        # per symbol, the predictions whose outcome is not known yet (and their closes)
        self._resolving: list[deque[tuple[float, float]]] = [
            deque(maxlen=horizon) for _ in range(self.state.sym.shape[0])
        ]
        self._journaled = 0
        self.rebalancer = rebalancer_of(
            pipeline,
            ("",) if symbols is None else symbols,
            periods_per_year=sizing_year(calendar, timeframe_seconds),
        )
        if self.rebalancer is not None and not self.spec.allocating:
            raise ValueError("allocation: needs the pipeline's own core parameters")
        self.warming = False
        """A live run's warm-up over its history: the allocation layer takes the closes
        and decides nothing (no order is sent before the first live bar)."""
        self._orders_read = 0
        self.size_scale = 1.0
        """The share of the sizing's size an entry takes (`scale_sizes`)."""
        self._fills: list[npt.NDArray[np.float64]] = []
        self._marked = 0  # the kept rows whose fills are among ``_fills`` (`mark_fills`)

    # --- the account ------------------------------------------------------------------

    @property
    def sequence(self) -> int:
        """Return how many orders were sent (the last order's number)."""
        return int(self.state.acct[L.A_SEQ])

    @sequence.setter
    def sequence(self, value: int) -> None:
        self.state.acct[L.A_SEQ] = value

    @property
    def halt_code(self) -> str:
        """Return the code that halted trading ('' while trading)."""
        return self.ctx.table.name(int(self.state.acct[L.A_HALT]))

    @property
    def halted(self) -> bool:
        """Return whether trading is halted."""
        return bool(self.state.acct[L.A_HALT] != 0.0)

    # --- running ----------------------------------------------------------------------

    def run(self, inputs: BarInputs, t_end: int) -> None:
        """Run the bars of ``inputs`` up to ``t_end`` (exclusive), answering every need."""
        state = self.state
        cur = state.cur
        self._working = None  # between bars the runner may have asked the venue
        while True:
            need = state.run(inputs, t_end)
            if cur[L.C_COUNT] != self._journaled:  # most bars write no row (`flush`)
                self.flush()
            if need == L.NEED_DONE:
                self._cancel_for_kill_again(inputs, t_end - 1)
                return
            self._answer(need, inputs)

    def flush(self) -> None:
        """Journal the event rows written since the last flush, in order (bulk: keep them)."""
        if self.bulk or self.state.count == self._journaled:
            return  # most bars of a run write no row: nothing to decode, mark or clear
        rows = self.state.rows(self._journaled)
        self._journaled = self.state.count
        events = few_events(rows, self.ctx)  # a quiet bar's signal and decision
        if events is None:
            tables = decode(rows, self.ctx)
            if "fill" in tables.by_kind or "funding" in tables.by_kind:  # rows moving the cash
                self._fills.append(fill_marks(rows))
            events = tables.events()
        for event in events:
            self._journal_row(event)
        self.state.clear()
        self._journaled = 0

    def equity_curve(
        self, close: npt.NDArray[np.float64], start: int = 0
    ) -> npt.NDArray[np.float64]:
        """Return each bar's position, cash and equity (columns), from the fills booked.

        Args:
            close: Each bar's close, from bar ``start`` on (`tradeloom.core.curves`).
            start: The bar of ``close[0]``.
        """
        return equity_curve(self._marks(), close, self.portfolio.initial_cash, start)

    def fill_marks(self) -> npt.NDArray[np.float64]:
        """Return ``(bar, position, cash, symbol)`` after each fill booked, in order
        (append-only: a live run's files see which bars a new fill moved)."""
        return self._marks()

    def universe_curve(
        self,
        close: npt.NDArray[np.float64],
        out: tuple[npt.NDArray[np.float64] | None, npt.NDArray[np.float64], npt.NDArray[np.float64]]
        | None = None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Return each bar's positions ``[bars, symbols]``, cash and equity (``close``:
        ``[bars, symbols]``, NaN where a symbol has no bar), written into ``out`` where
        given (`tradeloom.core.curves.universe_curve`)."""
        return universe_curve(self._marks(), close, self.portfolio.initial_cash, out)

    def _marks(self) -> npt.NDArray[np.float64]:
        marks = np.concatenate(self._fills) if self._fills else np.empty((0, 4))
        self._fills = [marks]  # compacted: a live run asks after every bar
        return marks

    def symbol(self, s: int) -> str:
        """Return the name of the ``s``-th symbol."""
        return self.rec.symbol if self.symbols is None else self.symbols[s]

    def _record_training(self, event: RowEvent) -> None:
        self.rec.training(event.value, self.ctx.times(event.bar))

    # --- the needs --------------------------------------------------------------------

    def _bar(self, inputs: BarInputs, t: int, s: int = 0) -> Bar:
        i = t - inputs.base
        px = inputs.px
        return Bar(
            t,
            self.ctx.times(t),
            float(px[0, i, s]),
            float(px[1, i, s]),
            float(px[2, i, s]),
            float(px[3, i, s]),
            float(px[4, i, s]),
            self.symbol(s),
        )

    def _row(self, t: int, s: int) -> FeatureRow:
        values = self._features(t)
        return FeatureRow(self._columns, values if values.ndim == 1 else values[s])

    def _context(self, inputs: BarInputs, t: int, s: int = 0) -> RiskContext:
        bar = self._bar(inputs, t, s)
        probability = float(inputs.px[5, t - inputs.base, s])
        return RiskContext(bar, self.portfolio.view(bar.close, s), self._row(t, s), probability)

    def _answer(self, need: int, inputs: BarInputs) -> None:
        state, io = self.state, self.state.io
        t = int(state.cur[L.C_T])
        s = int(state.cur[L.C_SYM])
        if need not in _PURE_NEEDS:
            self._working = None
        if need in (L.NEED_OPEN, L.NEED_CLOSE):
            self._match(inputs, t, s, "open" if need == L.NEED_OPEN else "close")
        elif need == L.NEED_STOP:
            self._send_last(t, s)
            self._match(inputs, t, s, "intrabar")
        elif need == L.NEED_SEND:
            self._send_last(t)
        elif need == L.NEED_CANCEL:
            reason = self.ctx.table.name(int(io[L.IO_CODE]))
            kept = self.cancel_working(self._bar(inputs, t, s), reason, symbol=s)
            # a replacement waits for an order its cancel did not end (`core.bar`'s send):
            # its number (-1: one the engine has no number of), 0: none
            io[L.IO_PENDING] = 0.0 if kept is None else float(self.ctx.seq_of(kept) or -1)
        elif need == L.NEED_QUANTITY:
            io[L.IO_QUANTITY] = self.venue.quantity_for(float(io[L.IO_QUANTITY]), float(io[L.IO_P]))
        elif need == L.NEED_MONITOR:
            self._monitor(inputs, t)
        elif need == L.NEED_RULES:
            self._rules_on_bar(inputs, t)
        elif need == L.NEED_SIGNAL:
            self._signal(inputs, t, s)
        elif need == L.NEED_SIZE:
            self._size(inputs, t, s)
        elif need == L.NEED_ALLOCATE:
            self._allocate(inputs, t)
        elif need == L.NEED_CHECK:
            self._check(inputs, t, s)
        else:  # pragma: no cover - the step asks for nothing else
            raise RuntimeError(f"the core asked for {L.NEED_NAMES[need]!r}")
        self._mirror_pending()

    def _mirror_pending(self) -> None:
        """Tell the core whether the Python venue still works an order (of each symbol)."""
        if self.spec.venue is not None:
            return
        pending = self._pending_ids()
        if self.symbols is None:
            self.state.sym[0, L.S_W_ACTIVE] = 1.0 if pending else 0.0
            return
        working = self.state.sym[:, L.S_W_ACTIVE]
        working[:] = 0.0
        for order_id in pending:
            working[self._row_of(order_id)] = 1.0

    def _pending_ids(self) -> list[str]:
        """The ids of the orders the Python venue works, asked once until the venue may
        have moved: a call to it, or a return to the runner (`run`, `_answer`)."""
        if self._working is None:
            self._working = [order.id for order in self.venue.pending()]
        return self._working

    def _row_of(self, order_id: str) -> int:
        """Return the symbol row of an order (0: one symbol, or an order not decided here)."""
        seq = self.ctx.seq_of(order_id)
        row = None if seq is None else self.ctx.row_of(seq)
        return 0 if row is None else row

    def _send_last(self, t: int, s: int = -1) -> None:
        """Send the order of the last ORDER row (journaled by the flush before this).

        While the kill switch holds, the protective exit of symbol ``s`` whose resting
        stop traded (`_stops_traded`) is booked to that stop: nothing is sent.
        """
        seq = int(self.state.acct[L.A_SEQ])
        if self.bulk:
            self._read_orders()
        order = self.ctx.order(seq)
        venue = self.venue
        state = self.state
        if (
            s >= 0
            and state.sym[s, L.S_STOP_TRADED] != 0.0
            and kill_holds(state.acct)
            and isinstance(venue, StopsResting)
        ):
            venue.bind_stop(order)
        else:
            venue.submit(order)

    def _read_orders(self) -> None:
        """Read the ORDER rows not read yet (bulk: a Python venue needs the orders)."""
        rows = self.state.rows(self._orders_read)
        self._orders_read = self.state.count
        decode(rows[rows[:, L.E_KIND] == L.EV_ORDER], self.ctx)  # registers each order

    def _match(self, inputs: BarInputs, t: int, s: int, phase: str) -> None:
        """Ask the venue what happened at ``phase`` of bar ``t`` and book it.

        Live, what it reported is told first (`_tell`), for the journal a restart
        replays from.
        """
        if phase == "open" and self._quiet_at_open():
            # the venue works nothing and owes nothing (`QuietAtOpen`): its answer is no
            # event and nothing pending, as asking it would find; the ask still counts
            self._tell(t, phase, None if self._on_delivery is None else [], 0)
            self._working = []
            self._stops_traded(inputs, t, s)
            return
        before = self._told(t, phase)
        events = self.venue.match(self._bar(inputs, t, s), phase)
        self._working = None
        self._tell(t, phase, before, len(events))
        self._deliver(events, t, s)
        if phase == "open":
            self._stops_traded(inputs, t, s)

    def _stops_traded(self, inputs: BarInputs, t: int, s: int) -> None:
        """Mark the symbols whose stop resting at the exchange traded, its trades bound to
        no exit yet (`StopsResting`): the kill switch lets their stop exit through, for
        those trades to be booked (`tradeloom.core.bar`'s protective exits)."""
        flags = self.state.sym[:, L.S_STOP_TRADED]
        flags[:] = 0.0
        venue = self.venue
        if not isinstance(venue, StopsResting):
            return
        for symbol in venue.stops_traded(self._bar(inputs, t, s)):
            if self.symbols is None or len(self.symbols) == 1:
                flags[0] = 1.0
            elif symbol in self.symbols:
                flags[self.symbols.index(symbol)] = 1.0

    def _quiet_at_open(self) -> bool:
        """Return whether the venue says the open has nothing for the engine."""
        venue = self.venue
        if venue is not self._quiet_of:  # the venue's class decides: looked up once
            self._quiet_of = venue
            self._quiet = venue.quiet_at_open if isinstance(venue, QuietAtOpen) else None
        return self._quiet is not None and self._quiet()

    def _told(self, t: int, phase: str) -> list[str] | None:
        """Before the venue is asked about ``phase`` at bar ``t`` (live): the orders it
        works (None: nothing is told)."""
        if self._on_delivery is None:
            return None
        return list(self._pending_ids())

    def _tell(self, t: int, phase: str, before: list[str] | None, events: int) -> None:
        """Tell ``on_delivery`` what the venue's answer was: its number among the asks
        at ``phase`` of bar ``t``, its events, the orders it stopped working."""
        if before is None or self._on_delivery is None:
            return
        if self._calls_bar != t:
            self._calls_bar, self._calls = t, {}
        call = self._calls.get(phase, 0)
        self._calls[phase] = call + 1
        if not before and not events:
            return  # nothing worked, nothing reported: the venue is not asked again
        working = set(self._pending_ids())
        ended = [order_id for order_id in before if order_id not in working]
        if events or ended:
            self._on_delivery(t, phase, call, events, ended)

    def _deliver(self, events: list[Fill | Cancellation], t: int, s: int) -> None:
        state = self.state
        state.make_room(2 * len(events))
        for event in events:
            seq = self._seq(event.order_id)
            decided = self.ctx.order(seq).bar
            if self.symbols is not None:  # a Python venue over a universe: the order's own
                row = self.ctx.row_of(seq)
                s = s if row is None else row
            if isinstance(event, Fill):
                fill = FillReport(
                    seq, int(event.side), float(event.quantity), float(event.price),
                    float(event.fee), float(event.slippage), decided,
                    _LIQUIDITY.get(event.liquidity, L.LIQ_UNKNOWN),
                )  # fmt: skip
                feed_fill(state.bundle(), t, s, fill)
            else:
                reason = self.ctx.table.intern(event.reason)
                feed_cancel(state.ev, state.cur, t, s, seq, event.remaining, reason, decided)

    def _seq(self, order_id: str) -> int:
        seq = self.ctx.seq_of(order_id)
        if seq is None:
            raise UnknownOrder(order_id)
        return seq

    def adopt(self, order: Order, s: int = 0) -> None:
        """Take ``order`` (of symbol row ``s``) as one of the engine's: a restart found it
        at the venue beyond its journal. Its fills and cancellation are booked as any
        order's; the engine numbers its next orders past it.

        Raises:
            ValueError: The engine has another order under that number.
        """
        seq = int(order.id.rsplit("-", 1)[-1])
        known = self.ctx.get_order(seq)
        if known is not None and known.id != order.id:
            raise ValueError(f"order {order.id}: the engine's order {seq} is {known.id}")
        self.ctx.orders[seq] = order
        self.ctx.order_seq[order.id] = seq
        self.ctx.order_rows[seq] = s
        self.sequence = max(self.sequence, seq)

    def use_venue(self, venue: Venue) -> None:
        """Send orders to ``venue`` from now on (a restart: the exchange after the replay).

        Both must be Python venues: the core keeps asking for the venue's reports.
        """
        if self.spec.venue is not None:
            raise ValueError("the engine trades the simulated venue; it cannot switch venue")
        self.venue = self._external = venue
        self._working = None
        self._mirror_pending()

    def kill_would_cancel(self) -> bool:
        """Return whether anything works that the kill switch cancels (`cancel_for_kill`):
        an order but the kill's own flatten's exits, or a sliced order's children to come."""
        sym = self.state.sym
        if (sym[:, L.S_PA_SEQ] != 0.0).any():
            return True
        if self.spec.venue is None:
            return bool(self._killed_ids())
        return any(kill_cancels(sym, s) for s in range(sym.shape[0]))

    def cancel_for_kill(self, bar: Bar) -> None:
        """Cancel between bars what the kill switch cancels; journaled.

        Every working order but the kill's own flatten's exits, and every sliced order's
        children to come (`tradeloom.core.feed.cancel_for_kill`, the one rule for the
        core's venue and a Python venue). A Python venue's order whose cancel took no
        effect is journaled (``CANCEL_UNCONFIRMED``) and cancelled again after each bar
        while the kill holds (`run`).
        """
        state = self.state
        state.make_room(state.sym.shape[0])
        at_core = self.spec.venue is not None
        cancel_for_kill(state.ev, state.cur, state.sym, bar.index, codes.KILL_SWITCH, at_core)
        if not at_core:
            self._cancel_killed(bar, self._killed_ids())
        self.flush()

    def _cancel_killed(self, bar: Bar, order_ids: list[str]) -> None:
        """Cancel ``order_ids`` at the Python venue for the kill switch; journal each whose
        cancel took no effect and that the venue works on (``CANCEL_UNCONFIRMED``, purpose
        ``KILL_SWITCH``), which the kill cancels again at the next bar (`run`)."""
        unended = self._cancel(bar, "KILL_SWITCH", order_ids)
        state = self.state
        state.make_room(len(unended))
        for order_id in unended:
            seq = float(self.ctx.seq_of(order_id) or -1)
            s = self._row_of(order_id)
            cancel_unconfirmed(state.ev, state.cur, bar.index, s, seq, codes.KILL_SWITCH)

    def _cancel_for_kill_again(self, inputs: BarInputs, t: int) -> None:
        """While the kill switch holds, cancel again after bar ``t`` what it cancels and the
        Python venue still works: an order whose cancel took no effect (not answered, not
        found while it may have filled), until the venue ends it (its cancellation, or its
        fills, booked as any). One whose cancel the bar asked already (the kill's flatten
        cancels first) waits for the next bar. The replay of a restart does the same."""
        if self.spec.venue is not None or not kill_holds(self.state.acct):
            return
        asked_at, asked = self._asked
        ids = [i for i in self._killed_ids() if asked_at != t or i not in asked]
        if ids:
            self._cancel_killed(self._bar(inputs, t), ids)
            self.flush()

    def _killed_ids(self) -> list[str]:
        """The ids of the orders the Python venue works that the kill switch cancels."""
        self._working = None
        names = codes.ORDER_REASON_NAMES.names
        return [o.id for o in self.venue.pending() if not kill_spares(names.get(o.reason, 0))]

    def scale_sizes(self, fraction: float) -> None:
        """Size every entry and add from the next decision on at ``fraction`` of what the
        sizing rule gives (1: all of it; a canary's fraction, `tradeloom.live.lifecycle.canary`).

        The rule is the core's (`tradeloom.core.bar`, ``P_SIZE_SCALE``), so it is the same
        in paper and live: the sizing's fraction of equity (after its caps) times
        ``fraction``; exits close what is held whatever its size.
        """
        self.size_scale = float(fraction)
        self.state.prm[L.P_SIZE_SCALE] = self.size_scale

    def replay_scales(self, scales: list[tuple[int, float]], bar: int) -> None:
        """Size entries after bar ``bar`` as a journal's canaries did: take each change
        ``(bar, fraction)`` of ``scales`` (in the order journaled) journaled at or before
        ``bar`` off the front and `scale_sizes` with it.

        The one rule a restart's replay (`tradeloom.live.recovery.replay`) and a parity replay
        (`tradeloom.backtest.pipeline`, ``Pipeline.scales``) follow: a change journaled
        at a bar's close is in force from the next bar's decision on.
        """
        while scales and scales[0][0] <= bar:
            self.scale_sizes(scales.pop(0)[1])

    def reconfigure(self, pipeline: Pipeline, *, monitoring: bool = False) -> None:
        """Trade ``pipeline``'s settings from the next bar on, with every state kept.

        A hot reload: the account, positions, working orders and the risk engine's
        state stay; the parameters (signal, sizing, risk rules and limits) are the new
        file's, and with ``monitoring`` (the monitors or health rules changed) so are the
        monitors and rules, which then see the events from the next bar on.
        """
        same_rule = pipeline.signal is self.p.signal
        self.p = pipeline
        if not same_rule:  # the rule in force goes on with each symbol's own state (a Python one's)
            self._signals = [pipeline.signal] + [
                copy.deepcopy(pipeline.signal) for _ in range(self.state.sym.shape[0] - 1)
            ]
        spec = core_spec(
            pipeline,
            self._timeframe_seconds,
            periods_per_year=sizing_year(self._calendar, self._timeframe_seconds),
            venue=self._external,
            symbols=self.symbols,
        )
        state = self.state
        state.spec = self.spec = spec
        state.prm[:] = spec.vector()
        state.prm[L.P_SIZE_SCALE] = self.size_scale  # a canary's, through a reload
        state.sym[:, L.S_GROUP] = spec.portfolio.groups or -1.0
        state.sym[:, L.S_DUST] = spec.dusts or spec.dust
        state.sym[:, L.S_MIN_COST] = spec.min_costs or 0.0
        if state.port.shape[0] != L.PORT_ROWS + spec.portfolio.window:
            # a new correlation window: its ring fills again from the next bar
            state.port = np.full((L.PORT_ROWS + spec.portfolio.window, state.sym.shape[0]), np.nan)
            state.acct[L.A_RETURNS] = 0.0
        state.limits = np.asarray(spec.drawdown_limits, np.float64)
        capacity = int(state.prm[L.P_RATE_CAPACITY])
        if capacity != len(state.sent):  # keep the newest sends that still fit
            count = int(state.acct[L.A_RATE_COUNT])
            head = int(state.acct[L.A_RATE_HEAD])
            kept = [state.sent[(head + k) % len(state.sent)] for k in range(count)][-capacity:]
            state.sent = np.zeros(capacity, np.int64)
            state.sent[: len(kept)] = kept
            state.acct[L.A_RATE_COUNT] = len(kept)
            state.acct[L.A_RATE_HEAD] = 0
        self.ctx.allowed_regimes = pipeline.config.signal_regimes
        if monitoring:
            watches = self.watches
            self.watches = self._watches(pipeline)
            if watches and self.watches:
                for watch, previous in zip(self.watches, watches, strict=True):
                    watch.follow(previous)

    def monitors(self) -> dict[str, Monitor]:
        """Return every symbol's monitors by label (`tradeloom.reporting.monitor_labels`:
        a strategy of one market's are its monitors by name), for ``metrics.json``."""
        return {label: m for watch in self.watches for label, m in watch.labelled().items()}

    def _watches(self, pipeline: Pipeline) -> tuple[Watch, ...]:
        """Return each symbol's monitors and health rules (none: the core never stops
        for them)."""
        if not (self.spec.monitors and pipeline.monitors):
            return ()
        return symbol_watches(
            pipeline.monitors,
            pipeline.config.health,
            self.log,
            self.ctx.symbols,
            self._row_of,
            self.rec.monitor_metrics,
        )

    def cancel_working(self, bar: Bar, reason: str, *, symbol: int | None = None) -> str | None:
        """Cancel the orders the venue works (a replacement, a protective exit).

        ``symbol``: only that symbol row's (a replacement, a protective exit over a
        universe); None: every order.

        Returns:
            The first order whose cancel took no effect and that the venue still works
            (a live venue that could not reach it, or did not find it while it may have
            filled); None: every one ended.
        """
        self._working = None  # asked afresh: this comes from between bars too
        ids = self._pending_ids()
        if symbol is not None and self.symbols is not None:
            ids = [order_id for order_id in ids if self._row_of(order_id) == symbol]
        return next(iter(self._cancel(bar, reason, ids)), None)

    def _cancel(self, bar: Bar, reason: str, order_ids: list[str]) -> list[str]:
        """Cancel ``order_ids`` at the Python venue and book what it reports; return those
        whose cancel took no effect and that the venue works on, in order."""
        events: list[Fill | Cancellation] = []
        unended: list[str] = []
        if self._asked[0] != bar.index:
            self._asked = (bar.index, set())
        self._asked[1].update(order_ids)
        if len(order_ids) > 1 and isinstance(self.venue, CancelsTogether):
            self.venue.cancel_together(order_ids, reason)  # one request; each told below
        for order_id in order_ids:
            before = self._told(bar.index, "cancel")
            cancellation = self.venue.cancel(order_id, bar, reason)
            self._working = None
            if cancellation is not None:
                events.append(cancellation)
            else:
                unended.append(order_id)
            self._tell(bar.index, "cancel", before, 0 if cancellation is None else 1)
        if isinstance(self.venue, CancelFills) and order_ids:
            # what the orders filled since the bar's opening poll, booked before the core
            # sizes what replaces them (a restart's replay asks as often: its journal's)
            before = self._told(bar.index, "cancel_fills")
            fills = self.venue.cancel_fills(order_ids, bar)
            self._working = None
            self._tell(bar.index, "cancel_fills", before, len(fills))
            events += fills
        self._deliver(events, bar.index, 0)
        self._mirror_pending()
        working = set(self._pending_ids())
        return [order_id for order_id in unended if order_id in working]

    def _monitor(self, inputs: BarInputs, t: int) -> None:
        """Show each symbol with a bar at ``t`` to its monitors and rules, in symbol
        order; journal and take each symbol's actions before the next symbol's rules."""
        assert self.watches
        if self.bulk:  # what the monitors see, from the rows since they last looked
            log = self.log
            assert isinstance(log, RowLog)
            log.read_from(self.state, self.ctx)
        close = inputs.px[3, t - inputs.base]
        for s, watch in enumerate(self.watches):
            if close[s] != close[s]:  # no bar: nothing to see, nothing resolves
                continue
            self._watch(watch, inputs, t, s)

    def _watch(self, watch: Watch, inputs: BarInputs, t: int, s: int) -> None:
        bar = self._bar(inputs, t, s)
        probability = float(inputs.px[5, t - inputs.base, s])
        resolving = self._resolving[s]
        full = len(resolving) == resolving.maxlen
        then_p, then_close = resolving[0] if full else (math.nan, math.nan)
        resolving.append((probability, bar.close))
        up = full and bar.close > then_close
        features = self._row(t, s)
        changes, actions = watch.on_bar(bar, probability, then_p, up, features, halted=self.halted)
        for change in changes:
            self._record_object(change, t)
        for action in actions:
            self._record_object(action, t)
        for action in actions:
            if action.action == "halt":
                state = self.state
                ref = self.ctx.ref(health_halt(action))
                state.make_room(1)
                latch_halt(state.acct, state.ev, state.cur, t, codes.HEALTH_HALT, ref)
            elif action.action == "retrain":
                if self._retrain is None:
                    raise RuntimeError(
                        f"{action.reason}: retrain fired, but this engine was given no "
                        "retrain callback"
                    )
                self._retrain(t, action.reason)

    def _record_object(self, value: HealthChange | HealthAction, t: int) -> None:
        """Journal a Python object at this point of the run's order."""
        if not self.bulk:
            self._journal_row.external(value)
            return
        state = self.state
        state.make_room(1)
        record_external(state.ev, state.cur, t, -1, self.ctx.ref(value))
        self.rec.observe(value)  # observers hear of it now; the journal has it in bulk

    def _allocate(self, inputs: BarInputs, t: int) -> None:
        """The allocation layer's stage: at a rebalance, journal the decision, then set
        each symbol's intent to its target (`tradeloom.engine.allocating`)."""
        rebalancer = self.rebalancer
        assert rebalancer is not None
        state = self.state
        acct, sym = state.acct, state.sym
        i = t - inputs.base
        close = inputs.px[3, i]
        equity = float(acct[L.A_EQUITY])
        held = np.zeros(sym.shape[0])
        if equity > 0.0:
            held = sym[:, L.S_QTY] * sym[:, L.S_MARK] / equity
        trading = equity > 0.0 and not self.halted and not self.warming
        decision = rebalancer.decide(
            t, int(inputs.time_ns[i]), close, inputs.px[5, i], held, trading=trading
        )
        if decision is None:
            return
        self._journal_allocation(decision, t)
        if decision.trades is None or decision.orders is None:
            return
        leverage = float(state.prm[L.P_LEVERAGE])
        for s in np.flatnonzero(decision.trades != 0.0):
            if close[s] != close[s] or sym[s, L.S_I_REASON] != 0.0:
                continue  # no bar to price it at, or the bar's exit stands
            weight = float(decision.orders[s])
            sym[s, L.S_I_REASON] = codes.REBALANCE
            sym[s, L.S_I_DIR] = float(np.sign(weight))
            sym[s, L.S_I_TARGET] = weight / leverage

    def _journal_allocation(self, decision: AllocationDecision, t: int) -> None:
        rebalancer = self.rebalancer
        assert rebalancer is not None
        weights = decision.weights
        event = AllocationDecided(
            **self.rec.at(t, self.ctx.times(t)),
            allocator=rebalancer.kind,
            status=decision.status,
            message=decision.message,
            weights=[] if weights is None else [float(w) for w in weights],
            held=[float(w) for w in decision.held],
            symbols=list(rebalancer.symbols),
            inputs_hash=decision.inputs_hash,
            window=decision.window,
        )
        self.rec.allocated(event)
        self._journal_event(event, t)

    def _journal_event(self, event: Event, t: int) -> None:
        """Journal ``event`` of bar ``t`` where the core is now: at once (a run's rows
        journaled as they come), or as a row standing for it (bulk)."""
        if not self.bulk:
            self._journal_row.external(event)
            return
        state = self.state
        state.make_room(1)
        record_external(state.ev, state.cur, t, -1, self.ctx.ref(event))

    def finish(self, times_ns: npt.NDArray[np.int64], symbol: str) -> None:
        """Journal what the run did: in bulk, the rows kept since the start (a backtest).

        The rows are read back as columns once (`tradeloom.core.columns.decode`): the
        journal writes them, the recorder keeps what the outputs read (the counts, the
        orders and fills, the halt, the trainings) and tells the observers that listen,
        and the book keeps the closed trades.
        """
        if not self.bulk:
            self.flush()
            return
        self.mark_fills()
        rows = self.state.rows()
        tables = decode(rows, self.ctx)
        converted = journal_batches(tables, self.ctx, times_ns, symbol)
        # committed without fsync: the run's close commits durably after it (one fsync
        # and one tail record for the run's journal, not one per commit)
        self.rec.journal.write_columns(converted.batches, durable=False)
        self.rec.journaled_kinds.update(converted.counts)
        self.rec.absorb(tables, self.symbols)
        self._keep_trades(tables)
        self.state.clear()
        self._marked = 0

    def mark_fills(self) -> None:
        """Make the curve's marks whole before `finish` journals the run's rows: a
        backtest's bulk rows' fills are kept as marks, each row's once (its curve is
        drawn while its rows are journaled); a run's rows journaled as they came are
        flushed."""
        if not self.bulk:
            self.flush()
        elif self.state.count > self._marked:
            self._fills.append(fill_marks(self.state.rows(self._marked)))
            self._marked = self.state.count

    def _keep_trades(self, tables: Tables) -> None:
        """Keep the closed trades of ``tables`` as columns (`Trade`'s attributes)."""
        table = tables.get("trade")
        if table is None:
            return
        columns = dict(table.columns)
        entry = columns["entry_bar"]
        stamps = self.ctx.stamps(np.concatenate([entry, table.bar]))
        columns["entry_time"], columns["exit_time"] = stamps[: len(entry)], stamps[len(entry) :]
        if self.symbols is None:
            columns["symbol"] = np.full(len(table), self.rec.symbol, dtype=object)
        else:
            names = np.empty(len(self.symbols), dtype=object)
            names[:] = self.symbols
            columns["symbol"] = names[table.symbol]

        def build() -> list[Trade]:
            # Python values by name: an int field's ints, a float field's floats, the times
            named = {
                name: values.tolist() if isinstance(values, np.ndarray) else list(values)
                for name, values in columns.items()
            }
            return [
                Trade(**dict(zip(named, row, strict=True)))
                for row in zip(*named.values(), strict=True)
            ]

        self.trades.add(len(table), columns, build)

    def _rules_on_bar(self, inputs: BarInputs, t: int) -> None:
        """Ask each rule about each symbol with a bar at ``t``; the first halt wins."""
        io = self.state.io
        io[L.IO_REF] = -1.0
        close = inputs.px[3, t - inputs.base]
        for s in range(len(close)):
            if close[s] != close[s]:  # no bar
                continue
            ctx = self._context(inputs, t, s)
            for rule in self._rules_of(s):
                halt = rule.on_bar(ctx)
                if halt is not None:
                    io[L.IO_REF] = self.ctx.ref(halt)
                    io[L.IO_CODE] = self.ctx.table.intern(halt.code)
                    return

    # the components answering for row ``s`` (a portfolio file's account: its strategy's)

    def _rules_of(self, s: int) -> tuple[RiskRule, ...]:
        return self.p.rules

    def _sizer_of(self, s: int) -> Sizer:
        return self.p.sizer

    def _sizing_name(self, s: int) -> str:
        return "risk.sizing"

    def _share_of(self, t: int, s: int) -> float:
        """Return the share of the equity row ``s`` sizes against at bar ``t`` (1: all)."""
        return 1.0

    def _signal(self, inputs: BarInputs, t: int, s: int) -> None:
        io = self.state.io
        probability = float(io[L.IO_P])
        signal = self._signals[s].on_bar(self._bar(inputs, t, s), probability)
        if signal is None:
            io[L.IO_DIR], io[L.IO_CONF] = 0.0, math.nan
            return
        io[L.IO_DIR] = signal.direction
        io[L.IO_CONF] = signal.confidence
        io[L.IO_P] = signal.probability

    def _pending_signal(self, inputs: BarInputs, t: int, s: int) -> Signal:
        row = self.state.sym[s]
        return Signal(
            t,
            self.ctx.times(t),
            int(row[L.S_X_DIR]),
            float(row[L.S_X_CONF]),
            float(row[L.S_X_P]),
        )

    def _size(self, inputs: BarInputs, t: int, s: int) -> None:
        io = self.state.io
        signal = self._pending_signal(inputs, t, s)
        size = self._sizer_of(s).size(signal, self._context(inputs, t, s))
        if isinstance(size, Rejection):
            io[L.IO_FRACTION] = 0.0
            io[L.IO_REF] = self.ctx.ref(size)
            return
        if not (0.0 < size <= 1.0):
            raise RuntimeError(
                f"{self._sizing_name(s)} returned {size!r}; expected a fraction in (0, 1]"
            )
        io[L.IO_FRACTION] = size * self._share_of(t, s)

    def _check(self, inputs: BarInputs, t: int, s: int) -> None:
        io = self.state.io
        row = self.state.sym[s]
        signal = self._pending_signal(inputs, t, s)
        wanted = int(row[L.S_X_DIR])
        intent = OrderIntent(
            bar=t,
            timestamp=signal.timestamp,
            direction=wanted,
            target_fraction=wanted * float(row[L.S_X_SIZE]),
            reason="REVERSE" if row[L.S_X_HELD] != 0.0 else "ENTRY",
            increases_exposure=True,
            probability=signal.probability,
        )
        io[L.IO_REF] = -1.0
        ctx = self._context(inputs, t, s)
        for rule in self._rules_of(s):
            rejection = rule.check(intent, ctx)
            if rejection is not None:
                io[L.IO_REF] = self.ctx.ref(rejection)
                return

    # --- the kill switch ----------------------------------------------------------------

    def kill(self, bar: Bar, message: str, at: pd.Timestamp) -> bool:
        """Halt for the kill switch (latched until `resume`); cancel every open order.

        Returns:
            Whether the trading state changed (False: already HALTED).
        """
        state = self.state
        previous = int(state.acct[L.A_STATE])
        changed = not kill_holds(state.acct)  # a drawdown's HALTED becomes the kill's
        kill(state.acct)
        if changed:
            self._journal_state(bar.index, previous, codes.HALTED_STATE, "KILL_SWITCH", message, at)
        self.cancel_for_kill(bar)
        return changed

    def flatten(self) -> None:
        """Close every position at the next bar's halts stage (``EXIT_FLATTEN``).

        Call it after `kill`: the kill holds, and lets through only these exits, which
        go down the same send stage, pre-trade checks and venue as any exit. Asked once
        (a restart's replay asks it at its journaled bar, never again), it is carried out
        until resume: a position whose exit ended without closing it (refused, cut
        short, never arrived at the venue) with no order working is closed again at the
        next bar (`tradeloom.core.risk.halt_unwinds`); an exit held for a working order
        whose cancel took no effect (``CANCEL_UNCONFIRMED``) goes again at the next bar,
        its cancel first.
        """
        self.state.acct[L.A_EXIT_HALT] = 2.0

    def resume(self, bar: int, message: str, at: pd.Timestamp) -> bool:
        """Lift the kill switch: ACTIVE, or HALTED while another halt is latched."""
        state = self.state
        if not resume(state.acct):
            return False
        new = int(state.acct[L.A_STATE])
        self._journal_state(bar, codes.HALTED_STATE, new, "RESUME", message, at)
        self.flush()
        return True

    def _journal_state(
        self, bar: int, previous: int, new: int, code: str, message: str, at: pd.Timestamp
    ) -> None:
        change = TradingStateChanged(
            **self.rec.at(bar),
            previous=codes.STATE_NAMES[previous],
            state=codes.STATE_NAMES[new],
            code=code,
            message=message,
            at=at,
        )
        self.journal(change)

    def journal(self, event: Event) -> None:
        """Journal ``event`` at this point of the engine's order (a live run's own events)."""
        state = self.state
        state.make_room(1)
        record_external(state.ev, state.cur, event.bar, -1, self.ctx.ref(event))
        self.flush()

    def restore_halt(self, code: str) -> None:
        """Take a journaled halt back (a restart): latched as it was."""
        self.state.acct[L.A_HALT] = self.ctx.table.intern(code)
