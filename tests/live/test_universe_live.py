"""A live run over a universe of three markets against the emulator: each order goes to its
own market, the journal's position in each symbol is what the account holds of its base
asset, and a restart (in process, or after ``kill -9`` of the real CLI) sends no client
order id twice and reconciles every market, refusing one whose balance disagrees."""

from __future__ import annotations

import json
import shutil
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from tests.live.live_emulated import EmulatedRun, crash, make_bars, rows, tick_until
from tests.live.test_universe_paper import STRATEGY, STRATEGY_REPORTED, SYMBOLS, symbols_of
from tradeloom.cli.main import main
from tradeloom.errors import UserError
from tradeloom.journal import read_rows
from tradeloom.live.accounts.account_venue import _check_assets
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator
from tradeloom.testing.emulator import MarketRules

HISTORY = 100
BARS = 300
OPEN = BARS - 1
"""The emulator's last position a run plays to: an order decided then still finds the
market open (at ``BARS`` the series is over and the venue takes no order)."""
BASES = {symbol: symbol.split("/")[0] for symbol in SYMBOLS}
RULES = {"SOL/USDT": MarketRules(step_size=Decimal("0.01"), min_qty=Decimal("0.01"))}
"""SOL trades in lots of 0.01, the others of 0.00001 (the emulator's default)."""


def _markets(n: int = BARS) -> dict[str, Any]:
    return {symbol: make_bars(n=n, seed=5 + k) for k, symbol in enumerate(SYMBOLS)}


@contextmanager
def live_universe(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rules: dict[str, MarketRules] | None = None,
    text: str = STRATEGY,
) -> Iterator[EmulatedRun]:
    """An emulator playing three markets from bar ``HISTORY``, the strategy ``text``
    pointed at it (the markets' trading rules: `RULES`, unless given)."""
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    monkeypatch.chdir(tmp_path)
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(text.replace("POOLING", "pooled"))
    markets = _markets()
    with (
        ExchangeEmulator(
            markets,
            {"USDT": Decimal("100000")},
            start=HISTORY,
            include_open_kline=False,
            rules=RULES if rules is None else rules,
        ) as emu,
        use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False})),
        use_pro_client_factory("binance", None),
    ):
        yield EmulatedRun(emu, strategy, markets[SYMBOLS[0]])


def held(path: Path) -> dict[str, float]:
    """The journal's position in each symbol: its fills, buys net of their base fee."""
    position = dict.fromkeys(SYMBOLS, 0.0)
    for row, symbol in zip(rows(path, "fill"), symbols_of(path, "fill"), strict=True):
        position[symbol] += row["side"] * row["quantity"]
    return position


def account(emulator: ExchangeEmulator) -> dict[str, float]:
    """What the account holds of each symbol's base asset (it started with none)."""
    balances = {s: emulator.exchange.balance(base) for s, base in BASES.items()}
    return {s: float(b.free + b.locked) for s, b in balances.items()}


def decisions(path: Path) -> dict[str, list[Any]]:
    """Orders and fills with their symbols, without client order ids."""
    orders = [
        (r["bar"], s, r["side"], r["reason"], r["quantity"])
        for r, s in zip(rows(path, "order"), symbols_of(path, "order"), strict=True)
    ]
    fills = [
        (r["bar"], s, r["side"], r["quantity"], r["price"])
        for r, s in zip(rows(path, "fill"), symbols_of(path, "fill"), strict=True)
    ]
    return {"orders": orders, "fills": fills}


@dataclass(frozen=True)
class Uninterrupted:
    """A live universe run to `OPEN`, never stopped, and what the venue has after it."""

    run_dir: Path
    venue_orders: list[tuple[str, str]]
    """``(client order id, market)`` of each order the venue received, in order."""
    holdings: dict[str, float]
    """What the account holds of each symbol's base asset (`account`)."""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Uninterrupted:
    """The run of `Uninterrupted` (two tests read it: one checks it, one compares a
    restarted run's decisions with it)."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        live_universe(tmp, monkeypatch, text=STRATEGY_REPORTED) as run,  # its report is read
    ):
        runner = run.runner(tmp / "live", mode="live")
        runner.start()
        try:
            tick_until(run, runner, OPEN)
        finally:
            runner.stop("test over")
        emulator = run.emulator
        assert emulator.errors == []
        venue_orders = [(o.client_order_id, o.market_id) for o in emulator.exchange.orders()]
        return Uninterrupted(tmp / "live", venue_orders, account(emulator))


def test_a_live_universe_sends_each_order_to_its_own_market(
    uninterrupted: Uninterrupted, capsys: pytest.CaptureFixture[str]
) -> None:
    venue_orders, holdings = uninterrupted.venue_orders, uninterrupted.holdings
    journal = uninterrupted.run_dir / "journal.sqlite"
    ordered = list(zip(rows(journal, "order"), symbols_of(journal, "order"), strict=True))
    # every order the engine decided reached the venue once, in its own symbol's market
    assert venue_orders == [(r["id"], s.replace("/", "")) for r, s in ordered]
    assert len({s for _, s in ordered}) == 3
    intents = {r.values["id"]: r.symbol for r in read_rows(journal, ["order_sent"])}
    assert intents == {r["id"]: s for r, s in ordered}
    # each fill booked to its own symbol, each venue trade counted once
    trades = Counter(r["order_id"] for r in rows(journal, "venue_fill"))
    assert Counter(r["order_id"] for r in rows(journal, "fill")) == trades
    assert set(symbols_of(journal, "venue_fill")) == set(SYMBOLS)
    assert held(journal) == pytest.approx(holdings, abs=1e-8)
    assert sum(1 for q in holdings.values() if q > 1e-4) >= 1  # not 0 == 0 everywhere
    at_start = {r.symbol: r.values for r in read_rows(journal, ["market_at_start"])}
    assert {s: v["base"] for s, v in at_start.items()} == BASES
    assert {s: v["dust"] for s, v in at_start.items()} == {
        "BTC/USDT": 1e-5,
        "ETH/USDT": 1e-5,
        "SOL/USDT": 0.01,
    }
    assert all(v["base_at_start"] == 0.0 for v in at_start.values())
    # A SOL sell rounds down to its lot and leaves less than one (its buys paid their fee
    # in SOL): flat for the decisions of SOL, which enters again, and never orders less
    # than a lot (with the other markets' lot, SOL would stay "long" on what is left).
    sol = [r for r, s in ordered if s == "SOL/USDT"]
    assert sum(1 for r in sol if r["reason"] == "ENTRY") >= 2
    assert min(r["quantity"] for r in sol) >= 0.01
    # the run's files, refreshed after each tick, cover its live bars, symbol by symbol
    run_dir = uninterrupted.run_dir
    equity = pd.read_csv(run_dir / "equity.csv")
    assert len(equity) == len(rows(journal, "live_bar")) // 3
    columns = ["timestamp", "cash", "equity", "drawdown", "gross", "equal_weight"]
    assert list(equity.columns) == columns
    last = equity.iloc[-1]
    positions = pd.read_csv(run_dir / "positions.csv")
    final = positions[positions["bar"] == positions["bar"].max()]
    assert dict(zip(final["symbol"], final["position"], strict=True)) == pytest.approx(
        {s: q for s, q in held(journal).items() if q != 0.0}
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["symbols"] == list(SYMBOLS)
    assert metrics["orders"] == len(ordered)
    assert metrics["final_equity"] == pytest.approx(last["equity"])
    attribution = metrics["attribution"]
    assert set(attribution) == set(SYMBOLS)
    assert sum(a["trades"] for a in attribution.values()) == len(
        pd.read_csv(run_dir / "trades.csv")
    )
    assert (run_dir / "report.html").exists()
    # tradeloom status reads each symbol's position from the journal
    capsys.readouterr()
    assert main(["status", str(run_dir), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {p["symbol"]: p["quantity"] for p in shown["positions"]} == pytest.approx(
        {s: q for s, q in held(journal).items() if q != 0.0}
    )
    assert shown["mode"] == "live"


def test_each_market_of_a_live_universe_holds_its_orders_to_its_own_minimum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOL's market asks 1,000,000 of an order (``limits.cost.min``), more than any entry
    (0.3 of 100,000); the others ask 5. The core refuses each SOL entry as BELOW_MINIMUM
    with SOL's minimum before it is an order; BTC and ETH trade."""
    rules = {**RULES, "SOL/USDT": MarketRules(min_notional=Decimal("1000000"))}
    with live_universe(tmp_path, monkeypatch, rules) as run:
        runner = run.runner(tmp_path / "live", mode="live")
        runner.start()
        try:
            tick_until(run, runner, HISTORY + 120)
        finally:
            runner.stop("test over")
        assert run.emulator.errors == []
        markets = {o.market_id for o in run.emulator.exchange.orders()}
    journal = tmp_path / "live" / "journal.sqlite"
    assert markets == {"BTCUSDT", "ETHUSDT"}
    assert "SOL/USDT" not in symbols_of(journal, "order")
    refused = [
        r
        for r, s in zip(rows(journal, "rejection"), symbols_of(journal, "rejection"), strict=True)
        if s == "SOL/USDT" and r["code"] == "BELOW_MINIMUM"
    ]
    accepted = [
        r
        for r, s in zip(
            rows(journal, "risk_decision"), symbols_of(journal, "risk_decision"), strict=True
        )
        if s == "SOL/USDT" and r["outcome"] == "accepted"
    ]
    assert accepted and len(refused) == len(accepted)
    for r in refused:
        assert r["message"].startswith("ENTRY quantity=")
        assert r["message"].endswith(
            "is below the venue's minimum order notional 1000000 (execution.min_notional, or "
            "a live market's limits.cost.min)"
        )


def test_a_restarted_live_universe_decides_what_an_uninterrupted_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: Uninterrupted
) -> None:
    with live_universe(tmp_path, monkeypatch) as run:
        first = run.runner(tmp_path / "cut", mode="live")
        first.start()
        tick_until(run, first, 200)
        book = first.session_or_fail.engine.portfolio
        before = [book.position_of(s) for s in range(3)]
        assert sum(1 for q in before if q > 1e-4) >= 1  # it holds something when it dies
        crash(first)
        second = run.runner(tmp_path / "cut", mode="live")
        second.start()
        book = second.session_or_fail.engine.portfolio
        assert [book.position_of(s) for s in range(3)] == before
        tick_until(run, second, OPEN)
        second.stop("done")
        assert run.emulator.errors == []
        client_ids = [o.client_order_id for o in run.emulator.exchange.orders()]
        holdings = account(run.emulator)
    cut = tmp_path / "cut" / "journal.sqlite"
    assert decisions(cut) == decisions(uninterrupted.run_dir / "journal.sqlite")
    assert len(client_ids) == len(set(client_ids)) == len(rows(cut, "order"))
    assert held(cut) == pytest.approx(holdings, abs=1e-8)
    assert len(rows(cut, "restarted")) == 1
    reconciled = list(read_rows(cut, ["reconciled"]))
    assert [r.symbol for r in reconciled] == list(SYMBOLS)  # one market after the other
    for row in reconciled:
        values = row.values
        assert abs(values["venue_position"] - values["position"]) <= values["tolerance"]


def test_a_restart_refuses_a_market_whose_balance_moved_while_it_was_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_universe(tmp_path, monkeypatch) as run:
        first = run.runner(tmp_path / "live", mode="live")
        first.start()
        tick_until(run, first, 200)
        crash(first)
        # a manual trade on the account, outside the run
        eth = account(run.emulator)["ETH/USDT"]
        run.emulator.client().create_order("ETH/USDT", "market", "buy", 0.5)
        bought = account(run.emulator)["ETH/USDT"] - eth
        assert bought > 0.49
        again = run.runner(tmp_path / "live", mode="live")
        with pytest.raises(RestartRefused) as refused:
            again.start()
        again.inbox.release_pid()
        posted = len(run.emulator.exchange.orders())
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'live'}: ETH/USDT: the journal's position is "), message
    assert message.endswith(
        "; refusing to trade: find the difference (a manual trade? another run on this "
        "account?) before restarting"
    )
    journal = tmp_path / "live" / "journal.sqlite"
    assert len(rows(journal, "order")) == posted - 1  # nothing sent but the manual trade
    reconciled = {r.symbol: r.values for r in read_rows(journal, ["reconciled"])}
    assert set(reconciled) == {"BTC/USDT", "ETH/USDT"}  # refused at ETH, before SOL
    difference = reconciled["ETH/USDT"]["venue_position"] - reconciled["ETH/USDT"]["position"]
    assert difference == pytest.approx(bought, abs=1e-8)


@pytest.mark.slow  # child processes
def test_a_live_universe_killed_with_kill_9_sends_no_order_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real CLI in a child process, killed at its third order before it is committed,
    then started again with the same command: every client order id reached the venue at
    most once, every trade is counted once, and the journal's position in each symbol is
    the account's balance of its base asset.

    Before that, a copy of the killed run whose journal lost its last durable rows (a cut
    write-ahead log) is refused in one line and sends nothing: a universe's restart does
    not take a cut journal (one market's asks its venue, test_tail_cuts)."""
    from tests.journal_damage import cut_below_tail
    from tests.live import live_child
    from tests.live.test_crash import CrashRig

    markets = _markets(n=240)
    text = STRATEGY.replace("POOLING", "pooled").replace(
        "seed: 3\n", "seed: 3\nplugins: [tests.live.live_child]\n"
    )
    text = text.replace("cache_dir: cache", f"cache_dir: {tmp_path / 'cache'}")
    text = text.replace("  stream: poll\n", "  stream: poll\n  poll_seconds: 0.02\n")
    with ExchangeEmulator(
        markets, {"USDT": Decimal("100000")}, start=HISTORY, include_open_kline=False, rules=RULES
    ) as emu:
        rig = CrashRig(emu, tmp_path, 10_000)
        rig.strategy.write_text(text)
        rig.started_kinds = ("warm_up", "reconciled")
        rig.polls_per_tick = len(SYMBOLS)
        try:
            rig.launch(crash="order:3")
            while rig.child is not None and rig.advance() == "processed":
                pass
            rig.reap(-signal.SIGKILL)
            killed_at = max(r["bar"] for r in rig.rows("live_bar"))
            assert len(rig.order_ids()) == 2  # the third died with its bar's rows
            cut = tmp_path / "cut" / rig.run_dir.name
            shutil.copytree(rig.run_dir, cut)
            committed = cut_below_tail(cut / "journal.sqlite", 2)
            posted_before = rig.posted()
            monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
            monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
            capsys.readouterr()
            code = live_child.main([emu.url, str(rig.strategy), str(cut), "--max-bars", "1"])
            assert (code, capsys.readouterr().err) == (
                2,
                f"{cut / 'journal.sqlite'}: its tail was cut: it holds {committed - 2} rows, "
                f"its tail record says {committed} were committed (2 rows lost); refusing to "
                "restart: nothing was sent\n",
            )
            assert rig.posted() == posted_before
            rig.launch()
            rig.advance_to(len(markets[SYMBOLS[0]]) - 1)
            rig.stop()
        finally:
            rig.close()
        assert emu.errors == []
        holdings = account(emu)
        venue_trades = sorted(str(t.trade_id) for t in emu.exchange.trades())
        venue_orders = [(o.client_order_id, o.market_id) for o in emu.exchange.orders()]
    journal = rig.journal
    assert killed_at < len(markets[SYMBOLS[0]]) - 1  # it died mid-run
    ids = rig.order_ids()
    assert len(ids) > 3 and len(set(ids)) == len(ids)
    posted = rig.posted()
    assert sorted(posted) == sorted(ids)  # each intent reached the venue once
    symbols = dict(zip(ids, symbols_of(journal, "order"), strict=True))
    assert venue_orders == [(i, symbols[i].replace("/", "")) for i in posted]
    counted = [str(r["trade_id"]) for r in rig.rows("venue_fill")]
    assert sorted(counted) == venue_trades
    assert held(journal) == pytest.approx(holdings, abs=1e-8)
    reconciled = list(read_rows(journal, ["reconciled"]))
    assert [r.symbol for r in reconciled] == list(SYMBOLS)
    assert rig.exit_codes == [-signal.SIGKILL, 0]


@pytest.mark.parametrize(
    ("symbols", "problem"),
    [
        (
            ("BTC/USDT", "ETH/BTC"),
            "--mode live trades one account's cash; the symbols are quoted in BTC, USDT: "
            "list symbols of one quote asset",
        ),
        (
            ("ETH/USDT", "ETH/USDC"),
            "--mode live trades one account's cash; the symbols are quoted in USDC, USDT: "
            "list symbols of one quote asset",
        ),
    ],
)
def test_a_live_universe_must_share_one_quote_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, symbols: tuple[str, str], problem: str
) -> None:
    _refused_at_start(tmp_path, monkeypatch, symbols, problem)


def test_a_live_universe_trades_each_base_asset_in_one_symbol() -> None:
    # a spot market and a swap of one base asset, both quoted in USDT (the emulator
    # serves spot markets only: the markets as ccxt describes them)
    config = SimpleNamespace(data=SimpleNamespace(path="data"), locate=lambda _: "s.yaml:6:12")
    runner: Any = SimpleNamespace(config=config)
    markets = {
        "ETH/USDT": {"base": "ETH", "quote": "USDT"},
        "BTC/USDT": {"base": "BTC", "quote": "USDT"},
        "ETH/USDT:USDT": {"base": "ETH", "quote": "USDT"},
    }
    with pytest.raises(UserError) as refused:
        _check_assets(runner, markets)
    assert str(refused.value) == (
        "s.yaml:6:12 data.symbols: ETH/USDT and ETH/USDT:USDT both trade ETH; --mode live "
        "reconciles each base asset's balance with one symbol's position: list one symbol "
        "per base asset"
    )


def _refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, symbols: tuple[str, ...], problem: str
) -> None:
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    monkeypatch.chdir(tmp_path)
    strategy = tmp_path / "strategy.yaml"
    listed = ", ".join(symbols)
    strategy.write_text(
        STRATEGY.replace("POOLING", "pooled").replace(
            "symbols: [BTC/USDT, ETH/USDT, SOL/USDT]", f"symbols: [{listed}]"
        )
    )
    markets = {s: make_bars(n=HISTORY + 5, seed=5 + k) for k, s in enumerate(symbols)}
    with (
        ExchangeEmulator(
            markets, {"USDT": Decimal("100000")}, start=HISTORY, include_open_kline=False
        ) as emu,
        use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False})),
        use_pro_client_factory("binance", None),
    ):
        runner = EmulatedRun(emu, strategy, markets[symbols[0]]).runner(tmp_path / "live")
        with pytest.raises(UserError) as refused:
            runner.start()
        runner.inbox.release_pid()
        assert emu.exchange.orders() == []
    assert str(refused.value) == f"{strategy}:6:12 data.symbols: {problem}"
