"""Backtests over a universe: several symbols on one clock, one code path with one symbol.

The data comes from the test plugin ``universe_data`` (seeded random markets with
stretches where a symbol has no bar) until the built-in sources load universes. Over
generated universes and strategies, the batch and the per-bar drivers journal the same
events; the equity is the core's, the attribution adds up to it, and no symbol trades
while it has no bar. The universe of one is the one-symbol run it always was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import forkserver
from tests.fixtures.plugins.universe_data import market  # the test plugin's generator
from tests.hunting import examples
from tradeloom.backtest.pipeline import BacktestResult, Driver, run_backtest
from tradeloom.core import layout as L
from tradeloom.domain import RunInfo
from tradeloom.engine.events import Recorder
from tradeloom.engine.universe import absences
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError
from tradeloom.journal import RunIdentity, journal_digest, open_journal, read_events
from tradeloom.reporting.attribution import symbol_attribution
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT")
_ENTRIES = ("ENTRY", "REVERSE")
CROSS = [
    {"kind": "cross_rank", "of": "rsi_3"},
    {"kind": "cross_zscore", "of": "log_return_1"},
    {"kind": "cross_mean", "of": "log_return_1"},
]
"""Every cross-sectional feature: the per-bar driver checks its rows against the batch's."""


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


def _doc(spec: dict[str, Any]) -> dict[str, Any]:
    risk: dict[str, Any] = {"sizing": {"kind": "fixed_fraction", "fraction": spec["fraction"]}}
    for key in ("stop_loss", "max_holding_bars"):
        if spec.get(key) is not None:
            risk[key] = spec[key]
    if spec.get("drawdown") is not None:
        risk["rules"] = [{"kind": "drawdown_halt", "max_drawdown": spec["drawdown"]}]
    return {
        "name": "universe",
        "seed": spec["seed"],
        "plugins": ["universe_data"],
        "data": {
            "kind": "test_universe",
            "symbols": list(spec["symbols"]),
            "bars": spec["bars"],
            "absent": {k: [list(r) for r in v] for k, v in spec["absent"].items()},
        },
        "features": [{"kind": "log_return", "period": 1}, {"kind": "rsi", "window": 3}]
        + (CROSS if len(spec["symbols"]) > 1 else []),
        "model": {"kind": "precomputed", "column": "p_up", "horizon": 2},
        "signal": {"kind": "threshold", "threshold": spec["threshold"], "min_interval": 1},
        "risk": risk,
        "execution": {
            "kind": "simulated",
            "initial_cash": 10_000.0,
            "fill": spec["fill"],
            "fee_bps": spec["fee_bps"],
            "allow_short": spec["allow_short"],
        },
    }


def _backtest(folder: Path, doc: dict[str, Any], driver: Driver) -> tuple[BacktestResult, str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    config, plugins = load_strategy(path, [])
    pipeline = build_pipeline(config)
    journal_path = folder / f"{driver}.sqlite"
    journal = open_journal(journal_path, RunIdentity("universe", driver, "backtest"))
    recorder = Recorder(journal, plugins.hook, RunInfo(driver, "universe", "backtest", ""))
    try:
        result = run_backtest(pipeline, recorder, "universe-test", driver=driver)
    finally:
        journal.close()
    return result, journal_digest(journal_path)


@st.composite
def _universes(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(2, 4))
    bars = draw(st.integers(12, 60))
    symbols = SYMBOLS[:count]
    absent: dict[str, list[tuple[int, int]]] = {}
    for symbol in symbols[1:]:  # the first keeps every bar: the clock is never empty
        stretches = []
        for _ in range(draw(st.integers(0, 2))):
            first = draw(st.integers(0, bars - 1))
            stretches.append((first, min(bars - 1, first + draw(st.integers(0, 8)))))
        kept = np.ones(bars, bool)
        for first, last in stretches:
            kept[first : last + 1] = False
        if stretches and kept.any():  # a symbol has a bar at least
            absent[symbol] = stretches
    return {
        "seed": draw(st.integers(0, 10_000)),
        "symbols": symbols,
        "bars": bars,
        "absent": absent,
        "fraction": draw(st.sampled_from([0.2, 0.5, 1.0])),
        "threshold": draw(st.sampled_from([0.1, 0.3])),
        "fill": draw(st.sampled_from(["next_open", "close"])),
        "fee_bps": draw(st.sampled_from([0.0, 10.0])),
        "allow_short": draw(st.booleans()),
        "stop_loss": draw(st.sampled_from([None, 0.02])),
        "max_holding_bars": draw(st.sampled_from([None, 3])),
        "drawdown": draw(st.sampled_from([None, 0.05])),
    }


@pytest.mark.slow
@settings(
    max_examples=examples(40, suite=20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=_universes())
def test_the_drivers_journal_the_same_universe(spec: dict[str, Any], tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # hypothesis reuses tmp_path
    doc = _doc(spec)
    batch, batch_digest = _backtest(folder, doc, "batch")
    per_bar, per_bar_digest = _backtest(folder, doc, "per_bar")

    assert batch_digest == per_bar_digest
    pd.testing.assert_frame_equal(batch.equity, per_bar.equity)
    assert batch.portfolio.trades == per_bar.portfolio.trades

    universe = batch.universe
    present = universe.present()
    # the equity curve ends where the core's account does: its cash, and each position
    # at its last mark, added in the core's order
    state = batch.portfolio._state
    marked = state.acct[L.A_CASH]
    for quantity, mark in state.sym[:, [L.S_QTY, L.S_MARK]]:
        if quantity != 0.0:
            marked += quantity * mark
    assert batch.equity["equity"].iloc[-1] == marked
    assert list(batch.positions[-1]) == list(state.sym[:, L.S_QTY])
    # the symbols' P&L add up to the run's
    rec = batch.recorder
    attribution = symbol_attribution(
        universe.symbols,
        rec.fills,
        rec.order_symbols,
        batch.portfolio.trades,
        batch.positions,
        batch.closes,
        batch.equity["equity"].to_numpy(),
    )
    total = sum(a["pnl"] for a in attribution.values())
    assert total == pytest.approx(batch.equity["equity"].iloc[-1] - 10_000.0, abs=1e-6)
    assert sum(a["trades"] for a in attribution.values()) == len(batch.portfolio.trades)
    # a symbol without a bar gets no signal, so no entry, and no fill (an exit the
    # holding limit or a halt decides may be sent then: it fills at its next bar)
    events = list(read_events(folder / "batch.sqlite"))
    column = {s: k for k, s in enumerate(universe.symbols)}
    for event in events:
        kind = event.KIND
        if kind in ("signal", "fill") or (kind == "order" and event.reason in _ENTRIES):
            assert present[event.bar, column[event.symbol]], (kind, event.symbol, event.bar)
    # each symbol's absence is journaled once per stretch
    journaled = sorted((e.symbol, e.bar, e.bars) for e in events if e.KIND == "symbol_absent")
    expected = sorted(
        (symbol, first, last - first + 1)
        for s, symbol in enumerate(universe.symbols)
        for first, last in absences(present[:, s])
    )
    assert journaled == expected
    loaded = [(e.symbol, e.bars) for e in events if e.KIND == "data_loaded"]
    assert loaded == [(b.symbol, len(b)) for b in universe.bars]


def test_a_universe_of_one_is_the_one_symbol_run(tmp_path: Path) -> None:
    """The same bars from a universe source and from a one-symbol csv journal the same."""
    spec = {
        "seed": 7,
        "symbols": SYMBOLS[:1],
        "bars": 80,
        "absent": {},
        "fraction": 0.5,
        "threshold": 0.1,
        "fill": "next_open",
        "fee_bps": 10.0,
        "allow_short": True,
        "stop_loss": 0.02,
        "max_holding_bars": 3,
        "drawdown": None,
    }
    doc = _doc(spec)
    frame = market(7, 0, 80, 1.0)
    frame.reset_index().to_csv(tmp_path / "bars.csv", index=False, float_format="%.17g")
    one = {**doc, "plugins": [], "data": {"kind": "csv", "path": str(tmp_path / "bars.csv")}}
    one["data"]["symbol"] = SYMBOLS[0]
    universe, universe_digest = _backtest(tmp_path / "universe", doc, "batch")
    single, single_digest = _backtest(tmp_path / "single", one, "batch")

    assert universe_digest == single_digest
    # the plugin's clock is in microseconds, the csv's in nanoseconds: the same times
    equity = universe.equity.set_axis(universe.equity.index.as_unit("ns"))
    pd.testing.assert_frame_equal(equity, single.equity)
    assert list(single.equity.columns) == ["close", "position", "cash", "equity", "drawdown"]
    assert universe.portfolio.trades == single.portfolio.trades
    assert len(single.portfolio.trades) > 0


SPEC: dict[str, Any] = {
    "seed": 1,
    "symbols": SYMBOLS[:2],
    "bars": 30,
    "absent": {},
    "fraction": 0.5,
    "threshold": 0.1,
    "fill": "next_open",
    "fee_bps": 0.0,
    "allow_short": False,
}


def test_a_cross_sectional_feature_of_one_symbol_is_refused_at_validation(
    tmp_path: Path,
) -> None:
    frame = market(1, 0, 30, 1.0)
    frame.reset_index().to_csv(tmp_path / "bars.csv", index=False)
    spec = {**SPEC, "symbols": SYMBOLS[:1]}
    doc = {**_doc(spec), "plugins": [], "data": {"kind": "csv", "path": "bars.csv"}}
    doc["features"] = [*doc["features"], CROSS[0]]
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    config, _ = load_strategy(path, [])
    with pytest.raises(ConfigError) as caught:
        build_pipeline(config)
    line = path.read_text().splitlines().index("- kind: cross_rank") + 1
    assert caught.value.lines() == [
        f"{path}:{line}:3 features.2: cross_rank is computed across the symbols of a universe, "
        "and the data has one symbol; list several under data.symbols or remove it"
    ]


POOLED = """\
name: pooled
seed: 3
plugins: [universe_data]
data:
  kind: test_universe
  symbols: [AAA/USDT, BBB/USDT, CCC/USDT]
  bars: 400
  absent:
    BBB/USDT: [[0, 59]]
    CCC/USDT: [[200, 219], [380, 399]]
features:
  - kind: log_return
    period: 1
  - kind: rsi
    window: 14
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 10, max_depth: 3}
  pooling: pooled
  symbol_id: true
  label: {horizon: 2}
  walk_forward: {train_window: 100, retrain_every: 50}
signal:
  kind: threshold
  threshold: 0.05
risk:
  sizing: {kind: fixed_fraction, fraction: 0.3}
execution:
  kind: simulated
  initial_cash: 10000
  fee_bps: 10
"""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # the checkout under test first: its tradeloom, not the one the venv installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIXTURES)])}
    command = [sys.executable, "-m", "tradeloom.cli.main", *args]
    return forkserver.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_a_universe_strategy_runs_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "pooled.yaml").write_text(POOLED, encoding="utf-8")
    proc = _cli("run", "pooled.yaml", "--out", "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    symbols = ["AAA/USDT", "BBB/USDT", "CCC/USDT"]
    assert metrics["symbols"] == symbols
    assert metrics["model_trainings"] > 0 and metrics["predictions"] > 0

    equity = pd.read_csv(run / "equity.csv")
    columns = ["timestamp", "cash", "equity", "drawdown", "gross", "equal_weight"]
    assert list(equity.columns) == columns
    # each symbol's position is a row of positions.csv at each bar it is held (long form)
    positions = pd.read_csv(run / "positions.csv")
    value = positions.pivot_table(index="bar", columns="symbol", values="value", aggfunc="sum")
    value = value.reindex(range(len(equity)), fill_value=0.0).fillna(0.0)
    # the total is the cash plus the symbols' values; gross is their absolute sum
    np.testing.assert_allclose(equity["equity"], equity["cash"] + value.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(equity["gross"], value.abs().sum(axis=1), rtol=1e-12)
    bars = pd.read_parquet(run / "bars.parquet")
    closes = bars.pivot(index="timestamp", columns="symbol", values="close")[symbols].ffill()
    index = (closes / closes.bfill().iloc[0]).fillna(1.0).mean(axis=1)
    np.testing.assert_allclose(equity["equal_weight"], index.to_numpy(), rtol=1e-15)
    # the attribution adds up to the run's P&L, and counts every trade
    attribution = metrics["attribution"]
    assert list(attribution) == symbols
    pnl = sum(a["pnl"] for a in attribution.values())
    assert pnl == pytest.approx(metrics["final_equity"] - 10_000, abs=1e-6)
    trades = pd.read_csv(run / "trades.csv")
    assert sum(a["trades"] for a in attribution.values()) == len(trades) == metrics["trades"]
    assert {s: a["trades"] for s, a in attribution.items()} == {
        s: int((trades["symbol"] == s).sum()) for s in symbols
    }
    fees = pd.read_csv(run / "fills.csv").groupby("symbol")["fee"].sum()
    for symbol in symbols:
        assert attribution[symbol]["fees"] == pytest.approx(fees.get(symbol, 0.0), rel=1e-12)
    # positions.csv holds every non-zero position, the net of its symbol's fills
    fills = pd.read_csv(run / "fills.csv")
    net = fills.assign(signed=fills["side"] * fills["quantity"])  # side: +1 buy, -1 sell
    for symbol in symbols:
        mine = positions[positions["symbol"] == symbol]
        own = net[net["symbol"] == symbol].groupby("bar")["signed"].sum().cumsum()
        held = own.reindex(range(len(equity))).ffill().fillna(0.0)
        assert list(mine["bar"]) == list(np.flatnonzero(np.abs(held.to_numpy()) > 1e-12))
        np.testing.assert_allclose(mine["position"], held[mine["bar"]], rtol=1e-9)
    # every order, fill and trade names its market; BBB trades only once listed
    for name in ("orders.csv", "fills.csv", "trades.csv"):
        frame = pd.read_csv(run / name)
        assert set(frame["symbol"]) <= set(symbols) and len(frame)
    fills = pd.read_csv(run / "fills.csv")
    assert (fills[fills["symbol"] == "BBB/USDT"]["bar"] >= 60).all()
    # the pooled model's folds are saved with their symbol-id column
    index = json.loads((run / "models" / "index.json").read_text())
    assert index["folds"]
    assert "by symbol" in proc.stdout and "BBB/USDT" in proc.stdout
    assert (run / "report.html").stat().st_size > 0

    status = _cli("status", "run", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "backtest run of 'pooled', AAA/USDT, BBB/USDT, CCC/USDT 1h" in status.stdout
    assert "equity" in status.stdout
    compare = _cli("compare", "run", "run", cwd=tmp_path)
    assert compare.returncode == 0, compare.stderr


def test_per_symbol_models_are_saved_and_journaled_by_symbol(tmp_path: Path) -> None:
    text = POOLED.replace("pooling: pooled\n  symbol_id: true\n", "pooling: per_symbol\n")
    assert "per_symbol" in text
    (tmp_path / "per_symbol.yaml").write_text(text, encoding="utf-8")
    proc = _cli("run", "per_symbol.yaml", "--out", "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    registry = json.loads((run / "metrics.json").read_text())["model_registry"]
    folders = {"AAA/USDT": "AAA-USDT", "BBB/USDT": "BBB-USDT", "CCC/USDT": "CCC-USDT"}
    assert list(registry) == list(folders)
    for symbol, folder in folders.items():
        index = json.loads((run / "models" / folder / "index.json").read_text())
        assert index["folds"] and registry[symbol]["files"] > 0
        assert registry[symbol]["dir"] == f"models/{folder}"
    saved = [e for e in read_events(run / "journal.sqlite") if e.KIND == "models_saved"]
    assert [(e.symbol, e.dir) for e in saved] == [(s, f"models/{f}") for s, f in folders.items()]


def test_a_plugin_rule_sees_each_symbols_own_row(tmp_path: Path) -> None:
    """A Python risk rule is asked about each symbol with that symbol's features: every
    intent it refuses is one whose own rsi is not under the limit, and every entry it
    lets through is one whose own rsi is."""
    spec = {**SPEC, "symbols": SYMBOLS[:3], "bars": 150, "absent": {"BBB/USDT": [(10, 30)]}}
    doc = _doc(spec)
    doc["plugins"] = ["universe_data", "feature_limit_rule"]
    doc["risk"]["rules"] = [{"kind": "feature_limit", "feature": "rsi_3", "limit": 60.0}]
    batch, batch_digest = _backtest(tmp_path, doc, "batch")
    _, per_bar_digest = _backtest(tmp_path / "per_bar", doc, "per_bar")
    assert batch_digest == per_bar_digest

    rsi = {
        s: f["rsi_3"].to_numpy()
        for s, f in zip(SYMBOLS[:3], batch.symbol_features.clock, strict=True)
    }
    events = list(read_events(tmp_path / "batch.sqlite"))
    refused = [(e.symbol, e.bar) for e in events if getattr(e, "code", "") == "FEATURE_ABOVE_LIMIT"]
    entered = [
        (e.symbol, e.bar)
        for e in events
        if e.KIND == "risk_decision" and e.outcome == "accepted" and e.reason in _ENTRIES
    ]
    assert len(refused) > 5 and len(entered) > 5
    assert {s for s, _ in refused} == set(SYMBOLS[:3])
    # the rule passes a value <= the limit only (a warm-up NaN is refused too)
    assert [(s, t) for s, t in refused if rsi[s][t] <= 60.0] == []
    assert [(s, t) for s, t in entered if not rsi[s][t] <= 60.0] == []


def test_a_universe_past_the_charted_count_keeps_the_charted_symbols_bars_and_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeloom.backtest.run import run_strategy
    from tradeloom.reporting import charted

    # four symbols past a count of two: the folder keeps the two most traded's bars and
    # features (the report's charts' own), every symbol's figures in the other tables
    monkeypatch.setattr(charted, "CHARTED_SYMBOLS", 2)
    spec = {
        "seed": 5, "symbols": SYMBOLS, "bars": 120, "absent": {}, "fraction": 0.2,
        "threshold": 0.1, "fill": "next_open", "fee_bps": 10.0, "allow_short": True,
    }  # fmt: skip
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(_doc(spec), sort_keys=False), encoding="utf-8")
    config, plugins = load_strategy(path, [])
    run_strategy(build_pipeline(config), plugins, out=tmp_path / "run")
    run = tmp_path / "run"
    trades = pd.read_csv(run / "trades.csv")
    counts = trades["symbol"].value_counts()
    assert counts.nunique() == len(counts) and len(counts) == 4  # no tie to break
    charted = sorted(counts.index[:2], key=SYMBOLS.index)
    bars = pd.read_parquet(run / "bars.parquet")
    assert list(dict.fromkeys(bars["symbol"].astype(str))) == charted
    features = pd.read_parquet(run / "features.parquet")
    assert list(dict.fromkeys(features["symbol"].astype(str))) == charted
    positions = pd.read_csv(run / "positions.csv")
    assert set(positions["symbol"]) == set(SYMBOLS)
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics["attribution"]) == list(SYMBOLS)
    assert "the 2 most traded of 4 symbols" in (run / "report.html").read_text()


def test_a_universes_bars_are_held_once_in_the_core_inputs(tmp_path: Path) -> None:
    # issue 67: a universe's bars are not held twice (each symbol's frame and the core's
    # [6, bars, symbols] inputs); a symbol absent from part of the clock keeps its own
    spec = {
        "seed": 11, "symbols": SYMBOLS[:3], "bars": 80, "absent": {"CCC/USDT": [(10, 14)]},
        "fraction": 0.2, "threshold": 0.1, "fill": "next_open", "fee_bps": 10.0,
        "allow_short": True,
    }  # fmt: skip
    doc = _doc(spec)
    result, _ = _backtest(tmp_path, doc, "batch")
    config, _ = load_strategy(tmp_path / "strategy.yaml", [])
    read = build_pipeline(config).data.load_universe()  # the bars as the source gives them
    closes = result.closes
    for s, (held, source) in enumerate(zip(result.universe.bars, read.bars, strict=True)):
        pd.testing.assert_frame_equal(held.frame, source.frame, check_exact=True)
        column = held.frame["close"].to_numpy()
        if source.symbol == "CCC/USDT":
            assert not np.shares_memory(column, closes)
        else:
            assert np.shares_memory(column, closes)
            np.testing.assert_array_equal(closes[:, s], source.frame["close"].to_numpy())
    assert np.shares_memory(result.probabilities.to_numpy(), closes.base)
