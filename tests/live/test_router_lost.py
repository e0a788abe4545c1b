"""A router's child order found nowhere mid-run is reconciled with its venue's account at
once, as a market's order is (`tests/live/test_restart_and_kill_edges.py`'s mid-run tests).

A live router run over two emulated venues (`test_router_live.router_run`) with limit
entries: the first rests on cheap, acknowledged, no trade counted (the journal has no
venue id of it), when the run is killed. The restart's lookups of it fail (503), so its
reconcile allows for it and books nothing; five lookups later, mid-run, it is found
nowhere by its client id. Before, the router's venue ended it ``ORDER_LOST`` with nothing
booked and the engine heard its parent cancelled whole: flat, it entered again on a
position the account already held, until the next restart.

Not marked ``slow`` (about 9 s in all, in process): a plain ``pytest`` guards the
router against a doubled entry, as it guards a market (`test_restart_and_kill_edges`).
"""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.live.live_emulated import broken_links, crash, rows
from tests.live.test_router_live import POST, TEXT, RouterRun, router_run, tick_until
from tradeloom.journal import read_rows, verify
from tradeloom.live.accounts import router_venue
from tradeloom.live.accounts.router_venue import RouterVenue
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.testing import Reject, ServerError

LIMIT = TEXT.replace(
    "execution:\n  kind: router\n",
    "execution:\n  kind: router\n  orders: {type: limit, limit: {offset_bps: 2}}\n",
)
assert LIMIT != TEXT
FAST = LIMIT.replace("threshold: 0.04, min_interval: 2", "threshold: 0.02, min_interval: 1")
assert FAST != LIMIT
LOOKUP = "GET /api/v3/order"
ACCOUNT = "GET /api/v3/account"
NOT_FOUND = Reject(-2013, "Order does not exist.")


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the venues' retries and waits return at once."""
    real = router_venue.CcxtVenue
    monkeypatch.setattr(
        router_venue, "CcxtVenue", lambda *a, **kw: real(*a, **kw, sleep=lambda seconds: None)
    )


def router_of(runner: LiveRunner) -> RouterVenue:
    assert runner.exchange_venue is not None
    (market,) = runner.exchange_venue.markets.values()
    assert isinstance(market, RouterVenue)
    return market


def restarted_while_lookups_fail(
    run: RouterRun, run_dir: Path, *, fills: bool = True
) -> tuple[LiveRunner, str]:
    """Kill the run while its first limit entry's child rests on cheap, let it fill while
    the run is down (``fills``; else it is cancelled there, unfilled), and restart while
    cheap's lookups fail every attempt (503) and find it by its client id no more after.
    Return the restarted runner, the lookups' window over, and the child's client id."""
    cheap = run.venues["cheap"].exchange
    runner = run.runner(run_dir)
    runner.start()
    tick_until(run, runner, lambda: bool(cheap.orders()))
    (order,) = cheap.orders()
    assert run.venues["dear"].exchange.orders() == []
    crash(runner)
    if fills:
        while cheap.orders()[0].status == "NEW":  # it fills while the run is down
            run.venues.advance()
        assert cheap.orders()[0].status == "FILLED"
    else:
        cheap.cancel("BTCUSDT", client_order_id=order.client_order_id)
    run.venues["cheap"].faults.next(LOOKUP, ServerError(503), times=10)
    run.venues["cheap"].faults.always(LOOKUP, NOT_FOUND)
    again = run.runner(run_dir)
    again.start()  # the reconcile allows for it (its trades unread) and books nothing
    reconciled = {r.symbol: r.values for r in read_rows(run_dir / "journal.sqlite", ["reconciled"])}
    assert reconciled["venue cheap"]["unknown_orders"] == [order.client_order_id]
    router_of(again).venues["cheap"].exchange.venue.settle_seconds = 0.0
    return again, str(order.client_order_id)


def engine_and_accounts(
    run: RouterRun, runner: LiveRunner, journal: Path
) -> tuple[dict[str, float], dict[str, float]]:
    """Per venue, the engine's position there (its reported fills, with those counted
    and not reported yet) and the account's since the run's first start."""
    router = router_of(runner)
    at_start = {r["venue"]: r["base_at_start"] for r in rows(journal, "venue_at_start")}
    engine, account = {}, {}
    for name, routed in router.venues.items():
        engine[name] = router.held_on(name) + routed.exchange.undelivered_position()
        btc = run.venues[name].exchange.balance("BTC")
        account[name] = float(btc.free + btc.locked) - at_start[name]
    return engine, account


def entered_twice(journal: Path) -> list[int]:
    """The bars of the entries the engine decided while the one before was not exited."""
    decided = [(r["bar"], r["reason"]) for r in rows(journal, "order")]
    return [
        bar
        for (_, before), (bar, reason) in itertools.pairwise(decided)
        if reason == before == "ENTRY"
    ]


def buys_after(run: RouterRun, client_id: str) -> list[str]:
    """The client ids of the buys posted at either venue after ``client_id``'s."""
    posted = [r.params for name in run.venues.names for r in run.venues[name].requests(POST)]
    posted.sort(key=lambda p: str(p.get("newClientOrderId")))  # the run's ids count up
    ids = [str(p.get("newClientOrderId")) for p in posted]
    later = posted[ids.index(client_id) + 1 :]
    return [str(p.get("newClientOrderId")) for p in later if p.get("side") == "BUY"]


def journal_whole(journal: Path) -> None:
    assert broken_links(journal) == []
    assert verify(journal).rows == sum(1 for _ in read_rows(journal))


def test_a_child_lost_mid_run_that_filled_is_booked_at_once_and_never_entered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, its parent was cancelled whole (ORDER_LOST) and the engine entered again at
    # the next long signal: cheap held two entries, the journal one. Now cheap's account
    # is read at once and its difference booked to the child (``reconciled-{id}``), then
    # reported as its parent's fill: the engine holds what the accounts hold.
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with router_run(tmp_path, monkeypatch, text=LIMIT) as run:
        again, child = restarted_while_lookups_fail(run, run_dir)
        with capture_logs() as logs:
            run.tick(again, 4)  # two lookups a bar: the fifth finds it nowhere
        (adopted,) = [e for e in logs if e["event"] == "reconcile_adopted_position"]
        assert [b["client_id"] for b in adopted["booked"]] == [child]
        assert not [e for e in logs if e["event"] in ("order_lost", "order_lost_held")]
        engine, account = engine_and_accounts(run, again, journal)
        assert engine == pytest.approx(account, abs=1e-8)
        assert account["cheap"] > 0.0
        run.tick(again, 8)
        engine, account = engine_and_accounts(run, again, journal)
        again.stop("test over")
        later = buys_after(run, child)
        last = run.runner(run_dir)
        last.start()  # the journal puts on each venue what it holds: no refusal
        last.stop("test over")
    assert engine == pytest.approx(account, abs=1e-8)
    assert entered_twice(journal) == [], "a second entry on the position the account held"
    assert later == []
    (booked,) = [r for r in rows(journal, "venue_fill") if r["order_id"] == child]
    assert str(booked["trade_id"]) == f"reconciled-{child}"
    (decision,) = [d for d in rows(journal, "route_decision") if d["order_id"] == child]
    assert decision["venue"] == "cheap"
    parent = decision["parent_id"]
    (fill,) = [f for f in rows(journal, "fill") if f["order_id"] == parent]
    assert fill["quantity"] == pytest.approx(account["cheap"], abs=1e-8)
    assert not [c for c in rows(journal, "order_cancelled") if c["order_id"] == parent]
    position = sum(f["side"] * f["quantity"] for f in rows(journal, "fill"))
    assert position == pytest.approx(sum(account.values()), abs=1e-8)
    *_, dear, cheap = rows(journal, "reconciled")  # the last restart's, each venue's
    assert cheap["position"] == pytest.approx(account["cheap"], abs=1e-8)
    assert (cheap["unknown_orders"], dear["position"]) == ([], 0.0)
    journal_whole(journal)


def test_a_child_lost_mid_run_that_never_filled_books_nothing_not_even_another_venues_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same child, cancelled unfilled at cheap while the run was down; after the
    # restart someone buys 0.5 BTC by hand on dear. Cheap holds what the journal puts
    # there: nothing is booked (dear's difference is no child's of cheap), the parent
    # ends ORDER_LOST and the engine, flat, enters again on a later signal.
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with router_run(tmp_path, monkeypatch, text=LIMIT) as run:
        again, child = restarted_while_lookups_fail(run, run_dir, fills=False)
        run.venues["dear"].exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=Decimal("0.5"))
        with capture_logs() as logs:
            run.tick(again, 4)
        assert [e for e in logs if e["event"] == "order_lost"], "never ended ORDER_LOST"
        assert not [
            e for e in logs if e["event"] in ("reconcile_adopted_position", "order_lost_held")
        ]
        engine, account = engine_and_accounts(run, again, journal)
        assert engine["cheap"] == pytest.approx(account["cheap"], abs=1e-8)
        assert account["dear"] - engine["dear"] == pytest.approx(0.5 * (1 - 0.003), abs=1e-8)
        tick_until(run, again, lambda: bool(buys_after(run, child)))
        again.stop("test over")
    (decision,) = [d for d in rows(journal, "route_decision") if d["order_id"] == child]
    ended = [r for r in rows(journal, "order_cancelled") if r["order_id"] == decision["parent_id"]]
    assert [r["reason"] for r in ended] == ["ORDER_LOST"]
    assert not [r for r in rows(journal, "venue_fill") if r["order_id"] == child]
    journal_whole(journal)


def test_a_child_lost_mid_run_holds_the_router_while_its_venues_account_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The filled child is found nowhere while cheap's balance cannot be read (503 every
    # attempt): what it filled is not known, so it works on, its parent with it, and the
    # engine sends nothing (CANCEL_UNCONFIRMED), journaled as cheap's trouble; once the
    # balance answers, the fill is booked and the engine holds what the account holds.
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with router_run(tmp_path, monkeypatch, text=FAST) as run:
        again, child = restarted_while_lookups_fail(run, run_dir)
        run.venues["cheap"].faults.always(ACCOUNT, ServerError(503))
        with capture_logs() as logs:
            run.tick(again, 8)
        assert [e for e in logs if e["event"] == "order_lost_held"]
        assert not [e for e in logs if e["event"] in ("order_lost", "reconcile_adopted_position")]
        assert buys_after(run, child) == []
        troubles = [r for r in rows(journal, "venue_unreachable") if r["operation"] == "reconcile"]
        assert troubles, "nothing says why the router is held"
        assert troubles[0]["error"].startswith(
            f"cheap: ORDER_LOST_UNRECONCILED: {child} found nowhere by client order id, and "
            "the account's position could not be read ("
        ), troubles[0]["error"]
        run.venues["cheap"].faults.clear()
        run.venues["cheap"].faults.always(LOOKUP, NOT_FOUND)
        with capture_logs() as logs:
            run.tick(again, 1)
        (adopted,) = [e for e in logs if e["event"] == "reconcile_adopted_position"]
        assert [b["client_id"] for b in adopted["booked"]] == [child]
        run.tick(again, 6)
        engine, account = engine_and_accounts(run, again, journal)
        again.stop("test over")
    assert engine == pytest.approx(account, abs=1e-8)
    assert not math.isclose(account["cheap"], 0.0)
    assert entered_twice(journal) == []
    refused = [r for r in rows(journal, "rejection") if r["code"] == "CANCEL_UNCONFIRMED"]
    assert refused, "the engine decided nothing while the router was held"
    journal_whole(journal)


def test_a_later_restart_books_a_child_a_run_ended_order_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run before this fix (its venues without a standing) ended the filled child
    # ORDER_LOST with nothing booked, its parent heard cancelled whole. The next restart
    # handed over only the parents the engine still counts pending: the child was never
    # looked up again, so cheap's difference was refused at that restart and every one
    # after. Now it is looked up again and its venue's reconcile books it, as a market's.
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with router_run(tmp_path, monkeypatch, text=LIMIT) as run:
        again, child = restarted_while_lookups_fail(run, run_dir)
        for routed in router_of(again).venues.values():
            routed.exchange.standing = None  # type: ignore[attr-defined]
        with capture_logs() as logs:
            run.tick(again, 4)
        assert [e for e in logs if e["event"] == "order_lost"], "never ended ORDER_LOST"
        again.stop("test over")
        last = run.runner(run_dir)
        last.start()  # refused before: the journal's position on cheap is short of its account
        engine, account = engine_and_accounts(run, last, journal)
        run.tick(last, 1)  # the booked fill reaches the engine
        last.stop("test over")
    assert engine == pytest.approx(account, abs=1e-8)
    (booked,) = [r for r in rows(journal, "venue_fill") if r["order_id"] == child]
    assert str(booked["trade_id"]) == f"reconciled-{child}"
    (decision,) = [d for d in rows(journal, "route_decision") if d["order_id"] == child]
    fills = [f for f in rows(journal, "fill") if f["order_id"] == decision["parent_id"]]
    assert len(fills) == 1  # the booked one: the engine heard the parent cancelled whole
    journal_whole(journal)


class _Died(Exception):
    """The process died (kill -9) right after a mid-run booking was journaled."""


@pytest.mark.parametrize("engine_heard", [False, True], ids=["before-its-fill", "after-its-fill"])
def test_a_kill_9_right_after_a_mid_run_booking_books_the_child_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine_heard: bool
) -> None:
    # The mid-run reconcile books the child's fill (``reconciled-{id}``, journaled) and
    # the process dies: before the engine journaled the parent's fill (at the booking's
    # open), or after that bar. The restart counts the booked trade on cheap once: its
    # reconcile agrees with the account, nothing is booked again, the engine holds
    # what the accounts hold and enters no second time.
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with router_run(tmp_path, monkeypatch, text=LIMIT) as run:
        again, child = restarted_while_lookups_fail(run, run_dir)
        real = router_venue.ExchangeMarket.settle_lost

        def dying(self: router_venue.ExchangeMarket, *, polled: bool) -> None:
            real(self, polled=polled)
            if not engine_heard and any(
                getattr(e, "order_id", None) == child for e in self._events
            ):
                assert again.journal is not None
                again.journal.flush()
                raise _Died

        monkeypatch.setattr(router_venue.ExchangeMarket, "settle_lost", dying)
        if engine_heard:
            run.tick(again, 4)
        else:
            with pytest.raises(_Died):
                run.tick(again, 4)
        assert [r for r in rows(journal, "venue_fill") if r["order_id"] == child]
        (decision,) = [d for d in rows(journal, "route_decision") if d["order_id"] == child]
        heard = [f for f in rows(journal, "fill") if f["order_id"] == decision["parent_id"]]
        assert len(heard) == int(engine_heard)
        crash(again)
        monkeypatch.setattr(router_venue.ExchangeMarket, "settle_lost", real)
        last = run.runner(run_dir)
        with capture_logs() as logs:
            last.start()
            run.tick(last, 8)
        assert not [e for e in logs if e["event"] == "reconcile_adopted_position"]
        engine, account = engine_and_accounts(run, last, journal)
        last.stop("test over")
    assert engine == pytest.approx(account, abs=1e-8)
    assert account["cheap"] > 0.0
    (booked,) = [r for r in rows(journal, "venue_fill") if r["order_id"] == child]
    assert str(booked["trade_id"]) == f"reconciled-{child}"
    (fill,) = [f for f in rows(journal, "fill") if f["order_id"] == decision["parent_id"]]
    assert fill["quantity"] == pytest.approx(account["cheap"], abs=1e-8)
    assert entered_twice(journal) == []
    position = sum(f["side"] * f["quantity"] for f in rows(journal, "fill"))
    assert position == pytest.approx(sum(account.values()), abs=1e-8)
    journal_whole(journal)
