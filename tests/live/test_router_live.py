"""A router strategy traded live through the live runner, on two emulated venues.

Each venue is its own account (its own keys, client and balances); every order the
engine sends is journaled as route_decision rows before its children are POSTed; no
client id reaches two venues; the run's position is the fills over both venues. A
live router run killed mid-way restarts from its journal, each venue reconciled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.live.live_emulated import STRATEGY, crash, emulated_run, make_bars, rows
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.plugins.execution.routed_model import ModelledRouter
from tradeloom.runtime.retrying import RetryPolicy
from tradeloom.schemas import load_strategy
from tradeloom.testing import (
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    EmulatedVenues,
    ServerError,
    VenueSpec,
)

SYMBOL = "BTC/USDT"
POST = "POST /api/v3/order"
HISTORY = 100

ROUTER = """\
execution:
  kind: router
  venues:
    - name: dear
      kind: ccxt
      exchange: binance
      api_key: ${EMU_DEAR_KEY}
      secret: ${EMU_API_SECRET}
      fee_bps: 30
      initial_cash: 25000
    - name: cheap
      kind: ccxt
      exchange: binance
      api_key: ${EMU_CHEAP_KEY}
      secret: ${EMU_API_SECRET}
      fee_bps: 5
      initial_cash: 25000
"""

TEXT = (
    STRATEGY.replace("execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}\n", ROUTER)
    .replace("api_key: ${EMU_API_KEY}", "api_key: ${EMU_DEAR_KEY}")
    .replace(
        "walk_forward: {train_window: 120, retrain_every: 40}",
        "walk_forward: {train_window: 80, retrain_every: 40}",
    )
)


@dataclass
class RouterRun:
    venues: EmulatedVenues
    strategy: Path

    def clock(self) -> pd.Timestamp:
        return pd.Timestamp(self.venues["dear"].exchange.now_ms(), unit="ms", tz="UTC")

    def runner(self, run_dir: Path) -> LiveRunner:
        config, plugins = load_strategy(self.strategy)
        return LiveRunner(
            build_pipeline(config, mode="live"),
            plugins,
            mode="live",
            run_dir=run_dir,
            clock=self.clock,
        )

    def tick(self, runner: LiveRunner, bars: int) -> None:
        for _ in range(bars):
            self.venues.advance()
            runner.tick()


@contextmanager
def router_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cheap_usdt: int = 30_000,
    *,
    text: str = TEXT,
    specs: Sequence[VenueSpec] | None = None,
) -> Iterator[RouterRun]:
    """The emulated venues (``specs``, by default dear's 40,000 USDT at 0.3% and cheap's
    ``cheap_usdt`` at 0.05%) and the strategy ``text`` pointed at them."""
    monkeypatch.setenv("EMU_DEAR_KEY", "dear-" + DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_CHEAP_KEY", "cheap-" + DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(text)
    if specs is None:
        specs = [
            VenueSpec("dear", {"USDT": 40_000}, taker_fee=Decimal("0.003")),
            VenueSpec("cheap", {"USDT": cheap_usdt}, taker_fee=Decimal("0.0005")),
        ]
    with ExitStack() as stack:
        venues = stack.enter_context(
            EmulatedVenues({SYMBOL: make_bars()}, specs, start=HISTORY, include_open_kline=False)
        )

        def client(settings: Mapping[str, Any]) -> Any:
            name = str(settings.get("apiKey", "dear-")).split("-", 1)[0]
            keys = {"apiKey": DEFAULT_API_KEY, "secret": DEFAULT_SECRET}
            return venues[name].client(**{**settings, **keys, "enableRateLimit": False})

        stack.enter_context(use_client_factory("binance", client))
        stack.enter_context(use_pro_client_factory("binance", None))
        yield RouterRun(venues, strategy)
        assert venues.errors() == {}


def tick_until(run: RouterRun, runner: LiveRunner, done: Callable[[], bool]) -> None:
    """Close bars one at a time until ``done()`` (the bars it takes follow from the fold in
    effect at the start, the backtest's); fail after 60."""
    for _ in range(60):
        if done():
            return
        run.tick(runner, 1)
    raise AssertionError("60 bars played, and still not")


def posted(venues: EmulatedVenues, name: str) -> list[str]:
    return [r.params["newClientOrderId"] for r in venues[name].requests(POST)]


@pytest.mark.slow
def test_a_live_router_run_routes_each_order_journaled_before_its_post(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with router_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        run.tick(runner, 60)
        runner.stop("done")
        dear, cheap = posted(run.venues, "dear"), posted(run.venues, "cheap")
        position = sum(
            float(b.free) + float(b.locked)
            for name in run.venues.names
            for asset, b in run.venues[name].exchange.balances().items()
            if asset == "BTC"
        )
    journal = tmp_path / "run" / "journal.sqlite"
    decisions = rows(journal, "route_decision")
    orders = rows(journal, "order")
    assert orders, "the strategy sent no order in 60 bars"
    # every order of the engine was routed, and went to the venue cheaper after fees
    assert {d["parent_id"] for d in decisions} == {o["id"] for o in orders}
    assert {d["venue"] for d in decisions} == {"cheap"}
    assert dear == []
    assert cheap == [d["order_id"] for d in decisions]
    assert len(set(cheap)) == len(cheap)
    # each child's decision is durable before the order layer's intent to send it
    seq = {
        (r.kind, r.values.get("order_id", r.values.get("id"))): r.seq
        for r in read_rows(journal, ["route_decision", "order_sent"])
    }
    for child in cheap:
        assert seq[("route_decision", child)] < seq[("order_sent", child)]
    fills = rows(journal, "fill")
    booked = sum(f["side"] * f["quantity"] for f in fills)
    assert booked == pytest.approx(position, abs=1e-9)


@pytest.mark.slow
def test_a_live_router_run_killed_and_restarted_sends_no_child_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cheap holds less quote than a buy needs: buys split over both venues
    with router_run(tmp_path, monkeypatch, cheap_usdt=12_000) as run:
        first = run.runner(tmp_path / "run")
        first.start()
        journal = tmp_path / "run" / "journal.sqlite"
        # the first buy is sent to both venues, not yet heard of
        tick_until(run, first, lambda: bool(rows(journal, "route_decision")))
        before = rows(journal, "route_decision")
        assert {d["venue"] for d in before} == {"dear", "cheap"}
        crash(first)  # kill -9: what was not committed is lost
        run.venues.advance(2)  # bars close while the run is down
        second = run.runner(tmp_path / "run")
        second.start()
        run.tick(second, 30)
        second.stop("done")
        dear, cheap = posted(run.venues, "dear"), posted(run.venues, "cheap")
        held = {
            name: sum(
                float(b.free) + float(b.locked)
                for asset, b in run.venues[name].exchange.balances().items()
                if asset == "BTC"
            )
            for name in run.venues.names
        }
    decisions = rows(journal, "route_decision")
    assert before and len(decisions) > len(before)
    assert {d["venue"] for d in decisions} == {"dear", "cheap"}
    assert len(dear + cheap) == len(set(dear + cheap))  # no client id POSTed twice
    assert sorted(dear + cheap) == sorted(d["order_id"] for d in decisions)
    reconciled = {r.symbol: r.values for r in read_rows(journal, ["reconciled"])}
    assert set(reconciled) == {"venue dear", "venue cheap"}
    for row in reconciled.values():
        assert row["position"] > 0.5  # each venue holds its part of the position
        assert abs(row["venue_position"] - row["position"]) <= row["tolerance"]
    fills = rows(journal, "fill")
    booked = sum(f["side"] * f["quantity"] for f in fills)
    assert booked == pytest.approx(sum(held.values()), abs=1e-9)


PAPER_ROUTER = """\
execution:
  kind: router
  venues:
    - {name: dear, kind: simulated, fee_bps: 30, initial_cash: 25000}
    - {name: cheap, kind: simulated, fee_bps: 5, maker_fee_bps: 2, initial_cash: 25000}
"""


def test_a_paper_router_run_trades_a_model_of_each_venue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = STRATEGY.replace(
        "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}\n", PAPER_ROUTER
    )
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(tmp_path / "run", mode="paper")
        runner.start()
        venue = runner.session_or_fail.engine.venue
        runner.stop("done")
    assert isinstance(venue, ModelledRouter)
    assert {name: a.cash for name, a in venue.accounts.items()} == {
        "dear": 25_000,
        "cheap": 25_000,
    }
    assert venue.initial_cash == 50_000
    [started] = rows(tmp_path / "run" / "journal.sqlite", "run_started")
    assert started["capital"] == 50_000


@pytest.mark.slow
def test_a_restart_refuses_to_trade_naming_the_venue_whose_balance_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with router_run(tmp_path, monkeypatch, cheap_usdt=12_000) as run:
        first = run.runner(tmp_path / "run")
        first.start()
        journal = tmp_path / "run" / "journal.sqlite"
        # a position is open on both venues: the first buy's children, filled and booked
        tick_until(run, first, lambda: bool(rows(journal, "route_decision")))
        children = {d["order_id"] for d in rows(journal, "route_decision")}
        tick_until(
            run, first, lambda: children <= {f["order_id"] for f in rows(journal, "venue_fill")}
        )
        crash(first)
        # someone sells on cheap by hand while the run is down
        run.venues["cheap"].exchange.place_order(
            "BTCUSDT", "SELL", "MARKET", quantity=Decimal("0.1")
        )
        second = run.runner(tmp_path / "run")
        with pytest.raises(RestartRefused, match=r": venue cheap: the journal's position is "):
            second.start()
        assert posted(run.venues, "cheap") == [
            d["order_id"]
            for d in rows(tmp_path / "run" / "journal.sqlite", "route_decision")
            if d["venue"] == "cheap"
        ]


@pytest.mark.slow
def test_a_venue_down_at_start_is_marked_down_and_the_run_routes_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cheaper venue cannot be reached at start: journaled down, the dear one trades."""
    with router_run(tmp_path, monkeypatch) as run:
        run.strategy.write_text(TEXT.replace("capital: 50000", "capital: 30000"))
        run.venues["cheap"].faults.always("GET /api/v3/exchangeInfo", ServerError(503))
        runner = run.runner(tmp_path / "run")
        runner.start()
        run.tick(runner, 60)
        runner.stop("done")
        dear, cheap = posted(run.venues, "dear"), posted(run.venues, "cheap")
    journal = tmp_path / "run" / "journal.sqlite"
    (health,) = rows(journal, "venue_health")
    assert (health["venue"], health["state"]) == ("cheap", "down")
    assert health["reason"].startswith(
        "down at start: RetriesExhausted: load_markets: no answer after 5 attempts; last error "
        "ExchangeNotAvailable: "
    )
    decisions = rows(journal, "route_decision")
    assert decisions and {d["venue"] for d in decisions} == {"dear"}
    assert cheap == [] and dear == [d["order_id"] for d in decisions]


def test_no_venue_up_at_start_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradeloom.cli.main import main
    from tradeloom.live.orders import ccxt_venue

    # the same five attempts per read, without a backoff's seconds of sleep
    monkeypatch.setattr(ccxt_venue, "_READ_RETRY", RetryPolicy(5, 0.01, 0.02))
    with router_run(tmp_path, monkeypatch) as run:
        for name in run.venues.names:  # the data (on dear) is up: the accounts are not
            run.venues[name].faults.always("GET /api/v3/account", ServerError(503))
        capsys.readouterr()
        code = main(["run", str(run.strategy), "--mode", "live", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if not x.startswith("{")]  # not a JSON log line
    assert line.startswith(
        "run failed: the exchange cannot be reached (ExchangeNotAvailable: no venue of "
        "execution is up at start (dear: fetch_balance: no answer after 5 attempts; "
    )
    assert "cheap: fetch_balance: no answer after 5 attempts" in line
