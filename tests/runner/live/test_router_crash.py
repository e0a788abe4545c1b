"""kill -9 of the real CLI trading through the router over two venues, right after a buy
was split over both, then the same command again: the restart replays the routed children,
sends no client order id twice at either venue, reconciles each venue, and orders, fills
and cancels what the run never killed does (`test_crash.CrashRig`)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from live_emulated import make_bars, rows
from test_crash import CrashRig, decisions
from test_router_live import HISTORY, SYMBOL, TEXT, router_run

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
