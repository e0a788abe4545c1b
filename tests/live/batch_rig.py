"""Batches of orders through the real order layer, killed -9 between their children.

A `BatchRig` is two USD-M perpetuals on the emulator (ccxt's ``binance`` batches their
orders through ``POST /fapi/v1/batchOrders``), each with its `CcxtVenue` journaling
through a `JournalOrders` into one SQLite journal, sharing one `OrderBatch` as a live
account with ``execution.orders.batch`` does. `BatchRig.bar` decides orders over the
symbols, journals each intent, commits them at once and sends the orders together
(`OrderBatch.flush`), then commits the bar. A `BatchKill` dies in between, as kill -9
does: the journal keeps what was committed, nothing else (its files are read at the
kill and put back).
`BatchRig.restart` then does what a restarted run does with the orders it finds
journaled without an end (`tradeloom.live.recovery.handover.look_up`): each is tracked
again (`CcxtVenue.recover`) and looked up by its client order id once the venue's window
is over (`CcxtVenue.resolve_unknown`), found and adopted, or rejected as never arrived;
never sent again. A decided order whose intent was not committed was never sent and is
not sent now (``NOT_SENT``).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tests.builders import walk_bars
from tradeloom.domain import Order
from tradeloom.journal import OrderSent, RunIdentity, open_journal, read_events, read_rows
from tradeloom.journal.sqlite import SqliteJournal
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.order_batch import OrderBatch
from tradeloom.live.orders.order_journal import JournalOrders
from tradeloom.live.recovery.reconcile import sent_request
from tradeloom.plugins.protocols_orders.client_ids import client_order_id
from tradeloom.plugins.protocols_orders.order_events import VenueEvent, VenueOrder
from tradeloom.plugins.protocols_orders.order_state import OrderState, Transition
from tradeloom.testing import BatchFault, ExchangeEmulator

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
START = 200
BATCH_ROUTE = "POST /fapi/v1/batchOrders"
SINGLE_ROUTE = "POST /fapi/v1/order"
SETTLE = 30.0
"""The venues' window (s): a lookup finding nothing later means never arrived."""
_FILES = ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite.tail")
_IDENTITY = RunIdentity("batch", "run", "live")


class Crash(BaseException):
    """The process dies here (nothing on the way catches it)."""


@dataclass(frozen=True)
class BatchKill:
    """Where a kill -9 strikes a bar's batch.

    ``intents``: right after the ``intents``-th child's intent was journaled, before the
    batch's commit of them (their rows lost); with one more than the children, right
    after that commit, before the request left (None: not there). ``cut``: the venue
    acts on the first ``cut`` children and the connection drops (the rest never reach
    it). ``records``: once the request came back (answered, or failed), after
    ``records`` rows of its answer were journaled and before the bar's commit (None: the
    bar commits). ``refuse``: the children the venue refuses in their place.
    """

    intents: int | None = None
    cut: int | None = None
    records: int | None = None
    refuse: tuple[int, ...] = ()


class _Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class _Tripping(JournalOrders):
    """`JournalOrders` that dies where the rig's `BatchKill` says."""

    rig: BatchRig

    def intend(self, order: VenueOrder) -> None:
        super().intend(order)  # journaled, not committed: the request has not left
        self._count_intent()

    def commit_intents(self) -> None:
        had = bool(self._intended)
        super().commit_intents()  # committed: the request has not left
        if had:
            self._count_intent()

    def _count_intent(self) -> None:
        kill = self.rig.kill
        if kill is not None and kill.intents is not None:
            self.rig.intents_seen += 1
            if self.rig.intents_seen == kill.intents:
                raise Crash

    def record(self, event: VenueEvent) -> None:
        kill = self.rig.kill
        answered = not (isinstance(event, Transition) and event.state is OrderState.SUBMITTED)
        if answered and kill is not None and kill.records is not None:
            if self.rig.records_seen == kill.records:
                raise Crash
            self.rig.records_seen += 1
        super().record(event)


@dataclass
class BatchRig:
    """Two perpetuals on one emulator, their venues on one journal and one batch."""

    emulator: ExchangeEmulator
    folder: Path
    batch_size: int = 5
    clock: _Clock = field(default_factory=_Clock)
    kill: BatchKill | None = None
    intents_seen: int = 0
    records_seen: int = 0
    decided: list[str] = field(default_factory=list)
    kills: int = 0
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    journal: SqliteJournal | None = None
    venues: dict[str, CcxtVenue] = field(default_factory=dict)
    batch: OrderBatch | None = None

    @property
    def path(self) -> Path:
        return self.folder / "journal.sqlite"

    def open(self, *, batching: bool = True) -> None:
        """Open the journal (a restart: reopen it) and a venue per symbol on one client."""
        self.journal = open_journal(self.path, _IDENTITY, flush_every=10_000)
        client = self.emulator.client(timeout=5000)
        self.batch = OrderBatch(self.batch_size) if batching else None
        self.venues = {}
        for symbol in SYMBOLS:
            orders = _Tripping(self.journal, self._bar, self.clock, symbol=symbol)
            orders.rig = self
            self.venues[symbol] = CcxtVenue(
                client,
                symbol,
                orders,
                bar_clock=self._bar,
                sleep=lambda _: None,
                clock=self.clock,
                settle_seconds=SETTLE,
                batch=self.batch,
            )

    def _bar(self) -> int:
        return self.emulator.exchange.position

    def order(self, symbol: str, side: int, quantity: float) -> Order:
        """Return the next order of ``symbol`` (decided at this bar's close)."""
        bar = self._bar()
        close = float(SERIES[symbol]["close"].iloc[bar - 1])
        order_id = client_order_id("batch", "1a2b3c4d", next(self._numbers))
        return Order(order_id, bar, BARS.index[bar], side, quantity, "ENTRY", close)

    def bar(self, orders: list[tuple[str, Order]], kill: BatchKill | None = None) -> bool:
        """Journal and send ``orders`` (symbol, order) as one bar's batch; commit the bar.

        Returns:
            Whether the bar ran to its commit (False: killed in it; the journal is as
            the kill left it and the venues are gone).
        """
        assert self.journal is not None
        self.kill, self.intents_seen, self.records_seen = kill, 0, 0
        if kill is not None and (kill.cut is not None or kill.refuse):
            fault = BatchFault(refuse=kill.refuse, cut_after=kill.cut)
            self.emulator.faults.next(BATCH_ROUTE, fault)
        files = {}
        try:
            for symbol, order in orders:
                self.decided.append(order.id)
                self.venues[symbol].submit(order, batched=True)
            for venue in self.venues.values():
                venue.flush_batch()
            self.journal.flush()
        except Crash:
            files = {
                n: (self.folder / n).read_bytes() for n in _FILES if (self.folder / n).exists()
            }
        finally:
            self.kill = None
            self.emulator.faults.clear()
        if not files:
            return True
        self._die(files)
        return False

    def _die(self, files: dict[str, bytes]) -> None:
        """Drop the process as kill -9 does: what was committed stays, nothing else."""
        assert self.journal is not None
        self.journal.close()
        for name in _FILES:
            (self.folder / name).unlink(missing_ok=True)
            if name in files:
                (self.folder / name).write_bytes(files[name])
        self.journal, self.venues, self.batch = None, {}, None
        self.kills += 1
        assert self.emulator.wait_idle(10.0)

    def restart(self) -> None:
        """Reopen, track every journaled intent without an end again, and settle it."""
        self.open()
        ended = {"filled", "rejected", "cancelled"}
        last: dict[str, str] = {}
        for row in read_rows(self.path, ["order_state"]):
            last[str(row.values["client_id"])] = str(row.values["state"])
        for sent in read_events(self.path, [OrderSent]):
            assert isinstance(sent, OrderSent)
            if last.get(sent.id) in ended:
                continue
            self.venues[sent.symbol].recover(sent_request(sent), sent_at=sent.sent_at)
        self.settle()

    def settle(self) -> None:
        """A bar later (the window of every request sent is over): resolve every unknown
        order and poll, then commit."""
        assert self.journal is not None
        self.clock.now += SETTLE + 1.0
        for venue in self.venues.values():
            venue.resolve_unknown()
            venue.poll()
        self.journal.flush()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    # --- what is checked ------------------------------------------------------------------

    def posted(self) -> list[str]:
        """Every client order id that reached the venue in an order request (a batch's
        children, one by one)."""
        ids = [str(r.params.get("newClientOrderId")) for r in self.emulator.requests(SINGLE_ROUTE)]
        for request in self.emulator.requests(BATCH_ROUTE):
            children = json.loads(request.params["batchOrders"])
            ids += [str(child.get("newClientOrderId")) for child in children]
        return ids

    def check(self) -> dict[str, str]:
        """Assert no child sent twice and none lost; return each intent's last state."""
        journal = self.path
        posted = Counter(self.posted())
        assert [i for i, n in posted.items() if n > 1] == [], "a client order id was sent twice"
        intents = {sent.id for sent in read_events(journal, [OrderSent])}
        at_venue = {o.client_order_id: o for o in self.emulator.exchange.orders()}
        assert set(at_venue) <= intents, "the venue has an order the journal has not"
        assert set(posted) <= intents, "an order left before its intent was committed"
        last: dict[str, str] = {}
        for row in read_rows(journal, ["order_state"]):
            last[str(row.values["client_id"])] = str(row.values["state"])
        for client_id in intents:
            state = last.get(client_id)
            assert state not in (None, "submitted", "unknown"), (client_id, state)
            assert (state == "rejected") == (client_id not in at_venue), (client_id, state)
        for symbol in SYMBOLS:
            counted = sum(
                r.values["side"] * r.values["quantity"]
                for r in read_rows(journal, ["venue_fill"])
                if r.symbol == symbol
            )
            held = float(self.emulator.exchange.perp_position(_market_id(symbol)).amount)
            assert abs(counted - held) < 1e-9, (symbol, counted, held)
        assert self.emulator.errors == []
        return last


def _market_id(symbol: str) -> str:
    return symbol.split("/")[0] + "USDT"


BARS = walk_bars()
SERIES = {SYMBOLS[0]: BARS, SYMBOLS[1]: walk_bars(seed=11, level=2_000.0, step=4.0)}


@contextmanager
def batch_rig(folder: Path, *, batch_size: int = 5) -> Iterator[BatchRig]:
    """Two perpetuals from bar `START` on one emulator, and a rig on them."""
    with ExchangeEmulator(SERIES, {"USDT": Decimal(1_000_000)}, start=START) as emulator:
        rig = BatchRig(emulator, folder, batch_size)
        rig.open()
        try:
            yield rig
        finally:
            rig.close()
