"""``tradeloom parity`` on live runs against the exchange emulator, one cause injected per
run (issue 69), for a universe of three markets and for a router of two venues (and
slippage for one market, whose other causes tests/diagnostics/test_parity.py injects):

- slippage: the exchange's prices are 10 bps over the bars the run reads;
- a different fee: the exchange charges 0.2% where the file says less;
- a partial fill: the first order fills half a bar, the rest at the next open;
- a rejection: the first order is refused (-2010, insufficient balance);
- a venue outage: bars close while the run hears nothing, played late on its return;
- a ``kill -9`` and restart: bars close while the run is down, its catch-up is late;
- a hot reload: the strategy file's sizing is edited while the run trades.

Each case checks that parity finds the cause, attributes it to the market (universe) or
venue (router) it was injected in, and that the P&L by cause sums to the equity gap
within 1e-9 (`_report`), each cause's share by market or venue summing to its P&L.

The universe (and the one market) reads its bars from one emulated account and trades
on another (``kind: ccxt``), so that the trading account's prices can differ from the
bars; the router reads from ``dear`` and routes to ``cheap`` (the lower fee), where the
faults go. Each case is one small run and its replay; the command is called in process.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.diagnostics.test_parity import POST, _parity
from tests.diagnostics.test_parity_shapes import _by_part
from tests.live.live_emulated import STRATEGY, SYMBOL, crash, make_bars
from tests.live.test_router_live import TEXT as ROUTER_TEXT
from tests.live.test_router_live import router_run
from tests.live.test_universe_paper import STRATEGY as UNIVERSE_TEXT
from tests.live.test_universe_paper import SYMBOLS
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.schemas import load_strategy
from tradeloom.testing import (
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    EmulatedVenues,
    Fault,
    PartialFill,
    Reject,
    VenueSpec,
)

pytestmark = pytest.mark.slow  # a live run and its replay a case

INJECTED = ("slippage", "fee", "partial_fill", "rejection", "outage", "kill_9", "hot_reload")
CAUSE = {"outage": "late_bars", "kill_9": "late_bars"}
"""The cause parity names for each injection (its own name when not listed)."""
INSUFFICIENT = "Account has insufficient balance for requested action."
FAULTS: dict[str, Fault] = {
    "partial_fill": PartialFill(0.5),
    "rejection": Reject(-2010, INSUFFICIENT),
}
"""What the first order sent to the faulty venue gets."""
DOWN = 4
"""Bars that close while the run hears nothing (an outage) or is down (``kill -9``)."""

OWN_ACCOUNT = (
    "execution:\n  kind: ccxt\n  exchange: binance\n  api_key: ${EMU_TRADE_KEY}\n"
    "  secret: ${EMU_API_SECRET}\n  fee_bps: 10\n  initial_cash: 50000"
)
SIMULATED = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}"
UNIVERSE = UNIVERSE_TEXT.replace("POOLING", "pooled").replace(SIMULATED, OWN_ACCOUNT)
"""tests/live/test_universe_paper.py's universe, trading on its own account."""
ONE_MARKET = STRATEGY.replace(SIMULATED, OWN_ACCOUNT)
"""tests/live/live_emulated.py's strategy (one market), trading on its own account."""
ROUTED = ROUTER_TEXT.replace("fraction: 0.5", "fraction: 0.3")
"""The router strategy of tests/live/test_router_live.py, whose buys fit the cheaper
venue's cash."""


@dataclass
class _Rig:
    """Emulated venues on one clock and a strategy file pointed at them."""

    venues: EmulatedVenues
    strategy: Path
    faulty: str
    """The venue the faults go to (the one the run trades on)."""

    def clock(self) -> pd.Timestamp:
        first = self.venues[self.venues.names[0]].exchange
        return pd.Timestamp(first.now_ms(), unit="ms", tz="UTC")

    def runner(self, run_dir: Path) -> LiveRunner:
        config, plugins = load_strategy(self.strategy)
        runner = LiveRunner(
            build_pipeline(config, mode="live"),
            plugins,
            mode="live",
            run_dir=run_dir,
            clock=self.clock,
            watch_file=True,
        )
        runner.start()
        return runner

    def until(self, runner: LiveRunner, bar: int) -> None:
        """Close bars up to bar ``bar``, ticking the runner after each."""
        while self.venues[self.venues.names[0]].exchange.position < bar:
            self.venues.advance()
            runner.tick()


def _play(rig: _Rig, run_dir: Path, injected: str, at: int, end: int) -> Path:
    """Run the strategy live to bar ``end``, ``injected`` at bar ``at`` (a fault: on the
    first order); return the run's folder."""
    runner = rig.runner(run_dir)
    try:
        if injected in FAULTS:
            rig.venues[rig.faulty].faults.next(POST, FAULTS[injected])
        rig.until(runner, at)
        if injected == "outage":  # the run hears nothing while these bars close
            rig.venues.advance(DOWN)
        elif injected == "kill_9":
            crash(runner)  # what was not committed is lost
            rig.venues.advance(DOWN)
            runner = rig.runner(run_dir)  # its catch-up plays the bars it missed
        elif injected == "hot_reload":
            text = rig.strategy.read_text()
            rig.strategy.write_text(text.replace("fraction: 0.3", "fraction: 0.2"))
        rig.until(runner, end)
    finally:
        runner.stop("test over")
    assert rig.venues.errors() == {}
    return run_dir


def _specs(injected: str, name: str, cash: int, fee: str) -> VenueSpec:
    """The faulty venue's spec: the bars' prices and the fee ``fee``, but for the
    injection."""
    spec = VenueSpec(name, {"USDT": cash}, taker_fee=Decimal(fee))
    if injected == "slippage":
        spec = replace(spec, price_offset_bps=Decimal(10))
    if injected == "fee":
        spec = replace(spec, taker_fee=Decimal("0.002"))
    return spec


@contextmanager
def _venues(markets: Mapping[str, pd.DataFrame], *specs: VenueSpec) -> Iterator[EmulatedVenues]:
    """The venues, each ccxt ``binance`` client routed to the one its key names."""
    with EmulatedVenues(markets, specs, start=100, include_open_kline=False) as venues:

        def client(settings: Mapping[str, Any]) -> Any:
            name = str(settings["apiKey"]).split("-", 1)[0]
            keys = {"apiKey": DEFAULT_API_KEY, "secret": DEFAULT_SECRET}
            return venues[name].client(**{**settings, **keys, "enableRateLimit": False})

        with (
            use_client_factory("binance", client),
            use_pro_client_factory("binance", None),
        ):
            yield venues


UNIVERSE_AT = {"outage": 146, "kill_9": 158, "hot_reload": 150}
"""The bar each universe injection is made at (a fault's: the start)."""


def _universe(folder: Path, injected: str) -> Path:
    markets = {s: make_bars(n=180, seed=5 + k) for k, s in enumerate(SYMBOLS)}
    return _own_account(folder, injected, UNIVERSE, markets, UNIVERSE_AT.get(injected, 100))


def _own_account(
    folder: Path, injected: str, text: str, markets: Mapping[str, pd.DataFrame], at: int
) -> Path:
    """Run ``text`` reading its bars from the account ``data`` and trading on ``trade``."""
    specs = (
        VenueSpec("data", {"USDT": 0}),
        _specs(injected, "trade", 100_000, "0.001"),
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(folder)
        monkeypatch.setenv("EMU_API_KEY", "data-" + DEFAULT_API_KEY)
        monkeypatch.setenv("EMU_TRADE_KEY", "trade-" + DEFAULT_API_KEY)
        monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
        strategy = folder / "strategy.yaml"
        strategy.write_text(text)
        with _venues(markets, *specs) as venues:
            return _play(_Rig(venues, strategy, "trade"), folder / "live", injected, at, 180)


ROUTER_AT = {"outage": 131, "kill_9": 154, "hot_reload": 120}
"""The bar each router injection is made at (a fault's: the start)."""


def _router(folder: Path, injected: str) -> Path:
    specs = [
        VenueSpec("dear", {"USDT": 25_000}, taker_fee=Decimal("0.003")),
        _specs(injected, "cheap", 25_000, "0.0005"),
    ]
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(folder)
        with router_run(folder, monkeypatch, text=ROUTED, specs=specs) as run:
            rig = _Rig(run.venues, run.strategy, "cheap")
            at = ROUTER_AT.get(injected, 100)
            return _play(rig, folder / "live", injected, at, 160)


def _report(run_dir: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Parity of the run: exit 0, the P&L by cause summing to the equity gap within 1e-9,
    what the causes leave within the default tolerance (the venue's rounding)."""
    code, _, err = _parity(capsys, str(run_dir), "--out", str(out))
    assert code == 0, err
    report: dict[str, Any] = json.loads((out / "parity.json").read_text())
    total = math.fsum(c["pnl"] for c in report["causes"].values())
    assert abs(total + report["unexplained_pnl"] - report["equity_gap"]) <= 1e-9
    assert abs(report["unexplained_pnl"]) <= 1e-6 + 1e-9 * report["reference_equity"]
    return report


def _rows(report: dict[str, Any], cause: str) -> list[dict[str, Any]]:
    return [d for d in report["differences_by_bar"] if d["cause"] == cause]


def _found(report: dict[str, Any], injected: str, part: str) -> list[dict[str, Any]]:
    """Assert the injected cause is found, with P&L, and nothing but it, a buy's fee in
    the base asset (the emulator takes it from the bought quantity) and their knock-ons;
    return its difference rows."""
    cause = CAUSE.get(injected, injected)
    assert cause in report["causes"], report["causes"]
    rows = _rows(report, cause)
    # it moved the equity (a slippage over a round trip may nearly cancel: its parts)
    assert math.fsum(abs(d["pnl"]) for d in rows) > 1.0
    assert set(report["causes"]) <= {cause, "fee", "knock_on"}, report["causes"]
    _by_part(report, part)
    return rows


def _fills(run_dir: Path) -> list[Any]:
    return list(read_rows(run_dir / "journal.sqlite", ["fill"]))


def _traded(run_dir: Path, key: str) -> set[str]:
    """The markets (``symbol``) or venues (``venue``) the run filled orders in."""
    journal = run_dir / "journal.sqlite"
    if key == "symbol":
        return {r.symbol for r in _fills(run_dir)}
    return {r.values["venue"] for r in read_rows(journal, ["route_decision"])}


def _attributed(run_dir: Path, report: dict[str, Any], injected: str, key: str) -> None:
    """Assert the injected cause's differences are where it was injected: in the market
    (``key`` ``symbol``) or at the venue (``venue``) named, at the bars it acts from."""
    part = "by_symbol" if key == "symbol" else "by_venue"
    rows = _found(report, injected, part)
    assert rows
    cause = CAUSE.get(injected, injected)
    journal = run_dir / "journal.sqlite"
    fills = [d for d in rows if d["field"].startswith("fill")]
    where = {d[key] for d in fills}
    traded = _traded(run_dir, key)
    if injected == "slippage":  # every fill at the trading venue, 10 bps over the bars
        assert {d["field"] for d in rows} == {"fill.price"} and where == traded
        assert len(rows) == len(_fills(run_dir))
        assert all(math.isclose(d["run"] / d["reference"], 1.001, rel_tol=1e-5) for d in rows)
    elif injected == "fee":  # every fill charged 0.2%, not the file's rate
        charged = [d for d in rows if d["field"] == "fill.fee"]
        assert {d[key] for d in charged} == traded
        assert all(d["run"] > 1.5 * d["reference"] for d in charged)
    elif injected == "partial_fill":  # the first order's market or venue alone
        first = _fills(run_dir)[0]
        parts = [f for f in _fills(run_dir) if f.values["order_id"] == first.values["order_id"]]
        assert len(parts) >= 2 and len({f.values["price"] for f in parts}) >= 2
        assert {d["code"] for d in rows} == {"filled in parts"}
        assert where == ({first.symbol} if key == "symbol" else {"cheap"})
    elif injected == "rejection":  # the refused order's market (venue), with the code
        assert {d["code"] for d in rows} == {
            f"VENUE_REJECTED: InsufficientFunds -2010: {INSUFFICIENT}"
        }
        assert rows[0]["field"] == "fill" and rows[0]["run"] == ""
        if key == "symbol":
            refused = next(iter(read_rows(journal, ["order_cancelled"])))
            assert where == {refused.symbol} and rows[0]["bar"] == refused.bar
        else:  # the router sent it on to dear: the replay's fill at cheap, the run's there
            assert where == {"cheap", "dear"}
    elif injected in ("outage", "kill_9"):  # an order decided at a bar played late
        at = (UNIVERSE_AT if key == "symbol" else ROUTER_AT)[injected]
        priced = [d for d in rows if d["field"] == "fill.price"]
        assert priced and {d["code"] for d in priced} == {"sent at a late bar's price"}
        # its P&L: the prices the late orders went out at (their sizes are knock-ons)
        assert {d["field"] for d in rows if d["pnl"] != 0.0} == {"fill.price"}
        assert all(at <= d["bar"] <= at + DOWN + 1 for d in rows) and where <= traded
        sent_late = {
            (f.bar, f.symbol) for f in _fills(run_dir) if at <= f.correlation_id <= at + DOWN
        }  # fills of orders decided on the bars played late
        assert {(d["bar"], d["symbol"]) for d in priced} <= sent_late
        if injected == "kill_9":  # the restart's catch-up
            (restarted,) = read_rows(journal, ["restarted"])
            assert all(d["bar"] > restarted.bar for d in rows)
    else:  # a hot reload: every difference from the bar after it on
        (reloaded,) = read_rows(journal, ["config_reloaded"])
        assert all(d["bar"] > reloaded.bar for d in rows) and where <= traded
        later = [d for d in report["differences_by_bar"] if d["bar"] > reloaded.bar]
        assert {d["cause"] for d in later} <= {"hot_reload", "fee"}
    booked = {d[key] for d in rows if d["pnl"] != 0.0}
    for name, by in report[part].items():  # the cause's P&L is where its rows are
        assert (cause in by) == (name in booked), (name, by)


@pytest.mark.parametrize("injected", INJECTED)
def test_a_universes_cause_is_found_in_its_market(
    injected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _universe(tmp_path, injected)
    report = _report(run_dir, tmp_path / "p", capsys)
    _attributed(run_dir, report, injected, "symbol")


@pytest.mark.parametrize("injected", INJECTED)
def test_a_routers_cause_is_found_at_its_venue(
    injected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _router(tmp_path, injected)
    report = _report(run_dir, tmp_path / "p", capsys)
    _attributed(run_dir, report, injected, "venue")


def test_one_markets_slippage_is_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # one market's other causes: tests/diagnostics/test_parity.py, test_parity_shapes.py
    run_dir = _own_account(tmp_path, "slippage", ONE_MARKET, {SYMBOL: make_bars(n=180)}, 100)
    report = _report(run_dir, tmp_path / "p", capsys)
    _attributed(run_dir, report, "slippage", "symbol")
