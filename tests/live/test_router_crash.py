"""kill -9 of the real CLI trading through the router over two venues, right after a buy
was split over both, then the same command again: the restart replays the routed children,
sends no client order id twice at either venue, reconciles each venue, and orders, fills
and cancels what the run never killed does (`test_crash.CrashRig`)."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import make_bars, rows
from tests.live.test_crash import CrashRig, decisions
from tests.live.test_router_live import HISTORY, POST, SYMBOL, TEXT, router_run
from tradeloom.journal import read_rows
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, EmulatedVenues, VenueSpec

pytestmark = pytest.mark.slow  # child processes

PLAYED = 30
"""Bars played after the restart."""

CLI_TEXT = TEXT.replace("  stream: poll\n", "  stream: poll\n  poll_seconds: 0.02\n")
assert "poll_seconds: 0.02" in CLI_TEXT


class _Venues:
    """Both venues as `CrashRig` sees its emulator: the child's clients pick theirs by key,
    the bars (and the run's kline polls) are dear's, every order request is counted."""

    def __init__(self, venues: EmulatedVenues) -> None:
        self.venues = venues

    @property
    def url(self) -> str:
        return ",".join(f"{name}={self.venues[name].url}" for name in self.venues.names)

    @property
    def exchange(self) -> Any:
        return self.venues["dear"].exchange

    @property
    def errors(self) -> list[BaseException]:
        return [e for errors in self.venues.errors().values() for e in errors]

    def advance(self) -> None:
        self.venues.advance()

    def requests(self, route: str) -> list[Any]:
        return [r for name in self.venues.names for r in self.venues[name].requests(route)]


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashRig]:
    monkeypatch.setenv("EMU_DEAR_KEY", "dear-" + DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_CHEAP_KEY", "cheap-" + DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    specs = [
        VenueSpec("dear", {"USDT": 40_000}, taker_fee=Decimal("0.003")),
        VenueSpec("cheap", {"USDT": 12_000}, taker_fee=Decimal("0.0005")),  # buys split
    ]
    with EmulatedVenues({SYMBOL: make_bars()}, specs, start=HISTORY, include_open_kline=False) as v:
        crash_rig = CrashRig(_Venues(v), tmp_path, recv_window=10_000)  # type: ignore[arg-type]
        crash_rig.strategy.write_text(CLI_TEXT)
        try:
            yield crash_rig
        finally:
            crash_rig.close()


def _uninterrupted(tmp: Path, monkeypatch: pytest.MonkeyPatch, last: int) -> dict[str, list[Any]]:
    """The decisions of the router run never killed, up to bar ``last`` (in this process)."""
    monkeypatch.chdir(tmp)  # its bar cache
    with router_run(tmp, monkeypatch, cheap_usdt=12_000) as run:
        runner = run.runner(tmp / "run")
        runner.start()
        try:
            while run.venues.position <= last:
                run.tick(runner, 1)
        finally:
            runner.stop("done")
    return _decisions(tmp / "run" / "journal.sqlite", last)


def _decisions(journal: Path, last: int) -> dict[str, list[Any]]:
    """`test_crash.decisions` and the cancellations, up to bar ``last``."""
    found = {
        **decisions(journal),
        "cancelled": [
            (c["bar"], c["reason"], c["remaining"]) for c in rows(journal, "order_cancelled")
        ],
    }
    return {k: [d for d in v if d[0] <= last] for k, v in found.items()}


def test_a_router_run_killed_after_a_split_buy_restarts_and_sends_no_child_twice(
    rig: CrashRig, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.launch()
    while not rig.rows("route_decision"):  # the first buy, split over both venues
        assert rig.emulator.exchange.position < HISTORY + 60, "no order was routed"
        assert rig.advance() == "processed"
    assert {d["venue"] for d in rig.rows("route_decision")} == {"dear", "cheap"}
    rig.kill()  # kill -9: the children are at their venues, not yet heard of

    rig.launch()  # the same command
    rig.advance_to(rig.emulator.exchange.position + PLAYED)
    rig.stop()
    assert rig.exit_codes == [-signal.SIGKILL, 0]
    assert rig.emulator.errors == []
    posted = rig.posted()
    assert len(posted) == len(set(posted))  # no client id POSTed twice, at either venue
    assert sorted(posted) == sorted(d["order_id"] for d in rig.rows("route_decision"))
    reconciled = {r.symbol: r.values for r in read_rows(rig.journal, ["reconciled"])}
    assert set(reconciled) == {"venue dear", "venue cheap"}
    for row in reconciled.values():
        assert abs(row["venue_position"] - row["position"]) <= row["tolerance"]
    last = rig.emulator.exchange.position - 1
    mine = _decisions(rig.journal, last)
    theirs = _uninterrupted(tmp_path_factory.mktemp("uninterrupted"), monkeypatch, last)
    # orders, fills and cancellations, killed or not
    assert mine == theirs
    assert len(mine["orders"]) >= 3


KILLS = int(os.environ.get("TRADELOOM_ROUTER_KILLS", "4"))
"""kill -9s of `test_a_router_run_killed_at_random_moments_restarts_every_time` (CI: a
few; the issue's note quotes a run of 20: ``TRADELOOM_ROUTER_KILLS=20 pytest -p
no:xdist tests/live/test_router_crash.py -k random_moments``)."""


def test_a_router_run_killed_at_random_moments_restarts_every_time(rig: CrashRig) -> None:
    """kill -9 at seeded random points of a live router's life (an order recorded and not
    sent, a child's intent committed and not POSTed, a fill applied and not committed,
    or between two bars), the same command after each: every restart succeeds, no client
    id reaches either venue twice, and each venue holds what the journal's trades there
    made (its children's fills, net of the fees it took in BTC)."""
    rng = random.Random(40)
    rig.strategy.write_text(
        CLI_TEXT.replace("seed: 3\n", "seed: 3\nplugins: [tests.live.live_child]\n")
    )
    for _ in range(KILLS):
        point = rng.choice(["order", "fill", "intent", None])
        crash = None if point is None else f"{point}:{rng.randint(1, 2)}"
        if not rig.launch(crash=crash, may_die=True):
            rig.reap(-signal.SIGKILL)  # at its point, catching up
            continue
        for _ in range(rng.randint(2, 8) if point is None else 30):
            if rig.advance() == "died":
                rig.reap(-signal.SIGKILL)  # at its point
                break
        else:
            rig.kill()  # between two bars (or its point was not reached in 30)
    rig.launch()
    rig.advance_to(rig.emulator.exchange.position + 3)
    rig.stop()
    assert rig.emulator.errors == []
    assert all(code in (-signal.SIGKILL, 0) for code in rig.exit_codes), rig.exit_codes
    venues = rig.emulator.venues  # type: ignore[attr-defined]
    for name in venues.names:
        posted = [r.params["newClientOrderId"] for r in venues[name].requests(POST)]
        assert len(posted) == len(set(posted)), name  # no id twice at this venue
    everywhere = rig.posted()
    assert len(everywhere) == len(set(everywhere))  # nor at both
    venue_of = {d["order_id"]: d["venue"] for d in rig.rows("route_decision")}
    traded = dict.fromkeys(venues.names, 0.0)
    for f in rig.rows("venue_fill"):
        net = f["quantity"] - (f["fee_cost"] if f["side"] > 0 and f["fee_currency"] == "BTC" else 0)
        traded[venue_of[f["order_id"]]] += f["side"] * net
    for name in venues.names:
        btc = venues[name].exchange.balance("BTC")
        assert float(btc.free + btc.locked) == pytest.approx(traded[name], abs=1e-8), name
    assert sum(1 for code in rig.exit_codes if code == -signal.SIGKILL) == KILLS


def test_a_router_child_killed_after_its_intent_before_its_request_is_never_sent(
    rig: CrashRig,
) -> None:
    """A child's intent committed, its request not gone: the restart looks it up at its
    venue at each bar, takes it as never arrived once the venue's window is over (its
    client's recvWindow, 2 s here, + its allowance for clock skew, 0.5 s here), and sends
    nothing of it again, under its id
    or another (its rest is not routed on): the engine hears its parent cancelled, as a
    market's order never arrived (`test_crash`'s test of the kill at ``intent:N``)."""
    quick = "      initial_cash: 25000\n      options: {recvWindow: 2000}\n"
    text = CLI_TEXT.replace("seed: 3\n", "seed: 3\nplugins: [tests.live.live_child]\n")
    rig.strategy.write_text(text.replace("      initial_cash: 25000\n", quick))
    rig.skew_seconds = 0.5  # the restart waits the window out: the shorter, the sooner
    rig.launch(crash="intent:2")  # the first buy's second child
    while rig.advance() != "died":
        assert rig.emulator.exchange.position < HISTORY + 60, "no order was split"
    rig.reap(-signal.SIGKILL)
    first, lost = rig.rows("route_decision")
    parent = lost["parent_id"]
    assert first["parent_id"] == parent and first["venue"] != lost["venue"]
    assert [r["id"] for r in rig.rows("order_sent")] == [first["order_id"], lost["order_id"]]
    assert rig.posted() == [first["order_id"]]
    # the restart asks after the venue's window (the client's recvWindow + the skew
    # allowance) is over: it takes the child as never arrived at once (a restart within
    # the window asks again at each bar until it is over: `test_crash`'s kill at
    # ``intent:N``)
    (intent,) = [r for r in rig.rows("order_sent") if r["id"] == lost["order_id"]]
    rig.wait_out_window(intent["sent_at"], 2.0)
    rig.launch()
    while len(rig.posted()) < 2:  # the run trades on: its next order
        assert rig.emulator.exchange.position < HISTORY + 90, "no order after the restart"
        assert rig.advance() == "processed"
    rig.stop()
    assert rig.exit_codes == [-signal.SIGKILL, 0]
    assert rig.emulator.errors == []
    (rejected,) = [r for r in rig.rows("order_state") if r["state"] == "rejected"]
    assert (rejected["client_id"], rejected["code"]) == (lost["order_id"], "ORDER_NEVER_ARRIVED")
    (cancelled,) = rig.rows("order_cancelled")
    assert (cancelled["order_id"], cancelled["reason"]) == (parent, "REJECTED ORDER_NEVER_ARRIVED")
    assert cancelled["remaining"] == pytest.approx(lost["quantity"], rel=1e-6)
    # nothing of the parent after the restart: no child decided, none POSTed anywhere
    children = [d["order_id"] for d in rig.rows("route_decision") if d["parent_id"] == parent]
    assert children == [first["order_id"], lost["order_id"]]
    posted = rig.posted()
    assert [i for i in posted if i.startswith(parent)] == [first["order_id"]]
    assert len(posted) == len(set(posted))
    (fill,) = [f for f in rig.rows("fill") if f["order_id"] == parent]
    assert fill["quantity"] < first["quantity"]  # the first child's, net of its BTC fee
