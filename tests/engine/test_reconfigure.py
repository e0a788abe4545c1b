"""`Engine.reconfigure` (a hot reload, a promotion's rule and sizing put in force, a
parity replay's): the signal rule in force goes on with each symbol's own state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.backtest.portfolio_run import run_portfolio
from tradeloom.backtest.run import run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.live.lifecycle.promoted_signal import signal_rules
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas import load_strategy
from tradeloom.schemas.portfolio_file import load_portfolio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"

STRATEGY = """\
name: turns
seed: 3
plugins: [stateful_signal]
data:
  kind: synthetic
  symbols: [BTC/USDT, ETH/USDT]
  timeframe: 1h
  bars: 400
  start: "2024-01-01T00:00:00Z"
features:
  - kind: log_return
    period: 1
  - kind: rsi
    window: 14
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  label:
    horizon: 1
  walk_forward:
    train_window: 150
    retrain_every: 100
signal:
  kind: probability_turn
risk:
  sizing: {kind: fixed_fraction, fraction: 0.2}
execution:
  kind: simulated
  fee_bps: 10
  initial_cash: 10000
  allow_short: true
"""


def _signals(path: Path, tmp_path: Path, name: str, *, change: bool) -> list[tuple[int, int]]:
    config, plugins = load_strategy(path)
    pipeline = build_pipeline(config)
    if change:  # the same rule, sizing and settings put in force again at bar 300's close
        at = pd.Timestamp("2024-01-01T00:00:00Z") + pd.Timedelta(hours=300)
        changes = ((at.value, pipeline.signal, pipeline.sizer, pipeline.config),)
        pipeline = dataclasses.replace(pipeline, signal_rules=changes)
    out = tmp_path / name
    run_strategy(pipeline, plugins, out=out)
    return [(r.bar, r.values["direction"]) for r in read_rows(out / "journal.sqlite", ["signal"])]


def test_a_reconfigure_keeping_the_rule_keeps_each_symbols_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Python signal rule over a universe has one object a symbol. Reconfiguring with
    # the rule in force (a promotion that puts a sizing alone in force, a hot reload of
    # the risk limits) made every symbol's a copy of the first symbol's: the second
    # symbol's next decision read the first's state (here its last probability), and
    # turned at bar 301 where the run left alone did not.
    monkeypatch.syspath_prepend(str(FIXTURES))
    path = tmp_path / "turns.yaml"
    path.write_text(STRATEGY)
    alone = _signals(path, tmp_path, "alone", change=False)
    assert [bar for bar, _ in alone if bar > 300], "no signal after the change"
    assert _signals(path, tmp_path, "reconfigured", change=True) == alone


def _member_signals(folder: Path, *, change: bool) -> list[tuple[int, str, int]]:
    portfolio = load_portfolio(folder / "one.yaml")
    pipelines = [build_pipeline(config) for config in portfolio.strategies]
    if change:  # the same rule, sizing and settings put in force again at bar 300's close
        at = pd.Timestamp("2024-01-01T00:00:00Z") + pd.Timedelta(hours=300)
        (pipeline,) = pipelines
        changes = ((at.value, pipeline.signal, pipeline.sizer, pipeline.config),)
        pipelines = [dataclasses.replace(pipeline, signal_rules=changes)]
    out = folder / ("reconfigured" if change else "alone")
    run_portfolio(portfolio, pipelines, load_plugins(), out=out)
    rows = read_rows(out / "journal.sqlite", ["signal"])
    return [(r.bar, r.symbol, r.values["direction"]) for r in rows]


def test_a_member_reconfigured_keeping_the_rule_keeps_each_books_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `AccountEngine.reconfigure_member` (a portfolio member's promotion, replayed by the
    # backtest here): each book decides on its own copy of the member's rule. A change
    # that keeps the rule (a promotion of a sizing alone) gave every book a fresh copy of
    # the member's pipeline's rule, which never saw a bar: each book's state was lost,
    # and no book turned at bar 301 where the run left alone did.
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "turns.yaml").write_text(STRATEGY)
    (tmp_path / "one.yaml").write_text(
        "name: one\ninitial_cash: 10000\nstrategies:\n  - {file: turns.yaml, weight: 1}\n"
    )
    alone = _member_signals(tmp_path, change=False)
    assert [bar for bar, _, _ in alone if bar == 301], "no signal at the bar after the change"
    assert _member_signals(tmp_path, change=True) == alone


def test_a_parity_replay_of_a_swap_keeping_the_rule_keeps_each_symbols_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A swap by hand (or a promotion of a model or a sizing alone) journals
    # ``model_swapped`` with the file's own rule ('' signal): the run keeps its running
    # rule object and each symbol's state (`rule_in_force` builds only a changed
    # section). ``tradeloom parity`` builds every row's rule afresh
    # (`promoted_signal.signal_rules`) and reconfigures with it: each symbol's Python
    # rule starts over at the swap, and the replay's signals differ from the run's.
    monkeypatch.syspath_prepend(str(FIXTURES))
    path = tmp_path / "turns.yaml"
    path.write_text(STRATEGY)
    alone = _signals(path, tmp_path, "alone", change=False)
    config, plugins = load_strategy(path)
    pipeline = build_pipeline(config)
    at = pd.Timestamp("2024-01-01T00:00:00Z") + pd.Timedelta(hours=300)
    changes = signal_rules(config, plugins, [(at.value, "", "")])  # as parity_replay does
    out = tmp_path / "parity"
    run_strategy(dataclasses.replace(pipeline, signal_rules=changes), plugins, out=out)
    replayed = [
        (r.bar, r.values["direction"]) for r in read_rows(out / "journal.sqlite", ["signal"])
    ]
    assert replayed == alone
