"""The whole live runner against the emulator under random fault schedules and crashes.

Hypothesis draws which requests go wrong (an order submission answered by a
timeout after the venue took it, a dropped connection, a 429, a 5xx, a refusal, a
partial fill; bursts of failures on the reads: order lookups, trades, open orders,
cancels, klines, and the account, time and markets a restart reads) and where the
process dies (between two bars, or in the middle of one, just after a venue event
was journaled but before the bar was committed).
The run goes on bar by bar, restarted from its journal after each crash; the
faults stop for the last few bars so that every order the run lost track of is
settled. Then:

1. no client order id reached the venue twice;
2. no trade was counted twice, the engine applied no more fills than the venue made,
   and no order was cancelled twice;
3. the journal's position is what the venue holds (the fills counted but not yet
   reported to the engine aside), every order the venue has is in the journal and
   none of them journaled as refused, and no order is left unknown;
4. the emulator saw no internal error (a fault is not an error).

A few fixed examples replay schedules that once broke the runner. Waits between
read attempts are recorded, not slept. ``settle_seconds`` (after which an order the
venue does not have counts as never arrived) is measured on the emulator's market
clock, one bar: `run_with_faults` puts the venue's and the intent journal's clocks
on it, so a restart compares times of the same clock.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from live_emulated import HISTORY, STRATEGY, EmulatedRun, crash, emulated_run, rows

from tradeloom.journal import JournalStore
from tradeloom.live import venues
from tradeloom.live.exchange_venue import ExchangeVenue
from tradeloom.live.order_journal import JournalOrders
from tradeloom.live.runner import LiveRunner
from tradeloom.plugins.data.ccxt_retry import ExchangeUnavailable
from tradeloom.plugins.execution.ccxt_venue import CcxtVenue
from tradeloom.plugins.execution.order_events import VenueEvent, VenueOrder
from tradeloom.plugins.execution.order_state import OrderState
from tradeloom.retrying import RetriesExhausted
from tradeloom.testing import (
    DropConnection,
    Exchange,
    Fault,
    PartialFill,
    RateLimited,
    Reject,
    RequestRecord,
    ServerError,
    Timeout,
)

END = HISTORY + 65
"""Faults and crashes happen up to this bar."""

QUIET = 3
"""Bars without faults at the end: unknown orders are looked up and settled."""

SETTLE_SECONDS = 3600.0
"""One bar of market time: an order not found a bar after it was sent never arrived."""

TIMEOUT_MS = 250
"""The ccxt client's timeout: what a swallowed request costs in wall time. A loopback
request is answered in milliseconds, so 250 ms still tells a swallowed one from a slow
one on a loaded machine (at 500 ms, waiting out timeouts was a large share of this
file's time)."""

# The first fold predicts from before the live bars, and a low threshold trades often:
# a typical example sends 20 to 30 orders in its 68 bars.
TEXT = (
    STRATEGY.replace(
        "walk_forward: {train_window: 120, retrain_every: 40}",
        "walk_forward: {train_window: 80, retrain_every: 30}",
    )
    .replace(
        "signal: {kind: threshold, threshold: 0.04, min_interval: 2}",
        "signal: {kind: threshold, threshold: 0.02, min_interval: 1}",
    )
    .replace(
        "  secret: ${EMU_API_SECRET}\n",
        f"  secret: ${{EMU_API_SECRET}}\n  config: {{timeout: {TIMEOUT_MS}}}\n",
    )
)
assert TEXT.count("train_window: 80") == TEXT.count("threshold: 0.02") == 1
assert f"timeout: {TIMEOUT_MS}" in TEXT

ORDER = "POST /api/v3/order"
READS = (
    "GET /api/v3/order",
    "GET /api/v3/myTrades",
    "GET /api/v3/openOrders",
    "DELETE /api/v3/order",
    "GET /api/v3/klines",
    "GET /api/v3/account",
    "GET /api/v3/time",
    "GET /api/v3/exchangeInfo",
)
CALLS = {
    ORDER: 26,
    "GET /api/v3/order": 4,
    "GET /api/v3/myTrades": 8,
    "GET /api/v3/openOrders": 6,
    "DELETE /api/v3/order": 4,
    "GET /api/v3/klines": 70,
    "GET /api/v3/account": 2,
    "GET /api/v3/time": 2,
    "GET /api/v3/exchangeInfo": 2,
}
"""Request numbers faults are planned on, per route, after the first start.

About what a run makes: a market order fills when it arrives, so orders are polled
(trades, open orders, lookups) only while one works on (a partial fill) or is
unknown; account, time and markets are read by a restart.
"""


# --- what goes wrong --------------------------------------------------------------------

SUBMIT_FAULTS: list[Fault] = [
    Timeout(after_accept=True, max_seconds=5),
    Timeout(max_seconds=5),
    DropConnection(after_accept=True),
    DropConnection(),
    RateLimited(retry_after=2),
    ServerError(500),
    ServerError(503, after_accept=True),
    ServerError(500, code=-1001, msg="Internal error; unable to process your request."),
    Reject(-2010, "Account has insufficient balance for requested action."),
    Reject(-2010, "Duplicate order sent."),
    Reject(-1013, "Filter failure: LOT_SIZE"),
]
"""What can happen to one order submission (besides a partial fill)."""

READ_FAULTS: list[Fault] = [
    Timeout(max_seconds=5),
    DropConnection(),
    RateLimited(retry_after=1),
    RateLimited(retry_after=3),
    ServerError(500),
    ServerError(502),
    ServerError(503),
    ServerError(500, code=-1001, msg="Internal error; unable to process your request."),
]
"""What can happen to one read; a burst of 5 outlasts the venue's and the feed's retries."""


@dataclass(frozen=True)
class Planned:
    """``faults`` on requests ``call`` to ``call + burst - 1`` of ``route`` (after start)."""

    route: str
    call: int
    burst: int
    faults: tuple[Fault, ...]


@dataclass(frozen=True)
class CrashAt:
    """Kill the process at bar ``bar``: after its ``event``-th journaled venue event
    (None: after the bar), then leave it down for ``down`` bars."""

    bar: int
    event: int | None
    down: int


partial = st.sampled_from([0.25, 0.4, 0.5]).map(PartialFill)


@st.composite
def submissions(draw: st.DrawFn) -> Planned:
    call = draw(st.integers(1, CALLS[ORDER]))
    fault = draw(st.sampled_from(SUBMIT_FAULTS) | st.none())
    fill = draw(partial if fault is None else partial | st.none())
    faults = tuple(f for f in (fault, fill) if f is not None)
    return Planned(ORDER, call, draw(st.integers(1, 2)), faults)


@st.composite
def reads(draw: st.DrawFn) -> Planned:
    route = draw(st.sampled_from(READS))
    fault = draw(st.sampled_from(READ_FAULTS))
    burst = draw(st.sampled_from([1, 1, 2, 3, 5, 6]))
    return Planned(route, draw(st.integers(1, CALLS[route])), burst, (fault,))


schedules = st.lists(submissions() | reads(), min_size=3, max_size=14)
crashes = st.lists(
    st.builds(
        CrashAt,
        bar=st.integers(HISTORY + 2, END - 1),
        event=st.none() | st.integers(0, 3),
        down=st.integers(0, 2),
    ),
    max_size=2,
    unique_by=lambda c: c.bar,
).map(lambda found: sorted(found, key=lambda c: c.bar))


# --- the harness ------------------------------------------------------------------------


class _Crash(BaseException):
    """The process dies here (a BaseException: nothing on the way catches it)."""


class _Tripwire:
    """Counts venue events journaled during one bar and kills the process at the n-th."""

    def __init__(self) -> None:
        self.countdown: int | None = None

    def passed(self) -> None:
        if self.countdown is None:
            return
        if self.countdown == 0:
            self.countdown = None
            raise _Crash
        self.countdown -= 1


def _journal_orders(trip: _Tripwire, clock: Callable[[], float]) -> Callable[..., JournalOrders]:
    class Tripping(JournalOrders):
        def before_send(self, order: VenueOrder) -> None:
            super().before_send(order)
            trip.passed()  # the intent is committed, the request never leaves

        def record(self, event: VenueEvent) -> None:
            super().record(event)
            trip.passed()  # the venue answered, the bar is not committed

    def build(
        journal: JournalStore, bar_clock: Callable[[], int], symbol: str = "", **kw: Any
    ) -> Tripping:
        return Tripping(journal, bar_clock, clock, symbol=symbol, **kw)

    return build


def _venue(waits: list[float], clock: Callable[[], float]) -> Callable[..., CcxtVenue]:
    def build(*args: Any, **kwargs: Any) -> CcxtVenue:
        return CcxtVenue(
            *args, **kwargs, sleep=waits.append, clock=clock, settle_seconds=SETTLE_SECONDS
        )

    return build


def start(run: EmulatedRun, run_dir: Path, waits: list[float]) -> LiveRunner:
    """Start (or restart) the run; a start that found the venue unreachable is tried again.

    A start may refuse to go on when a read failed every attempt (it cannot reconcile
    without the venue); any other exception fails the test.
    """
    for _ in range(6):
        runner = run.runner(run_dir)
        runner.source.feed.sleep = waits.append
        try:
            runner.start()
        except (RetriesExhausted, ExchangeUnavailable) as error:
            note(f"start refused: {error}")
            crash(runner)
            continue
        return runner
    raise AssertionError("the run could not start six times in a row")


def plan(run: EmulatedRun, schedule: list[Planned]) -> None:
    """Schedule the faults on request numbers counted from now."""
    for item in schedule:
        seen = len(run.emulator.requests(item.route))
        for k in range(item.burst):
            run.emulator.faults.on_call(item.route, seen + item.call + k, *item.faults)


@contextmanager
def run_with_faults() -> Iterator[tuple[EmulatedRun, Path, list[float], _Tripwire]]:
    """An emulated run in a fresh directory, its venue on the emulator's market clock."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        pytest.MonkeyPatch.context() as monkeypatch,
    ):
        tmp = Path(scratch)
        monkeypatch.chdir(tmp)
        with emulated_run(tmp, monkeypatch, text=TEXT) as run:

            def market_seconds() -> float:
                return run.emulator.exchange.now_ms() / 1000.0

            waits: list[float] = []
            trip = _Tripwire()
            monkeypatch.setattr(venues, "CcxtVenue", _venue(waits, market_seconds))
            monkeypatch.setattr(venues, "JournalOrders", _journal_orders(trip, market_seconds))
            yield run, tmp / "live", waits, trip


# --- the property -----------------------------------------------------------------------


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(schedule=schedules, crash_points=crashes)
# Found by this test, fixed; kept as regressions:
# klines failing every attempt once ended the run (an exception out of tick);
@example(schedule=[Planned("GET /api/v3/klines", 10, 5, (ServerError(503),))], crash_points=[])
# a restart's check of the open orders was not retried: one 502 refused the restart;
@example(
    schedule=[Planned("GET /api/v3/openOrders", 1, 1, (ServerError(502),))],
    crash_points=[CrashAt(120, None, 0)],
)
# the replay after a restart ended an order cancelled at a bar's close when its fills
# were reported at that bar's open (not replacing it as the run had): restart refused;
@example(
    schedule=[Planned(ORDER, 9, 1, (PartialFill(0.25),))], crash_points=[CrashAt(135, None, 0)]
)
# a poll whose open-orders read failed every attempt dropped the trades it had just
# counted: never reported to the engine, whose position then differed from the venue's;
@example(
    schedule=[
        Planned(ORDER, 12, 1, (PartialFill(0.25),)),
        Planned("GET /api/v3/openOrders", 2, 5, (ServerError(503),)),
    ],
    crash_points=[],
)
# a restart whose lookup of the order it died sending failed every attempt refused to
# trade, the position off by that order: it may fill, as a running order may;
@example(
    schedule=[Planned("GET /api/v3/order", 1, 6, (Timeout(max_seconds=5),))],
    crash_points=[CrashAt(122, 2, 2)],
)
# the replay after a restart did not return a cancel's cancellation whose reason was
# not the one asked (REPLACED found the order never arrived): restart refused;
@example(
    schedule=[
        Planned(ORDER, 2, 2, (DropConnection(),)),
        Planned("GET /api/v3/order", 1, 6, (ServerError(500),)),
    ],
    crash_points=[CrashAt(148, None, 0)],
)
# a restart with an order partly filled counts its journaled trades once;
@example(
    schedule=[Planned(ORDER, 3, 1, (PartialFill(0.25),))], crash_points=[CrashAt(113, None, 0)]
)
# and a restart whose poll counted a trade, then failed a lookup, left that trade out of
# the position it reconciled (held for the next call): restart refused, nothing lost.
@example(
    schedule=[
        Planned(ORDER, 3, 1, (PartialFill(0.25),)),
        Planned("GET /api/v3/order", 1, 5, (ServerError(503),)),
    ],
    crash_points=[CrashAt(114, 1, 2)],
)
# a restart after a crash that cut the bar a submission was refused in (a 429) dropped
# the order without telling the engine, which decided another exit; the next restart's
# replay then met that exit's fills with no order of its own (KeyError in the engine);
@example(
    schedule=[
        Planned("GET /api/v3/order", 1, 1, (Timeout(after_accept=False, max_seconds=5),)),
        Planned(ORDER, 1, 1, (PartialFill(0.25),)),
        Planned(ORDER, 1, 1, (PartialFill(0.25),)),
        Planned(ORDER, 16, 1, (RateLimited(retry_after=2),)),
    ],
    crash_points=[CrashAt(156, None, 0), CrashAt(158, None, 0)],
)
# and a restart whose journal counted a trade a cancel reported (to be applied at the
# next open, when the process had died) never applied it: refused, the journal's position
# 0.166 BTC, the venue's 0.498.
@example(
    schedule=[
        Planned(ORDER, 1, 2, (PartialFill(0.25),)),
        Planned(ORDER, 2, 1, (PartialFill(0.25),)),
        Planned(ORDER, 13, 1, (PartialFill(0.25),)),
        Planned(ORDER, 3, 2, (PartialFill(0.25),)),
        Planned(ORDER, 4, 1, (PartialFill(0.25),)),
        Planned("GET /api/v3/myTrades", 1, 5, (Timeout(after_accept=False, max_seconds=5),)),
        Planned(ORDER, 10, 2, (PartialFill(0.25),)),
        Planned(ORDER, 17, 2, (PartialFill(0.25),)),
        Planned(ORDER, 24, 1, (PartialFill(0.25),)),
        Planned(ORDER, 20, 1, (Timeout(after_accept=True, max_seconds=5), PartialFill(0.25))),
        Planned(ORDER, 17, 1, (Timeout(after_accept=True, max_seconds=5),)),
    ],
    crash_points=[CrashAt(105, None, 0), CrashAt(123, 1, 2)],
)
# and a restart that found its last order filled by a lookup, its trades' reads failing,
# refused to trade: the venue's 1.2995 BTC beyond the journal's position was that order's.
@example(
    schedule=[
        Planned("GET /api/v3/myTrades", 1, 6, (Timeout(after_accept=False, max_seconds=5),)),
        Planned(ORDER, 22, 1, (Timeout(after_accept=True, max_seconds=5), PartialFill(0.25))),
        Planned("GET /api/v3/myTrades", 6, 6, (Timeout(after_accept=False, max_seconds=5),)),
        Planned("GET /api/v3/order", 1, 1, (Timeout(after_accept=False, max_seconds=5),)),
        Planned(ORDER, 17, 1, (PartialFill(0.25),)),
    ],
    crash_points=[CrashAt(155, 3, 0)],
)
# and a restart while an order still worked (a quarter filled per bar), its trades' reads
# failing, refused to trade: the venue had filled the rest while the run was down.
@example(
    schedule=[
        Planned(ORDER, 6, 1, (PartialFill(0.25),)),
        Planned(ORDER, 9, 2, (PartialFill(0.25),)),
        Planned("GET /api/v3/myTrades", 5, 6, (Timeout(after_accept=False, max_seconds=5),)),
    ],
    crash_points=[CrashAt(144, None, 2)],
)
def test_the_live_runner_survives_any_fault_schedule(
    schedule: list[Planned], crash_points: list[CrashAt]
) -> None:
    with run_with_faults() as (run, run_dir, waits, trip):
        exchange = drive(run, run_dir, waits, trip, schedule, crash_points)
        emulator = run.emulator
        assert emulator.errors == []
        journal = run_dir / "journal.sqlite"
        check(journal, emulator.exchange, emulator.requests(ORDER), exchange.undelivered_position())
        orders = len(emulator.exchange.orders())
        faulted = sum(1 for r in emulator.requests() if r.faults)
        note(f"{orders} orders; {faulted} requests faulted; {len(waits)} waits, {sum(waits):.1f}s")
        event(f"orders at the venue: {'<10' if orders < 10 else '10-19' if orders < 20 else '20+'}")
        event(f"faulted requests: {'0' if not faulted else '1-9' if faulted < 10 else '10+'}")


def drive(
    run: EmulatedRun,
    run_dir: Path,
    waits: list[float],
    trip: _Tripwire,
    schedule: list[Planned],
    crash_points: list[CrashAt],
) -> ExchangeVenue:
    """Run to ``END + QUIET`` under ``schedule``, crashing at ``crash_points``; stop.

    Returns:
        The last runner's exchange venue.
    """
    emulator = run.emulator
    runner = start(run, run_dir, waits)
    plan(run, schedule)
    pending = list(crash_points)
    while emulator.exchange.position < END + QUIET:
        emulator.advance()
        bar = emulator.exchange.position
        if bar >= END:
            emulator.faults.clear()
        crashing = pending.pop(0) if pending and pending[0].bar == bar else None
        trip.countdown = None if crashing is None else crashing.event
        try:
            runner.tick()
        except _Crash:
            note(f"crashed in bar {bar}: {crashing}")
        trip.countdown = None
        if crashing is not None:
            crash(runner)
            if crashing.down:
                emulator.advance(crashing.down)
            runner = start(run, run_dir, waits)
    runner.stop("test over")
    assert runner.exchange_venue is not None
    exchange = runner.exchange_venue.markets["BTC/USDT"]
    assert isinstance(exchange, ExchangeVenue)
    return exchange


def check(journal: Path, venue: Exchange, posts: list[RequestRecord], undelivered: float) -> None:
    """Assert the four properties of a finished run."""
    venue_orders = venue.orders()
    # 1. every client order id reached the venue once
    sent_ids = [r.params.get("newClientOrderId") for r in posts]
    assert all(sent_ids)
    assert [cid for cid, n in Counter(sent_ids).items() if n > 1] == []
    venue_ids = [o.client_order_id for o in venue_orders]
    assert len(venue_ids) == len(set(venue_ids))
    # 2. every trade counted once; the engine applied no more fills than were counted
    venue_fills = rows(journal, "venue_fill")
    trade_ids = [f["trade_id"] for f in venue_fills]
    assert [t for t, n in Counter(trade_ids).items() if n > 1] == []
    counted = Counter(f["order_id"] for f in venue_fills)
    fills = rows(journal, "fill")
    applied = Counter(f["order_id"] for f in fills)
    assert {o: n for o, n in applied.items() if n > counted[o]} == {}
    assert rows(journal, "fill_refused") == []
    # ... and every order ended once for the engine (a restart tells it what it missed,
    # once: a refusal, or the trades of a cancel, that a crash kept from it)
    ended = Counter(r["order_id"] for r in rows(journal, "order_cancelled"))
    assert [o for o, n in ended.items() if n > 1] == []
    # ... and every trade the venue made for the run was counted
    executed: dict[str, float] = defaultdict(float)
    for f in venue_fills:
        executed[f["order_id"]] += f["quantity"]
    assert {
        o.client_order_id: (executed[o.client_order_id], float(o.executed_qty))
        for o in venue_orders
        if abs(executed[o.client_order_id] - float(o.executed_qty)) > 1e-12
    } == {}
    # 3. the journal's position is the venue's; every venue order known and settled
    (market,) = rows(journal, "market_at_start")  # the one market's balance at the start
    position = sum(f["side"] * f["quantity"] for f in fills)
    held = float(venue.balance("BTC").total) - float(market["base_at_start"])
    assert abs(held - position - undelivered) <= 1e-8, (held, position, undelivered)
    sent = {r["id"] for r in rows(journal, "order_sent")}
    assert set(venue_ids) <= sent
    last = {r["client_id"]: r["state"] for r in rows(journal, "order_state")}
    assert [cid for cid in venue_ids if last.get(cid) == OrderState.REJECTED] == []
    assert [cid for cid, state in last.items() if state == OrderState.UNKNOWN] == []


def _entry_cancelled_at() -> int:
    """Return the bar whose exit cancels the partly filled entry ...000003, in the run of
    `test_a_restart_counts_the_trades_of_a_cancel_it_died_holding` left uninterrupted (the
    bar follows from the fold in effect at the start: the backtest's)."""
    with run_with_faults() as (run, run_dir, waits, _):
        runner = start(run, run_dir, waits)
        plan(run, [Planned(ORDER, 3, 1, (PartialFill(0.25),))])
        journal = run_dir / "journal.sqlite"

        def cancelled() -> list[int]:
            return [
                r["bar"]
                for r in rows(journal, "order_cancelled")
                if r["order_id"].endswith("-000003")
            ]

        while not cancelled():
            assert run.emulator.exchange.position < END, "the entry was never cancelled"
            run.emulator.advance()
            runner.tick()
        runner.stop("found")
        return cancelled()[0]


def test_a_restart_counts_the_trades_of_a_cancel_it_died_holding() -> None:
    """A cancel the venue answers "canceled" with more filled than counted, the reads of
    the missing trade failing every attempt, then a kill -9 right after the next intent
    (which commits the order's ``cancelled`` row): every restart refused to trade before
    the fix, the journal one trade short (the order, journaled finished, was never asked
    about again)."""
    exit_bar = _entry_cancelled_at()
    with run_with_faults() as (run, run_dir, waits, trip):
        emulator = run.emulator
        runner = start(run, run_dir, waits)
        plan(run, [Planned(ORDER, 3, 1, (PartialFill(0.25),))])  # entry ...000003
        while emulator.exchange.position < exit_bar:
            emulator.advance()
            runner.tick()
        emulator.advance()
        # the tick runs bar exit_bar: its exit cancels ...000003 (some of it filled,
        # less counted) and sends a sell, dying once that intent is committed
        emulator.faults.always("GET /api/v3/myTrades", ServerError(503))
        trip.countdown = 1
        with pytest.raises(_Crash):
            runner.tick()
        emulator.faults.clear()
        crash(runner)
        journal = run_dir / "journal.sqlite"
        (entry,) = [o for o in emulator.exchange.orders() if o.client_order_id.endswith("03")]
        last = [r for r in rows(journal, "order_state") if r["client_id"] == entry.client_order_id]
        assert last[-1]["state"] == OrderState.CANCELLED, "the scenario drifted: no cancel"
        assert last[-1]["filled"] < float(entry.executed_qty), "no trade held: proves nothing"

        runner = start(run, run_dir, waits)  # RestartRefused before the fix
        (reconciled,) = rows(journal, "reconciled")
        assert reconciled["position"] == pytest.approx(reconciled["venue_position"])
        for _ in range(3):
            emulator.advance()
            runner.tick()
        runner.stop("deploy")
        runner = start(run, run_dir, waits)  # its replay makes the journal's rows again
        emulator.advance()
        runner.tick()
        runner.stop("test over")
        assert emulator.errors == []
        counted = [f for f in rows(journal, "venue_fill") if f["order_id"] == entry.client_order_id]
        traded = [t for t in emulator.exchange.trades() if t.order_id == entry.order_id]
        # every trade of the entry counted once: the held one too
        assert sorted(str(f["trade_id"]) for f in counted) == sorted(
            str(t.trade_id) for t in traded
        )
        assert len(traded) >= 2
        assert sum(f["quantity"] for f in counted) == pytest.approx(float(entry.executed_qty))
        check(
            journal,
            emulator.exchange,
            emulator.requests(ORDER),
            runner.exchange_venue.markets["BTC/USDT"].undelivered_position(),
        )
