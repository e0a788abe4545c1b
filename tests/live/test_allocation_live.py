"""The allocation layer on paper, on the emulator's clock: a universe rebalanced by its
allocator journals its backtest's weights and orders from a flat start; a solve past its
deadline holds the last weights and says so; a restart takes the journal's decisions
instead of solving again. (A live run killed -9 during a rebalance: the ``allocating``
shape of `tests.live.fault_shapes`.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from tests.live.live_emulated import EmulatedRun, crash, make_bars, rows, tick_until
from tests.live.test_universe_paper import backtest, strip
from tradeloom.journal import read_rows
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.reporting.allocation_figures import allocation_block
from tradeloom.reporting.labels import TRADES_NOT_APPLICABLE
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
HISTORY = 100
EVERY = 8

STRATEGY = """\
name: live_allocated
seed: 3
PLUGINS
data:
  kind: ccxt
  exchange: binance
  symbols: [BTC/USDT, ETH/USDT, SOL/USDT]
  timeframe: 1h
  start: "2024-01-01"
  cache_dir: cache
  api_key: ${EMU_API_KEY}
  secret: ${EMU_API_SECRET}
features:
  - {kind: log_return, period: 1}
  - {kind: rsi, window: 14}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 10, max_depth: 3, min_samples_leaf: 10, n_jobs: 1}
  label: {horizon: 3}
  walk_forward: {train_window: 80, retrain_every: 200}
signal: {kind: threshold, threshold: 0.04}
allocation:
  ALLOCATOR
  window: 100
  constraints: {net_exposure: 0.9}
  rebalance: {every: 8}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.3}
execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}
live:
  stream: poll
  close_delay_seconds: 0
  capital: 50000
  stale_after_bars: null
  allocation_deadline_seconds: DEADLINE
"""

RISK_PARITY = "kind: risk_parity\n  covariance: ledoit_wolf"


@contextmanager
def allocated_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    allocator: str = RISK_PARITY,
    plugins: str = "",
    deadline: float = 60.0,
    bars: int = 150,
) -> Iterator[EmulatedRun]:
    """An emulator playing three markets of ``bars`` bars from bar `HISTORY`, the
    allocating strategy pointed at it."""
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    monkeypatch.chdir(tmp_path)
    strategy = tmp_path / "strategy.yaml"
    text = STRATEGY.replace("ALLOCATOR", allocator).replace("DEADLINE", str(deadline))
    strategy.write_text(text.replace("PLUGINS\n", plugins))
    markets = {symbol: make_bars(n=bars, seed=5 + k) for k, symbol in enumerate(SYMBOLS)}
    with (
        ExchangeEmulator(
            markets, {"USDT": Decimal("100000")}, start=HISTORY, include_open_kline=False
        ) as emu,
        use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False})),
        use_pro_client_factory("binance", None),
    ):
        run = EmulatedRun(emu, strategy, markets[SYMBOLS[0]])
        run.markets = markets  # type: ignore[attr-defined]
        yield run


def test_a_paper_universe_allocates_as_its_backtest_from_a_flat_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with allocated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            tick_until(run, runner, len(run.bars))
        finally:
            runner.stop("test over")
        paper = tmp_path / "paper" / "journal.sqlite"
        reference = backtest(run, tmp_path)
    theirs = rows(reference, "allocation_decided")
    # the backtest's first rebalance is the paper run's first bar: both start flat
    assert theirs[0]["bar"] == HISTORY
    for kind in ("allocation_decided", "risk_decision", "rejection", "order", "fill"):
        mine = [strip(r) for r in rows(paper, kind)]
        assert mine == [strip(r) for r in rows(reference, kind) if r["bar"] >= HISTORY], kind
    decisions = rows(paper, "allocation_decided")
    assert [d["bar"] for d in decisions] == list(range(HISTORY, len(run.bars), EVERY))
    assert {d["status"] for d in decisions} == {"ok"}
    assert decisions[0]["held"] == [0.0, 0.0, 0.0]  # a flat start
    orders = rows(paper, "order")
    assert {o["reason"] for o in orders} == {"REBALANCE"}
    assert {o["bar"] for o in orders} == {d["bar"] for d in decisions}  # each one trades
    ids = [o["id"] for o in orders]
    assert len(set(ids)) == len(ids)


def test_a_paper_universe_closes_what_it_weighs_at_zero_as_its_backtest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A weight of 1e-12 (a solver's zero) or 3e-9 closes the position, on paper as in
    the backtest; the paper run's ``metrics.json`` counts the rebalances as a backtest's."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    weights = "[[0.5, 0.3, 0.2], [0.6, 0.4, 1e-12], [3e-9, 0.3, 0.7], [0.3, 0.3, 0.4]]"
    with allocated_run(
        tmp_path,
        monkeypatch,
        allocator=f"kind: given\n  weights: {weights}",
        plugins="plugins: [given_allocator]\n",
        bars=HISTORY + 3 * EVERY + 2,
    ) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            tick_until(run, runner, len(run.bars))
        finally:
            runner.stop("test over")
        paper = tmp_path / "paper" / "journal.sqlite"
        reference = backtest(run, tmp_path)
    for kind in ("allocation_decided", "rejection", "order", "fill"):
        mine = [strip(r) for r in rows(paper, kind)]
        assert mine == [strip(r) for r in rows(reference, kind) if r["bar"] >= HISTORY], kind
    assert rows(paper, "rejection") == []  # no BELOW_MINIMUM: the targets of 0 close
    held: dict[str, float] = {}
    closed = set()
    for fill in read_rows(paper, ["fill"]):
        symbol = str(fill.symbol)
        held[symbol] = held.get(symbol, 0.0) + fill.values["side"] * fill.values["quantity"]
        if held[symbol] == 0.0:
            closed.add((fill.bar, symbol))
    # SOL at the second rebalance, BTC at the third: each sold whole at the next open
    assert closed == {(HISTORY + EVERY + 1, "SOL/USDT"), (HISTORY + 2 * EVERY + 1, "BTC/USDT")}
    metrics = json.loads((tmp_path / "paper" / "metrics.json").read_text(encoding="utf-8"))
    decisions = rows(paper, "allocation_decided")
    expected = allocation_block(
        "given", [(d["status"], d["weights"], d["held"]) for d in decisions], metrics["refusals"]
    )
    assert metrics["allocation"] == expected
    assert expected["rebalances"] == 4 and expected["refused_orders"] == 0
    assert metrics["trade_statistics"] == TRADES_NOT_APPLICABLE


def _join_workers() -> None:
    """Wait for every allocation worker of this process to end (one a test released)."""
    for thread in threading.enumerate():
        if thread.name.startswith("tradeloom-allocation-"):
            thread.join()


def test_a_solve_past_its_deadline_holds_the_last_weights_and_a_restart_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))
    import gated_allocator

    gated_allocator.RELEASE.clear()
    gated_allocator.CALLS.clear()
    journal = tmp_path / "paper" / "journal.sqlite"
    with allocated_run(
        tmp_path,
        monkeypatch,
        allocator="kind: gated\n  hold_at: [2]",
        plugins="plugins: [gated_allocator]\n",
        deadline=2.0,
    ) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        try:
            # bar 100 solves; 108's solve is held past its deadline; at 116 it still runs
            tick_until(run, runner, HISTORY + 2 * EVERY + 1)
            gated_allocator.RELEASE.set()
            _join_workers()
            tick_until(run, runner, HISTORY + 3 * EVERY + 1)  # 124 solves again
            solved = len(gated_allocator.CALLS)
            crash(runner)
            runner = run.runner(tmp_path / "paper", mode="paper")
            runner.start()
            assert len(gated_allocator.CALLS) == solved  # the replay solved nothing
            tick_until(run, runner, HISTORY + 4 * EVERY + 1)  # 132 solves after the restart
            assert len(gated_allocator.CALLS) == solved + 1
        finally:
            gated_allocator.RELEASE.set()
            runner.stop("test over")
    decisions = rows(journal, "allocation_decided")
    assert [(d["bar"], d["status"]) for d in decisions] == [
        (100, "ok"),
        (108, "late"),
        (116, "late"),
        (124, "ok"),
        (132, "ok"),
    ]
    first, late, still, again, _ = decisions
    assert late["message"] == (
        "the solve took longer than live.allocation_deadline_seconds (2 s): the last weights hold"
    )
    assert still["message"] == (
        "the solve of bar 108 still runs, past its deadline: the last weights hold"
    )
    assert late["weights"] == first["weights"] and still["weights"] == first["weights"]
    assert again["weights"] != first["weights"]  # its third call, rolled once more
    orders = rows(journal, "order")
    traded = sorted({o["bar"] for o in orders})
    assert traded == [100, 124, 132]  # nothing at a late rebalance
    ids = [o["id"] for o in orders]
    assert len(set(ids)) == len(ids)
    assert len(rows(journal, "restarted")) == 1
