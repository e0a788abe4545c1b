"""Monitors and health rules over a universe: each symbol watched as if it ran alone.

Three seeded markets (the test plugin ``universe_data``: one listed late, one with a
gap) and their ``p_up`` probabilities (a ``precomputed`` model). Each symbol has its own
rolling AUC and its own health rule: its health rows, rule firings and charted AUC are,
to the bit, those of a one-symbol backtest of that symbol's bars and probabilities,
stamped with the symbol. A ``halt`` halts the account (every position closed, every
symbol's signals refused) and names the symbol whose rule fired.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.fixtures.plugins.universe_data import market  # the test plugin's generator
from tradeloom.backtest.run import RunOutcome, run_strategy
from tradeloom.domain import Cancellation, Fill, ModelTraining, Order
from tradeloom.engine.watch import SplitLog
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError
from tradeloom.journal import read_rows
from tradeloom.reporting.monitor_labels import monitor_label, split_column
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT")
ABSENT = {"BBB/USDT": [[0, 39]], "CCC/USDT": [[150, 169]]}
MONITORING = [
    {"kind": "rolling_auc", "window": 40, "min_samples": 20, "warning_below": 0.5,
     "critical_below": 0.45},
]  # fmt: skip
WARN = [{"metric": "rolling_auc.auc", "below": 0.47, "action": "warn", "cooldown": 5}]


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


def _doc(data: dict[str, Any], health: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "watched",
        "seed": 4,
        "plugins": ["universe_data"],
        "data": data,
        "features": [{"kind": "log_return", "period": 1}],
        "model": {"kind": "precomputed", "column": "p_up", "horizon": 2},
        "signal": {"kind": "threshold", "threshold": 0.1, "min_interval": 1},
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.3}},
        "execution": {"kind": "simulated", "initial_cash": 10_000.0, "fee_bps": 10.0},
        "monitoring": MONITORING,
        "health": health,
    }


UNIVERSE = {"kind": "test_universe", "symbols": list(SYMBOLS), "bars": 300, "absent": ABSENT}


def _run(folder: Path, doc: dict[str, Any], driver: str = "auto") -> RunOutcome:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    config, plugins = load_strategy(path, [])
    return run_strategy(build_pipeline(config), plugins, out=folder / "run", driver=driver)  # type: ignore[arg-type]


def _health(outcome: RunOutcome) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every health row and rule firing: its kind, time, symbol and values."""
    return [
        (r.kind, pd.Timestamp(r.timestamp).isoformat(), r.symbol, r.values)
        for r in read_rows(outcome.run_dir / "journal.sqlite", ["health", "health_action"])
    ]


def _alone(folder: Path, s: int, symbol: str) -> RunOutcome:
    """The symbol's own bars and probabilities, backtested as a one-symbol csv."""
    frame = market(4, s, 300, 1.0)
    for first, last in ABSENT.get(symbol, []):
        frame = frame.drop(frame.index[first : last + 1])
    folder.mkdir(parents=True, exist_ok=True)
    frame.reset_index().to_csv(folder / "bars.csv", index=False, float_format="%.17g")
    data = {"kind": "csv", "path": str(folder / "bars.csv"), "symbol": symbol}
    data["validation"] = "repair"  # keeps a gap (the universe has CCC/USDT's)
    return _run(folder, {**_doc(data, WARN), "plugins": []})


def test_each_symbol_is_watched_as_its_own_one_symbol_run(tmp_path: Path) -> None:
    universe = _run(tmp_path / "universe", _doc(UNIVERSE, WARN))
    rows = _health(universe)
    monitoring = pd.read_parquet(universe.run_dir / "monitoring.parquet")
    metrics = json.loads((universe.run_dir / "metrics.json").read_text())
    for s, symbol in enumerate(SYMBOLS):
        alone = _alone(tmp_path / f"alone{s}", s, symbol)
        own = [(kind, t, symbol, v) for kind, t, mark, v in _health(alone) if mark == ""]
        assert len(own) == len(_health(alone))  # one market's rows carry no symbol
        assert [r for r in rows if r[2] == symbol] == own
        assert sum(1 for r in own if r[0] == "health_action") >= 2, symbol
        # its charted AUC, bar by bar over its own bars
        label = monitor_label("rolling_auc", symbol)
        theirs = pd.read_parquet(alone.run_dir / "monitoring.parquet").set_index("timestamp")
        mine = monitoring.set_index("timestamp")[f"{label}.auc"].dropna()
        expected = theirs["rolling_auc.auc"].dropna()
        assert list(mine.index.as_unit("ns")) == list(expected.index.as_unit("ns"))
        assert mine.to_numpy().tolist() == expected.to_numpy().tolist()
        one = json.loads((alone.run_dir / "metrics.json").read_text())
        assert metrics["monitoring"][label] == one["monitoring"]["rolling_auc"]
    assert {r[2] for r in rows} == set(SYMBOLS)
    actions = [r for r in rows if r[0] == "health_action"]
    assert metrics["health_actions"][0]["fired"] == len(actions)


def test_the_drivers_journal_the_same_per_symbol_health(tmp_path: Path) -> None:
    batch = _run(tmp_path / "batch", _doc(UNIVERSE, WARN), "batch")
    per_bar = _run(tmp_path / "per_bar", _doc(UNIVERSE, WARN), "per_bar")
    assert _health(batch) == _health(per_bar) and _health(batch)


def test_a_symbols_halt_halts_the_account_and_names_the_symbol(tmp_path: Path) -> None:
    halt = [{"metric": "rolling_auc.auc", "below": 0.47, "action": "halt"}]
    outcome = _run(tmp_path, _doc(UNIVERSE, WARN + halt))
    journal = outcome.run_dir / "journal.sqlite"
    fired = [
        (r.bar, r.symbol)
        for r in read_rows(journal, ["health_action"])
        if r.values["action"] == "halt"
    ]
    assert len(fired) == 1  # once halted, no symbol's halt rule fires again
    bar, symbol = fired[0]
    halts = [(r.bar, r.values["code"], r.values["message"]) for r in read_rows(journal, ["halt"])]
    assert len(halts) == 1 and halts[0][:2] == (bar, "HEALTH_HALT")
    assert halts[0][2].endswith(f" on {symbol}")
    # every symbol's later signals are refused, and every position is closed
    later = [r for r in read_rows(journal, ["order"]) if r.bar > bar]
    assert {r.values["reason"] for r in later} <= {"EXIT_HALT"}
    refused = {r.symbol for r in read_rows(journal, ["rejection"]) if r.bar > bar}
    assert refused == set(SYMBOLS)
    assert list(outcome.result.positions[-1]) == [0.0, 0.0, 0.0]
    # warn rules keep watching every symbol after the halt
    warned = {r.symbol for r in read_rows(journal, ["health_action"]) if r.bar > bar + 5}
    assert warned == set(SYMBOLS)


def test_a_retrain_rule_over_a_universe_is_refused(tmp_path: Path) -> None:
    retrain = [{"metric": "rolling_auc.auc", "below": 0.47, "action": "retrain"}]
    doc = _doc(UNIVERSE, retrain)
    doc["model"] = {
        "kind": "sklearn",
        "estimator": "sklearn.linear_model.LogisticRegression",
        "label": {"horizon": 2},
        "walk_forward": {"train_window": 100, "retrain_every": 50},
        "pooling": "pooled",
    }
    with pytest.raises(ConfigError) as caught:
        _run(tmp_path, doc)
    path = tmp_path / "strategy.yaml"
    line = path.read_text().splitlines().index("  action: retrain") + 1
    assert caught.value.lines() == [
        f"{path}:{line}:11 health.0.action: retrain over a universe of 3 symbols is not "
        "supported yet; use warn or halt"
    ]


def _order(i: int) -> Order:
    return Order(f"o{i}", i, pd.Timestamp(0, tz="UTC"), 1, 1.0, "ENTRY", 1.0)


class _Log:
    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.cancellations: list[Cancellation] = []
        self.trainings: list[ModelTraining] = []


def test_each_symbol_sees_only_its_own_orders_fills_and_cancellations() -> None:
    log = _Log()
    rows = {"o0": 1, "o1": 0, "o2": 1}
    split = SplitLog(log, 2, rows.__getitem__)
    log.orders += [_order(0), _order(1)]
    t = pd.Timestamp(0, tz="UTC")
    log.fills.append(Fill("o0", 1, t, 1, 1.0, 1.0, 0.0, 0.0))
    assert [o.id for o in split.logs[1].orders] == ["o0"]
    assert [o.id for o in split.logs[0].orders] == ["o1"]
    log.orders.append(_order(2))
    log.cancellations.append(Cancellation("o1", 2, t, 1.0, "REPLACED"))
    assert [o.id for o in split.logs[1].orders] == ["o0", "o2"]
    assert [f.order_id for f in split.logs[1].fills] == ["o0"] and not split.logs[0].fills
    assert [c.order_id for c in split.logs[0].cancellations] == ["o1"]
    assert split.logs[0].trainings is log.trainings


def test_a_monitor_column_reads_back_its_name_symbol_and_metric() -> None:
    assert split_column("rolling_auc.auc") == ("rolling_auc", "", "auc")
    assert split_column(f"{monitor_label('drift', 'BRK.B')}.psi.rsi_14") == (
        "drift",
        "BRK.B",
        "psi.rsi_14",
    )
    assert monitor_label("rolling_auc", "") == "rolling_auc"
