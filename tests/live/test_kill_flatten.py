"""``tradeloom kill --flatten`` through the command line, on the simulated clock: the run
journals the request, halts as a kill does, closes every position with market orders
(``EXIT_FLATTEN``) through its risk engine and venue, a kill asked again while they work
(the ``RUN_DIR/KILL`` file at every wake-up, a second ``tradeloom kill``) never cancels
them, a ``kill -9`` between the flatten and its fill loses nothing, and a restart never
flattens twice."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests import forkserver
from tests.builders import OMIT, strategy_text
from tests.engine.test_status_rows import assert_rows_read_as_frames
from tests.live.live_child import CRASH_ENV
from tests.live.live_emulated import crash, emulated_run, make_bars, rows
from tests.live.test_perp_live import PERP, SWAP
from tests.live.test_portfolio_live import HISTORY, MARKETS, MEMBER, PORTFOLIO
from tradeloom.engine.control import request_flatten, request_kill
from tradeloom.engine.status_rows import read_status
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.live.tick.portfolio_session import LivePortfolio, account_pipeline
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas.portfolio_file import load_portfolio
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator

ONE_MARKET = strategy_text(
    name="flat_demo",
    plugins=["tests.live.live_child"],  # TRADELOOM_CRASH: kill -9 at a fill
    signal={"threshold": 0.001},
    execution={"allow_short": True},
)

UNIVERSE = strategy_text(
    name="flat_universe",
    seed=3,
    plugins=["tests.live.live_child"],
    data={"symbol": OMIT, "symbols": ["BTC/USDT", "ETH/USDT"]},
    signal={"threshold": 0.001},
    risk={"sizing": {"fraction": 0.3}},
    execution={"initial_cash": 50000, "allow_short": True},
)


def tradeloom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # this checkout's package first (tests may run from a worktree beside an installed one)
    return forkserver.tradeloom(*args, cwd=cwd, pythonpath=Path(__file__).resolve().parents[2])


def play(cwd: Path, bars: int) -> subprocess.CompletedProcess[str]:
    done = tradeloom(
        "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
        "--max-bars", str(bars), "-q", cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def positions(run: Path) -> dict[str, float]:
    """Each symbol's position, as ``tradeloom status`` reads it from the journal."""
    assert_rows_read_as_frames(run)
    return {p.symbol: p.quantity for p in read_status(run).positions}


def flatten_and_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str, name: str
) -> list[dict[str, Any]]:
    (tmp_path / "s.yaml").write_text(strategy)
    run = tmp_path / "runs" / f"{name}-paper-simulated"
    journal = run / "journal.sqlite"
    play(tmp_path, 4)
    assert any(abs(q) > 0 for q in positions(run).values()), "no position to flatten"

    kill = tradeloom("kill", str(run), "--flatten", "--reason", "leave now", cwd=tmp_path)
    assert kill.returncode == 0, kill.stderr
    assert kill.stdout.strip().endswith("is latched when it next starts")
    # the operator's switch as well: the run reads it at every wake-up, a kill asked again
    (run / "KILL").write_text("desk closed\n")
    # kill -9 at the flatten's first fill (its rows journaled, not committed): the run
    # sends the exits at the bar after the request, the file asks again at the next
    # wake-up, and the exits fill at the following open (a run that cancels them on
    # the file's ask never fills one, and ends its 3 bars alive)
    with monkeypatch.context() as crashing:
        crashing.setenv(CRASH_ENV, "fill:1")
        died = tradeloom(
            "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
            "--max-bars", "3", "-q", cwd=tmp_path,
        )  # fmt: skip
    assert died.returncode == -signal.SIGKILL, died.stdout + died.stderr
    working = read_status(run).open_orders
    assert_rows_read_as_frames(run)  # killed with its exits open, halted
    assert working and {o.reason for o in working} == {"EXIT_FLATTEN"}
    # asked again from the command line while the exits work: answered, changes nothing
    again = tradeloom("kill", str(run), "--reason", "again", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("already halted at ")
    play(tmp_path, 3)  # the same command: the exits still work, and fill

    requests = rows(journal, "control_request")
    assert [(r["action"], r["reason"], r["by"]) for r in requests] == [
        ("flatten", "leave now", "cli"),
        ("kill", "again", "cli"),
    ]
    states = rows(journal, "trading_state")
    assert [(s["state"], s["code"]) for s in states] == [("HALTED", "KILL_SWITCH")]
    assert states[0]["message"] == "flatten: leave now (by cli)"
    flattening = [
        {"bar": r.bar, "symbol": r.symbol, **r.values}
        for r in read_rows(journal, ["order"])
        if r.values["reason"] == "EXIT_FLATTEN"
    ]
    assert flattening and all(r["bar"] == requests[0]["bar"] + 1 for r in flattening)
    ids = sorted(r["id"] for r in flattening)  # none cancelled by a kill, each filled once
    assert rows(journal, "kill_cancel") == []
    assert [c for c in rows(journal, "order_cancelled") if c["order_id"] in ids] == []
    assert sorted(f["order_id"] for f in rows(journal, "fill") if f["order_id"] in ids) == ids
    assert all(q == 0.0 for q in positions(run).values())
    # nothing but the flatten's orders after the kill
    later = [r["reason"] for r in rows(journal, "order") if r["bar"] > states[0]["bar"]]
    assert set(later) == {"EXIT_FLATTEN"}

    # a restart replays the flatten, the kill asked again and the file: the same rows, no
    # second order, still HALTED (the file still there)
    done = play(tmp_path, 2)
    again_orders = [r for r in rows(journal, "order") if r["reason"] == "EXIT_FLATTEN"]
    assert [r["id"] for r in again_orders] == [r["id"] for r in flattening]
    assert len(rows(journal, "restarted")) == 3
    assert [s["code"] for s in rows(journal, "trading_state")] == ["KILL_SWITCH"]
    stop = [line for line in done.stdout.splitlines() if line.startswith("paper run ")]
    assert len(stop) == 1 and stop[0].endswith("state HALTED"), done.stdout
    status = tradeloom("status", str(run), cwd=tmp_path)
    assert "position   flat" in status.stdout or "positions  flat" in status.stdout, status.stdout
    return flattening


@pytest.mark.slow
def test_kill_flatten_closes_the_position_once_on_one_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flattening = flatten_and_restart(tmp_path, monkeypatch, ONE_MARKET, "flat_demo")
    assert len(flattening) == 1


@pytest.mark.slow
def test_kill_flatten_closes_every_symbol_of_a_universe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flattening = flatten_and_restart(tmp_path, monkeypatch, UNIVERSE, "flat_universe")
    assert {r["symbol"] for r in flattening} == {"BTC/USDT", "ETH/USDT"}


# --- a live venue working the exits for bars: a perpetual, a portfolio file ----------------


def _survives(emu: ExchangeEmulator, runner_of: Callable[[], LiveRunner], run_dir: Path) -> None:
    """Flatten a live run whose venue fills a quarter of an order per bar, ask the kill
    again twice while the exits work (the KILL file, then a second request), kill -9 it,
    restart it: the exits are never cancelled nor sent twice, and every position closes."""
    journal = run_dir / "journal.sqlite"
    exchange = emu.exchange
    runner = runner_of()
    runner.inbox.install_signal_handlers()  # a request signals this process (SIGUSR2)
    runner.start()

    def held() -> list[float]:
        engine = runner.session_or_fail.engine
        rows_ = engine.state.sym.shape[0]
        return [engine.portfolio.position_of(s) for s in range(rows_)]

    for _ in range(40):
        if any(held()):
            break
        emu.advance()
        runner.tick()
    assert any(held()), "no position to flatten: the test proves nothing"
    request_flatten(run_dir, "leave now")
    runner.tick()
    emu.advance()
    runner.tick()  # the bar's halts stage sends the exits; a quarter of each fills per bar
    working = sorted(o.client_order_id for o in exchange.open_orders())
    assert working and {r["reason"] for r in rows(journal, "order") if r["id"] in working} == {
        "EXIT_FLATTEN"
    }
    (run_dir / "KILL").write_text("desk closed\n")  # asked again at every wake-up
    emu.advance()
    runner.tick()
    request_kill(run_dir, "again")  # and from the command line
    runner.tick()
    assert sorted(o.client_order_id for o in exchange.open_orders()) == working
    crash(runner)  # kill -9 while they work
    runner.inbox.restore_signal_handlers()

    runner = runner_of()
    runner.start()  # looks each exit up at the exchange by its client order id
    for _ in range(6):
        emu.advance()
        runner.tick()
    assert exchange.open_orders() == []
    assert all(abs(q) < 1e-5 for q in held())  # flat, but dust below the lot (0.00001)
    runner.stop("test over")
    assert rows(journal, "kill_cancel") == []
    assert [c for c in rows(journal, "order_cancelled") if c["order_id"] in working] == []
    sent = Counter(
        r.params.get("newClientOrderId")
        for route in ("POST /api/v3/order", "POST /fapi/v1/order")
        for r in emu.requests(route)
    )
    assert all(sent[i] == 1 for i in working)  # never sent twice
    assert emu.errors == []


@pytest.mark.slow
def test_a_live_perpetuals_flatten_survives_the_kill_asked_again_and_a_kill_9(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    funding = pd.Series(0.0001, index=pd.date_range("2024-01-01", periods=60, freq="8h", tz="UTC"))
    with emulated_run(
        tmp_path, monkeypatch, text=PERP, symbol=SWAP, history=150,
        funding_rates={SWAP: funding}, fill_fraction=Decimal("0.25"),
    ) as run:  # fmt: skip
        _survives(run.emulator, lambda: run.runner(tmp_path / "run"), tmp_path / "run")
        assert float(run.emulator.exchange.perp_position("BTCUSDT").amount) == 0.0


@pytest.mark.slow
def test_a_live_portfolios_flatten_survives_the_kill_asked_again_and_a_kill_9(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    for name, symbol, seed in (("trend_btc", "BTC/USDT", 11), ("swing_eth", "ETH/USDT", 5)):
        text = MEMBER.replace("NAME", name).replace("SYMBOL", symbol).replace("SEED", str(seed))
        (tmp_path / f"{name}.yaml").write_text(text.replace("CACHE", str(tmp_path / "cache")))
    path = tmp_path / "pair.yaml"
    path.write_text(PORTFOLIO)
    markets = {s: make_bars(n=HISTORY + 60, seed=7 + k) for k, s in enumerate(MARKETS)}
    with (
        ExchangeEmulator(
            markets,
            {"USDT": Decimal("60000")},
            start=HISTORY,
            include_open_kline=False,
            fill_fraction=Decimal("0.25"),
        ) as emu,
        use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False})),
    ):

        def runner() -> LiveRunner:
            portfolio = load_portfolio(path, ())
            pipelines = tuple(build_pipeline(c) for c in portfolio.strategies)
            return LiveRunner(
                account_pipeline(portfolio, pipelines),
                load_plugins(()),
                mode="live",
                run_dir=tmp_path / "run",
                clock=lambda: pd.Timestamp(emu.exchange.now_ms(), unit="ms", tz="UTC"),
                watch_file=False,
                portfolio=LivePortfolio(portfolio, pipelines),
                refresh=False,
            )

        _survives(emu, runner, tmp_path / "run")
