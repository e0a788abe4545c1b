"""The whole live runner on one market against the emulator under random fault schedules
and crashes (the shape `fault_shapes` calls ``one``; `test_fault_shapes` runs the others).

Hypothesis draws which requests go wrong (an order submission answered by a timeout
after the venue took it, a dropped connection, a 429, a 5xx, a refusal, a partial fill;
bursts of failures on the reads: order lookups, trades, open orders, cancels, klines,
and the account, time and markets a restart reads), where the process dies (between
two bars, or in the middle of one, just after a venue event was journaled but before
the bar was committed), and what the kill did to the journal (its write-ahead log cut,
which one market restarts from by asking its venue; its tail record deleted or another
run's, refused), and the bar at which the run's model is swapped for a registry's
(`tradeloom swap`), if at all. The run goes on bar by bar, restarted from its journal
after each crash; the faults stop for the last few bars so that every order the run lost
track of is settled. Then `fault_shapes.check`: no client order id reached the venue
twice, no trade was counted twice, the journal's position is the venue's, no order is
left unknown, and the emulator saw no internal error; and `fault_shapes.check_swapped`:
a swap is journaled once, and the last process ran the model the journal swapped in.

Two more tests draw kills -9 around a change of the model (issue 70): around a swap
asked through the mailbox, and around a gated challenger's promotion (the shape
``promoting``, promoted early in the run); a kill may strike right after the change's
``model_swapped`` row was recorded or right after its commit, or (issue 81) inside the
bar a gate decided to promote at, right after its ``promote`` verdict was recorded
(``decided``: the champion's bar committed, the challengers' rows of it lost). Each
restart must run the models the journal holds, and each promotion is one
``model_swapped`` row; every run, whatever its shape (`fault_shapes.check_books`,
``check_decisions``): each challenger's book row carries the champion's equity (a
restart's replayed bar too), each gate row's figures are scipy's paired t-test over the
journal's book rows, and a decision a kill lost before its commit is taken again by the
restart at the same bar. Two more draw
them around a promotion's stages: through a canary (its parity-gap rule) then a watch
that rolls back or passes, or a canary that rolls back (a kill right after any stage's
row was recorded or committed: `fault_shapes.STAGE_KILLS`; each stage journaled once,
`check_stages`), and around the promotion of a portfolio file's strategy's challenger
(that strategy's model alone). A kill drawn for a stage's row may strike inside a
restart's start, which decides again what the bar it restores decided at its close: the
harness takes it for a kill there too (`fault_shapes._started`). Their long hunt, 150
examples each (seed and counts in the issue's note):

    TRADELOOM_FAULT_EXAMPLES=150 TRADELOOM_FAULT_LOG=hunt.log nice -n 10 pytest \
        -p no:xdist -p no:cacheprovider tests/live/test_fault_schedules.py \
        --hypothesis-seed=70 --hypothesis-show-statistics -k 'swap or promot'

Two more draw an operator's hand during a stage (`fault_shapes.Hand`: ``tradeloom
kill``, ``kill --flatten``, ``rollback``, or a hot-reloaded edit of the risk or the
model section, during the canary or the watch, after 0 to 3 of its closes), the kills
also right after the commit that answered the request (`fault_shapes.REQUEST_KILL`),
checked by `fault_shapes.check_hand`; and kills around a universe's challenger's
promotion (``universe_promoting``).

What the kill -9 properties draw (shape x operator action x kill point; every row also
draws request faults, kills at a venue event or after a bar, at the next order sent,
after a reader's visit, and journal damage: a cut write-ahead log, a tail lost or
another run's):

    shape                          action by hand or gate          kill at a change
    one                            swap (mailbox)                  swap row recorded/committed
    universe, allocating, router,  -                               -
      twap, perp
    portfolio                      one strategy's swap             swap row recorded/committed
    promoting, member_promoting    gate's promotion                verdict recorded (81),
                                                                   promotion recorded/committed
    universe_promoting             gate's promotion                verdict recorded (81),
                                                                   promotion recorded/committed
    watched_rolled, watched_passed gate's canary, watch, rollback  verdict recorded (81), any
      canary_rolled                                                stage row recorded/committed
      + hand (new)                 kill, kill --flatten, rollback, + the request's answer
                                   reload risk, reload model       committed, file not done
                                   during the canary or the watch

Not drawn: a router with a challenger (refused when the file is read: challengers
simulate their fills with the strategy's simulated venue); a hand action during a
portfolio file's strategy's stage or a universe's (no saved champion there to roll back
to); the PostgreSQL journal under any of these (the harness reads and cuts SQLite's
files; `test_pg_crash` kills one market's child process at two points).

The new tests' long hunt (`scripts/hunt.sh --faults`):

    TRADELOOM_FAULT_EXAMPLES=60 TRADELOOM_FAULT_LOG=hunt.log nice -n 10 pytest \
        -p no:xdist -p no:cacheprovider tests/live/test_fault_schedules.py \
        --hypothesis-seed=81 --hypothesis-show-statistics -k 'hand or universes'

(first run: seed 81, 60 examples of the hand, 65 kills; seed 82, 200 of the hand with
245 kills and 98 of the universe's promotion with 108 kills: none failing.)

A few fixed examples replay schedules that once broke the runner. The suite runs those
alone (a property with none, the universe's promotion, draws one derandomized schedule):
each is a whole live run killed and restarted; a hunt (`scripts/hunt.sh --faults`, or
``TRADELOOM_HUNT=1``) draws after them (`tests.hunting.fixed_then_drawn`). They are not
marked ``slow``: a plain ``pytest`` (the README's, CI's) replays every one.
"""

from __future__ import annotations

import os

import ccxt
import pytest

pytest.register_assert_rewrite("fault_shapes")

from hypothesis import HealthCheck, event, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.hunting import fixed_then_drawn  # noqa: E402
from tests.live.batch_rig import SYMBOLS, BatchKill, batch_rig  # noqa: E402
from tests.live.fault_shapes import (  # noqa: E402
    DECIDED,
    END,
    HISTORY,
    MEMBER_PROMOTED_AT,
    PROMOTED_AT,
    REQUEST_KILL,
    SHAPES,
    STAGE_KILLS,
    STAGE_ROWS,
    TIMEOUT_MS,
    TRAINING_KILL,
    WATCHED_PROMOTED_AT,
    CrashAt,
    Hand,
    Planned,
    Survived,
    check,
    check_hand,
    check_stages,
    check_swapped,
    crash,
    crashes,
    crashes_around,
    drive,
    hands,
    noting_unanswered,
    rows,
    schedules,
    shape_run,
    start,
    survive,
    swap_kills,
    swaps,
)
from tradeloom.journal import read_rows  # noqa: E402
from tradeloom.plugins.protocols_orders.order_state import OrderState  # noqa: E402
from tradeloom.testing import (  # noqa: E402
    DropConnection,
    Latency,
    PartialFill,
    RateLimited,
    ServerError,
    Timeout,
)

ONE = SHAPES["one"]
TORCH = SHAPES["torch"]
PROMOTING = SHAPES["promoting"]
WATCHED = {
    "watch rolled back": SHAPES["watched_rolled"],
    "watch passed": SHAPES["watched_passed"],
    "canary rolled back": SHAPES["canary_rolled"],
}
MEMBER_PROMOTING = SHAPES["member_promoting"]
ORDER = ONE.order_route

EXAMPLES = os.environ.get("TRADELOOM_FAULT_EXAMPLES")
"""The long hunt's examples per test (unset: the fixed ones, in a hunt a derandomized one
after them; `tests.hunting.fixed_then_drawn`)."""

_AROUND = settings(
    max_examples=int(EXAMPLES or "1"),
    deadline=None,
    derandomize=EXAMPLES is None,
    phases=fixed_then_drawn(),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
_DRAWN = settings(_AROUND, phases=fixed_then_drawn(fixed=False))
"""`_AROUND` for a property with no fixed example: the suite draws its derandomized one."""


@settings(
    # a long hunt: TRADELOOM_FAULT_EXAMPLES=300 (`test_fault_shapes`'s docstring)
    max_examples=int(os.environ.get("TRADELOOM_FAULT_EXAMPLES", "2")),
    deadline=None,
    phases=fixed_then_drawn(),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(schedule=schedules(ONE), crash_points=crashes, swap_at=swaps)
# the model swapped before a bar, the process killed in it (at its first venue event, or
# after it) and down for a bar: the restart runs the swapped model;
@example(schedule=[], crash_points=[CrashAt(110, 0, 1)], swap_at=110)
# Found by this test, fixed; kept as regressions:
# klines failing every attempt once ended the run (an exception out of tick);
@example(
    schedule=[Planned("GET /api/v3/klines", 10, 5, (ServerError(503),))],
    crash_points=[],
    swap_at=None,
)
# a restart's check of the open orders was not retried: one 502 refused the restart;
@example(
    schedule=[Planned("GET /api/v3/openOrders", 1, 1, (ServerError(502),))],
    crash_points=[CrashAt(120, None, 0)],
    swap_at=None,
)
# the replay after a restart ended an order cancelled at a bar's close when its fills
# were reported at that bar's open (not replacing it as the run had): restart refused;
@example(
    schedule=[Planned(ORDER, 9, 1, (PartialFill(0.25),))],
    crash_points=[CrashAt(135, None, 0)],
    swap_at=None,
)
# a poll whose open-orders read failed every attempt dropped the trades it had just
# counted: never reported to the engine, whose position then differed from the venue's;
@example(
    schedule=[
        Planned(ORDER, 12, 1, (PartialFill(0.25),)),
        Planned("GET /api/v3/openOrders", 2, 5, (ServerError(503),)),
    ],
    crash_points=[],
    swap_at=None,
)
# a restart whose lookup of the order it died sending failed every attempt refused to
# trade, the position off by that order: it may fill, as a running order may;
@example(
    schedule=[Planned("GET /api/v3/order", 1, 6, (Timeout(max_seconds=5),))],
    crash_points=[CrashAt(122, 2, 2)],
    swap_at=None,
)
# the replay after a restart did not return a cancel's cancellation whose reason was
# not the one asked (REPLACED found the order never arrived): restart refused;
@example(
    schedule=[
        Planned(ORDER, 2, 2, (DropConnection(),)),
        Planned("GET /api/v3/order", 1, 6, (ServerError(500),)),
    ],
    crash_points=[CrashAt(148, None, 0)],
    swap_at=None,
)
# a restart with an order partly filled counts its journaled trades once;
@example(
    schedule=[Planned(ORDER, 3, 1, (PartialFill(0.25),))],
    crash_points=[CrashAt(113, None, 0)],
    swap_at=None,
)
# and a restart whose poll counted a trade, then failed a lookup, left that trade out of
# the position it reconciled (held for the next call): restart refused, nothing lost.
@example(
    schedule=[
        Planned(ORDER, 3, 1, (PartialFill(0.25),)),
        Planned("GET /api/v3/order", 1, 5, (ServerError(503),)),
    ],
    crash_points=[CrashAt(114, 1, 2)],
    swap_at=None,
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
    swap_at=None,
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
    swap_at=None,
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
    swap_at=None,
)
# and a restart while an order still worked (a quarter filled per bar), its trades' reads
# failing, refused to trade: the venue had filled the rest while the run was down.
# Found by the long hunt (seed 65, once, on a loaded machine), fixed in the harness: an
# order POST the venue served after the client's timeout (a timeout after accept, a
# quarter filled) landed after the next bar's lookup had found nothing: journaled never
# arrived, while the venue filled it (the journal's 0 BTC counted, the venue's 1.33).
# One bar is the harness's settle window only once what was sent has been served.
@example(
    schedule=[Planned(ORDER, 1, 1, (Latency(0.5), PartialFill(0.25)))],
    crash_points=[],
    swap_at=None,
)
@example(
    schedule=[
        Planned(ORDER, 6, 1, (PartialFill(0.25),)),
        Planned(ORDER, 9, 2, (PartialFill(0.25),)),
        Planned("GET /api/v3/myTrades", 5, 6, (Timeout(after_accept=False, max_seconds=5),)),
    ],
    crash_points=[CrashAt(144, None, 2)],
    swap_at=None,
)
def test_the_live_runner_survives_any_fault_schedule(
    schedule: list[Planned], crash_points: list[CrashAt], swap_at: int | None
) -> None:
    survive(ONE, schedule, crash_points, swap_at)


@pytest.mark.xdist_group("torch")
@_AROUND
@given(
    schedule=schedules(TORCH),
    crash_points=crashes_around(HISTORY + 2, END - 1, model_kills=(TRAINING_KILL,)),
)
# killed while the next fold after bar 105 trains (fold 1, at bar 133's close), down for a
# bar: the restart trains that fold (scheduled, never journaled) and journals it once
@example(schedule=[], crash_points=[CrashAt(HISTORY + 5, None, 1, model=TRAINING_KILL)])
def test_a_torch_model_survives_kills_while_it_trains(
    schedule: list[Planned], crash_points: list[CrashAt]
) -> None:
    """Kills -9 drawn while a torch model trains a fold at a bar's close (and at venue
    events, after bars, at sends): no client order id twice, no restart refused, every
    trade counted once, and each fold journaled once, in order."""
    with shape_run(TORCH) as run:
        runner = drive(run, schedule, crash_points)
        check(run, runner)
        folds = [r["predict_start"] for r in rows(run.journal, "model_trained")]
        kills = run.kills
    event(f"kills: {kills}")
    assert folds == sorted(set(folds)) and len(folds) >= 2, folds


@_AROUND
@given(schedule=schedules(ONE), swap=swap_kills())
# killed right after the swap's row was recorded, before its commit (lost with the bar: the
# request, still in the mailbox, is answered by the restart), and right after its commit,
# before its request file was done (the restart finds it answered)
@example(schedule=[], swap=(110, [CrashAt(110, None, 0, model="journaled")]))
@example(schedule=[], swap=(110, [CrashAt(110, None, 1, model="committed")]))
def test_a_swap_survives_kills_around_it(
    schedule: list[Planned], swap: tuple[int, list[CrashAt]]
) -> None:
    """Kills -9 drawn around a swap asked through the mailbox (`fault_shapes.swap_kills`):
    no client order id twice, no restart refused, the swap journaled once, and every
    restart runs the model the journal swapped in (`fault_shapes.check_in_force`)."""
    swap_at, crash_points = swap
    survived = survive(ONE, schedule, crash_points, swap_at)
    event(f"kills: {survived.kills}")
    if not any(c.damage == "wal_cut" for c in crash_points):  # a cut log may lose it
        assert survived.swaps == 1  # asked again after a kill that lost it


@_AROUND
@given(
    schedule=schedules(PROMOTING),
    crash_points=crashes_around(PROMOTED_AT - 6, PROMOTED_AT + 4),
)
# killed inside the bar the gate decided to promote at, right after its verdict was
# recorded, before its commit (issue 81: the restart's replay of that bar once lost the
# champion's equity, and the gate promoted a bar late or never; it promotes at that bar),
# and right after the promotion's commit (the restart runs the promoted model and does
# not start the challenger again)
@example(schedule=[], crash_points=[CrashAt(PROMOTED_AT - 1, None, 0, model=DECIDED)])
@example(schedule=[], crash_points=[CrashAt(PROMOTED_AT - 1, None, 1, model="committed")])
def test_a_promotion_survives_kills_around_it(
    schedule: list[Planned], crash_points: list[CrashAt]
) -> None:
    """Kills -9 drawn around a gated challenger's promotion (`fault_shapes.PROMOTING`:
    promoted early in the run), inside the bar its gate decided at too
    (`fault_shapes.DECIDED`): no client order id twice, no restart refused, one
    ``model_swapped`` per promotion and no challenger promoted twice, every restart
    runs the promoted model, the challenger's shadow not started again; every book row
    carries the champion's equity and every gate row the figures its rows give
    (`fault_shapes.check_books`), and a decision a kill lost is taken again at its bar
    (`fault_shapes.check_decisions`)."""
    survived = survive(PROMOTING, schedule, crash_points)
    event(f"kills: {survived.kills}")
    event(f"promoted: {survived.promotions}")
    assert survived.promotions <= 1


def _entry_cancelled_at() -> int:
    """Return the bar whose exit cancels the partly filled entry ...000003, in the run of
    `test_a_restart_counts_the_trades_of_a_cancel_it_died_holding` left uninterrupted (the
    bar follows from the fold in effect at the start: the backtest's)."""
    with shape_run(ONE) as run:
        runner = start(run)
        run.plan([Planned(ORDER, 3, 1, (PartialFill(0.25),))])

        def cancelled() -> list[int]:
            return [
                r["bar"]
                for r in rows(run.journal, "order_cancelled")
                if r["order_id"].endswith("-000003")
            ]

        while not cancelled():
            assert run.position < END, "the entry was never cancelled"
            run.advance()
            runner.tick()
        runner.stop("found")
        return cancelled()[0]


def test_a_restart_counts_the_trades_of_a_cancel_it_died_holding() -> None:
    """A cancel the venue answers "canceled" with more filled than counted, the reads of
    the missing trade failing every attempt, then a kill -9 once the bar that journaled
    the order's ``cancelled`` row is committed (its exit held back: the cancel's fills are
    not known): every restart refused to trade before the fix, the journal one trade short
    (the order, journaled finished, was never asked about again)."""
    exit_bar = _entry_cancelled_at()
    with shape_run(ONE) as run:
        emulator, journal = run.emulator(), run.journal
        runner = start(run)
        run.plan([Planned(ORDER, 3, 1, (PartialFill(0.25),))])  # entry ...000003
        while run.position < exit_bar:
            run.advance()
            runner.tick()
        run.advance()
        # the tick runs bar exit_bar: its exit cancels ...000003 (some of it filled, less
        # counted, its trades unreadable), and holds the sell back (CANCEL_UNCONFIRMED:
        # it would have sold what was counted); killed once that bar is committed
        emulator.faults.always("GET /api/v3/myTrades", ServerError(503))
        runner.tick()
        emulator.faults.clear()
        crash(runner)
        (entry,) = [o for o in emulator.exchange.orders() if o.client_order_id.endswith("03")]
        last = [r for r in rows(journal, "order_state") if r["client_id"] == entry.client_order_id]
        assert last[-1]["state"] == OrderState.CANCELLED, "the scenario drifted: no cancel"
        assert last[-1]["filled"] < float(entry.executed_qty), "no trade held: proves nothing"

        runner = start(run)  # RestartRefused before the fix
        (reconciled,) = rows(journal, "reconciled")
        assert reconciled["position"] == pytest.approx(reconciled["venue_position"])
        for _ in range(3):
            run.advance()
            runner.tick()
        runner.stop("deploy")
        runner = start(run)  # its replay makes the journal's rows again
        run.advance()
        runner.tick()
        runner.stop("test over")
        counted = [f for f in rows(journal, "venue_fill") if f["order_id"] == entry.client_order_id]
        traded = [t for t in emulator.exchange.trades() if t.order_id == entry.order_id]
        # every trade of the entry counted once: the held one too
        assert sorted(str(f["trade_id"]) for f in counted) == sorted(
            str(t.trade_id) for t in traded
        )
        assert len(traded) >= 2
        assert sum(f["quantity"] for f in counted) == pytest.approx(float(entry.executed_qty))
        check(run, runner)


def test_a_bar_moves_on_once_what_the_client_gave_up_on_is_served() -> None:
    """The harness's settle window (one bar, `SETTLE_SECONDS`) holds: an order POST the
    venue serves after the client's timeout is served before the bar moves on, so a
    lookup at the next bar finds it (it once landed after that lookup, which journaled
    it never arrived while the venue filled it)."""
    with shape_run(ONE) as run:
        emulator = run.emulator()
        client = noting_unanswered(emulator.client(timeout=TIMEOUT_MS), "main", run.unanswered)
        client.load_markets()
        emulator.faults.next(ORDER, Latency(2.0))
        with pytest.raises(ccxt.RequestTimeout):
            client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "late"})
        assert emulator.exchange.orders() == [], "served before the client gave up"
        run.advance()
        assert [o.client_order_id for o in emulator.exchange.orders()] == ["late"]


WATCHED_FROM, WATCHED_TO = WATCHED_PROMOTED_AT - 2, WATCHED_PROMOTED_AT + 11
"""The bars kills strike around a watched promotion: from just before the gate promotes
to past its watch's end (a canary of 4 bars, then a watch of 6, in a run left alone)."""


def _stages(survived: Survived) -> str:
    """The stages a run went through, in short (the hunt's statistics)."""
    short = {
        "model_swapped": "swap",
        "canary_started": "canary",
        "canary_passed": "passed",
        "canary_rolled_back": "rolled back",
        "watch_started": "watch",
        "watch_passed": "passed",
        "promotion_rolled_back": "rolled back",
    }
    return " > ".join(short[kind] for kind in survived.stages) or "never promoted"


@_AROUND
@given(
    ending=st.sampled_from(sorted(WATCHED)),
    schedule=schedules(SHAPES["watched_rolled"]),
    crash_points=crashes_around(WATCHED_FROM, WATCHED_TO, model_kills=STAGE_KILLS, most=3),
)
# killed right after the commit of the promotion and its canary's start (the restart takes
# the canary up, its replay rebuilt from the journal), right after the canary's pass was
# recorded, before its commit (lost with the bar: the restart passes it again, once), and
# right after the commit of the watch's rollback (the restart runs the champion put back)
@example(
    ending="watch rolled back",
    schedule=[],
    crash_points=[
        CrashAt(WATCHED_PROMOTED_AT + 1, None, 0, model="stage_committed"),
        CrashAt(WATCHED_PROMOTED_AT + 5, None, 0, model="stage_recorded"),
        CrashAt(WATCHED_PROMOTED_AT + 6, None, 0, model="stage_committed"),
    ],
)
def test_a_watched_promotion_survives_kills_around_its_stages(
    ending: str, schedule: list[Planned], crash_points: list[CrashAt]
) -> None:
    """Kills -9 drawn around a promotion through a canary (its parity-gap rule read
    against the run's replay) and a watch after it, whose rule fires (the previous
    champion swapped back) or never does (`fault_shapes.WATCHED_ROLLED`,
    ``WATCHED_PASSED``), or whose canary rolls back (``CANARY_ROLLED``); a kill may
    strike right after any stage's row was recorded or right after its commit
    (`fault_shapes.STAGE_KILLS`): no client order id twice, no restart refused, each
    stage journaled once and each change of the model one ``model_swapped`` row
    (`fault_shapes.check_stages`), and every restart runs the model the journal holds."""
    survived = survive(WATCHED[ending], schedule, crash_points)
    event(f"kills: {survived.kills}")
    event(f"{ending}: {_stages(survived)}")
    assert survived.promotions <= 1


# Found by the long hunt (seed 90, its 117th example; the faults on requests it drew left
# out: they play no part): a kill after bar 151's commit whose write-ahead log was cut to
# nothing; the restart decides again at the bar it restores (the canary's pass, lost with
# the cut) and a kill armed since bar 148 for the next stage row struck there, inside the
# restart's start, which the harness did not take for a kill (the test failed on it)
KILLED_WHILE_STARTING = [
    CrashAt(148, 3, 1, damage="wal_cut", cut=0.1400622140956316, sent=True, model="stage_recorded"),
    CrashAt(151, None, 1, damage="wal_cut", cut=2.179434410446179e-177, sent=True),
    CrashAt(152, 1, 0, damage="tail_lost", cut=0.3604404504327266, sent=True),
]


LEFT_ALONE = [
    ("model_swapped", WATCHED_PROMOTED_AT),
    ("canary_started", WATCHED_PROMOTED_AT),
    ("canary_passed", WATCHED_PROMOTED_AT + 4),
    ("watch_started", WATCHED_PROMOTED_AT + 4),
    ("model_swapped", WATCHED_PROMOTED_AT + 5),
    ("promotion_rolled_back", WATCHED_PROMOTED_AT + 5),
]
"""The stage rows (`STAGE_ROWS`: kind and bar) of a ``watched_rolled`` run left alone (no
fault, no kill): promoted, its canary of 4 bars passed, its watch's rule fired at its
first close (measured on such a run)."""


def test_a_kill_inside_a_restarts_start_changes_no_stage() -> None:
    """A kill -9 inside a restart's start, while it decides again what the bar it restores
    decided at its close (`PromotionStage.decide_again`: the canary's pass a cut log
    lost), loses what that start did not commit; the next restart decides the same at
    the same bar: the stages' rows and bars are a run's left alone (`LEFT_ALONE`), each
    once, and the checks of every property hold."""
    with shape_run(WATCHED["watch rolled back"]) as run:
        runner = drive(run, [], KILLED_WHILE_STARTING)
        check(run, runner)
        check_swapped(run, runner)
        check_stages(run)
        stages = [(r.kind, r.bar) for r in read_rows(run.journal, sorted(STAGE_ROWS))]
        assert run.kills == 2, "the scenario drifted: no kill inside the restart's start"
    assert stages == LEFT_ALONE


@_AROUND
@given(
    schedule=schedules(MEMBER_PROMOTING),
    crash_points=crashes_around(MEMBER_PROMOTED_AT - 6, MEMBER_PROMOTED_AT + 4),
)
# killed right after the promotion's row was recorded, before its commit, and right after
# its commit: the restart runs the promoted model for that strategy alone
@example(schedule=[], crash_points=[CrashAt(MEMBER_PROMOTED_AT - 1, None, 0, model="journaled")])
@example(schedule=[], crash_points=[CrashAt(MEMBER_PROMOTED_AT - 1, None, 1, model="committed")])
def test_a_portfolio_strategys_promotion_survives_kills_around_it(
    schedule: list[Planned], crash_points: list[CrashAt]
) -> None:
    """Kills -9 drawn around the promotion of a portfolio file's strategy's challenger
    (`fault_shapes.MEMBER_PROMOTING`: the gate of `PROMOTED_MEMBER`'s challenger): no
    client order id twice, no restart refused, one ``model_swapped`` for that strategy
    alone and no challenger promoted twice, and every restart runs each strategy's model
    as the journal says (the other strategy's own)."""
    survived = survive(MEMBER_PROMOTING, schedule, crash_points)
    event(f"kills: {survived.kills}")
    event(f"promoted: {survived.promotions}")
    assert survived.promotions <= 1
    assert survived.stages == ("model_swapped",) * survived.promotions


@_AROUND
@given(
    ending=st.sampled_from(sorted(WATCHED)),
    hand=hands(),
    schedule=schedules(SHAPES["watched_rolled"]),
    crash_points=crashes_around(
        WATCHED_FROM, WATCHED_TO, model_kills=(*STAGE_KILLS, REQUEST_KILL), most=3
    ),
)
# a flatten asked after the canary's first close (a position held), killed right after
# the commit that answered it, before its file was done: the restart marks it done
# without a second answer (one request row, its halt journaled once, its exit decided once)
@example(
    ending="watch passed",
    hand=Hand("flatten", "canary", 1),
    schedule=[],
    crash_points=[CrashAt(WATCHED_PROMOTED_AT + 3, None, 1, model=REQUEST_KILL)],
)
# Found by the hunt (seed 81), the harness's check too strict: a rollback asked as soon as
# the canary started is answered before the canary's first close, at its start's bar; a
# kill right after its commit, and one after: the restart runs the champion put back.
@example(
    ending="canary rolled back",
    hand=Hand("rollback", "canary", 0),
    schedule=[],
    crash_points=[
        CrashAt(WATCHED_PROMOTED_AT + 2, None, 0, model="stage_committed"),
        CrashAt(WATCHED_PROMOTED_AT + 4, None, 1),
    ],
)
def test_an_operators_hand_during_a_stage_survives_kills(
    ending: str, hand: Hand, schedule: list[Planned], crash_points: list[CrashAt]
) -> None:
    """Kills -9 drawn around what an operator does by hand during a canary or the watch
    after it (`fault_shapes.Hand`): ``tradeloom kill``, ``kill --flatten``, ``rollback``,
    or an edit of the strategy file's risk or model section (hot-reloaded); a kill may
    also strike right after the commit that answered the request, before its file was
    done (`fault_shapes.REQUEST_KILL`). `fault_shapes.check_hand`: the kill switch's halt
    journaled once and no order decided after it (a flatten's exits aside, decided once,
    the run flat at the end); a rollback once, by hand, the kept champion put back by one
    ``model_swapped``; a risk edit taken once, a model edit refused during the stage;
    and every property of the stage shapes (no client order id twice, no restart
    refused, each stage row journaled once)."""
    if ending == "canary rolled back":  # no watch: its canary's instead
        hand = Hand(hand.action, "canary", hand.after)
    survived = survive(WATCHED[ending], schedule, crash_points, hand=hand)
    event(f"kills: {survived.kills}")
    event(f"{hand.action} during the {hand.stage}: " + ("taken" if survived.taken else "never"))
    event(f"{ending}: {_stages(survived)}")
    assert survived.promotions <= 1


UNIVERSE_PROMOTING = SHAPES["universe_promoting"]


@_DRAWN
@given(
    schedule=schedules(UNIVERSE_PROMOTING),
    crash_points=crashes_around(PROMOTED_AT - 6, PROMOTED_AT + 4),
)
def test_a_universes_promotion_survives_kills_around_it(
    schedule: list[Planned], crash_points: list[CrashAt]
) -> None:
    """Kills -9 drawn around the promotion of a universe's gated challenger
    (`fault_shapes.UNIVERSE_CHALLENGER`, the universe registry's pooled model, promoted
    early in the run as ``promoting``'s is): no client order id twice at any market, no
    restart refused, one ``model_swapped`` and no challenger promoted twice, and every
    restart runs the promoted model on every symbol. (A router's strategy takes no
    challengers: they simulate their fills with the strategy's own simulated venue.)"""
    survived = survive(UNIVERSE_PROMOTING, schedule, crash_points)
    event(f"kills: {survived.kills}")
    event(f"promoted: {survived.promotions}")
    assert survived.promotions <= 1
    assert survived.stages == ("model_swapped",) * survived.promotions


def test_a_model_edit_refused_during_a_stage_is_taken_once_the_stage_ends() -> None:
    """The strategy file's model edited during a canary: the hot reload is refused, its
    line saying to wait for the stage's end; once the watch after it ends, the edit is
    taken (one ``config_reloaded`` and its ``model_swapped`` by ``reload``), and a
    restart then takes the file. Before the fix the refused edit was never read again
    (the same bytes saved again neither), the run traded on with the old model for good,
    and the next restart refused the file (``model.fold: changed since the run last
    traded``)."""
    hand = Hand("reload_model", "canary", 1)
    with shape_run(SHAPES["watched_rolled"]) as run:
        runner = drive(run, [], [], hand=hand)
        check(run, runner)
        check_swapped(run, runner)
        check_hand(run, hand, [])
        (refused,) = rows(run.journal, "config_reload_refused")
        assert refused["errors"][0].endswith(
            "model: the canary of saved is in progress; promote or roll it back first"
        )
        (rolled,) = rows(run.journal, "promotion_rolled_back")
        (reloaded,) = rows(run.journal, "config_reloaded")
        assert reloaded["changed"] == ["model"]
        assert reloaded["bar"] == rolled["bar"]  # at the bar boundary after its close
        (swapped,) = [r for r in rows(run.journal, "model_swapped") if r["by"] == "reload"]
        assert swapped["bar"] == reloaded["bar"]
        assert swapped["sha256"] != swapped["previous_sha256"]
        start(run).stop("restarted")  # the file is the journal's: taken


# --- batches of orders (issue 87 item 5) ---------------------------------------------------


@st.composite
def batch_bars(draw: st.DrawFn) -> tuple[list[tuple[int, int]], BatchKill]:
    """A bar's orders (symbol index, side) sent as one batch of 2 to 7 children (two
    requests past 5), and where a kill -9 strikes it: after the k-th child's intent was
    journaled, before their commit (lost), or right after it (the request never left);
    or once the request came back, after some rows
    of its answer were journaled, the bar not committed, the venue having acted on the
    first children only (a dropped connection) or on all of them, some refused in their
    place; or nowhere."""
    orders = draw(
        st.lists(st.tuples(st.integers(0, 1), st.sampled_from([1, -1])), min_size=2, max_size=7)
    )
    n = len(orders)
    first = min(n, 5)
    refuse = tuple(draw(st.sets(st.integers(0, first - 1), max_size=first - 1)))
    where = draw(st.sampled_from(["intents", "answer", "cut", "none"]))
    if where == "intents":
        return orders, BatchKill(intents=draw(st.integers(1, n + 1)), refuse=refuse)
    cut = draw(st.integers(0, first)) if where == "cut" else None
    records = None if where == "none" else draw(st.integers(0, 2 * n))
    return orders, BatchKill(cut=cut, records=records, refuse=refuse)


@_AROUND
@given(bar=batch_bars())
# killed after the 2nd of 3 children's intents was journaled, before their commit: lost,
# never sent; and right after the commit: the request never left, the restart finds no
# journaled child at the venue (never arrived)
@example(bar=([(0, 1), (1, 1), (0, -1)], BatchKill(intents=2)))
@example(bar=([(0, 1), (1, 1), (0, -1)], BatchKill(intents=4)))
# the venue acted on the first of 3 children and the connection dropped, the 2nd refused
# in its place: the restart adopts the 1st, takes the others as never arrived
@example(bar=([(0, 1), (1, 1), (1, -1)], BatchKill(cut=2, records=1, refuse=(1,))))
# answered, killed after 3 rows of the answer of 7 children (two requests) were journaled,
# the bar not committed: every child is looked up and adopted, none sent again
@example(bar=([(0, 1), (1, 1), (0, -1), (1, -1), (0, 1), (1, 1), (0, 1)], BatchKill(records=3)))
# Found by the hunt (seed 87), fixed in the rig: a batch cut before any child, the run not
# killed, its children unknown: the next bar's lookups ran before the venue's window was
# over (the rig's clock did not move with the bars), and they stayed unknown
@example(bar=([(0, 1), (0, 1)], BatchKill(cut=0, records=2)))
def test_a_batch_killed_between_its_children_sends_none_twice(
    tmp_path_factory: pytest.TempPathFactory, bar: tuple[list[tuple[int, int]], BatchKill]
) -> None:
    """Kills -9 drawn between a batch's children (`batch_rig`): before its request left,
    after the venue acted on k of n children, before their acknowledgements were
    committed. The restart looks each journaled child up by its client order id (found:
    adopted with its fills; not found: never arrived), the next bar's batch goes out, and
    no client order id reached the venue twice, every order the venue has is journaled,
    each child's end is the venue's, and the journal's fills are the venue's positions."""
    orders, kill = bar
    quantity = {0: 0.01, 1: 0.1}
    with batch_rig(tmp_path_factory.mktemp("batch")) as rig:
        decided = [(SYMBOLS[s], rig.order(SYMBOLS[s], side, quantity[s])) for s, side in orders]
        survived = rig.bar(decided, kill)
        rig.emulator.advance()
        if survived:
            rig.settle()
        else:
            rig.restart()
        after = [(SYMBOLS[s], rig.order(SYMBOLS[s], 1, quantity[s])) for s in (0, 1)]
        assert rig.bar(after)
        rig.emulator.advance()
        rig.settle()
        last = rig.check()
        event(f"killed: {not survived}")
        refused = [o.id for i, (_, o) in enumerate(decided) if i in kill.refuse]
        for client_id in refused:  # a refusal in its place is journaled as the venue's
            assert last.get(client_id, "rejected") == "rejected"
        for _, order in after:
            assert last[order.id] == "filled"
