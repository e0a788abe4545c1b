"""The regime filter and the anomaly gate, through both drivers and the real CLI.

A signal on a bar whose regime is none of ``signal.regimes`` is journaled (the signal,
then a ``filtered`` risk decision with the bar's labels) and changes nothing: no
entry, no exit. Regime changes are journaled when a regime section or filter is
configured. On a bar the model's anomaly detector flags, entries and reversals are
rejected with ``ANOMALY`` and the score; exits still go through.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import tradeloom.backtest.pipeline
from tests import forkserver
from tradeloom.backtest.run import RunOutcome, run_strategy
from tradeloom.diagnostics.lookahead import check_lookahead
from tradeloom.engine.regime import (
    RegimeParams,
    regime_codes,
    trend_label,
    volatility_label,
)
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RUN_KINDS, read_rows
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas import load_strategy, strategy_json_schema

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
START = pd.Timestamp("2024-01-01T00:00:00Z")
SMALL = {
    "trend_window": 4,
    "trend_threshold": 0.5,
    "volatility_window": 3,
    "volatility_lookback": 5,
}
"""Windows that label the 60 bars of `_climb_zigzag_climb` from its first few on."""


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make flagged_model (probabilities and anomaly scores from columns) importable."""
    monkeypatch.syspath_prepend(str(FIXTURES))


@pytest.fixture(params=["auto", "per_bar"])
def driver(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every behaviour holds under the batch driver (auto) and the per-bar driver."""
    yield request.param


def _climb_zigzag_climb() -> np.ndarray:
    """20 rising bars (trending), 20 zigzag bars (ranging), 20 rising bars (trending)."""
    moves = np.r_[np.full(20, 0.01), np.tile([0.01, -0.01], 10), np.full(20, 0.01)]
    return 100.0 * np.exp(np.cumsum(moves))


def _write(
    folder: Path,
    close: np.ndarray,
    p_up: dict[int, float],
    *,
    anomaly: dict[int, float] | None = None,
    signal: dict[str, Any] | None = None,
    regime: dict[str, Any] | None = None,
    allow_short: bool = False,
) -> Path:
    n = len(close)
    frame = pd.DataFrame(
        {
            "timestamp": [(START + pd.Timedelta(hours=i)).isoformat() for i in range(n)],
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 1000.0,
            "p_up": [p_up.get(t, 0.5) for t in range(n)],
            "anomaly": [(anomaly or {}).get(t, 0.2) for t in range(n)],
        }
    )
    frame.to_csv(folder / "bars.csv", index=False, float_format="%.17g")
    doc: dict[str, Any] = {
        "name": "gate",
        "data": {"kind": "csv", "path": "bars.csv"},
        "features": [{"kind": "log_return", "period": 1}],
        "model": {"kind": "precomputed", "column": "p_up"},
        "signal": {"kind": "threshold", "threshold": 0.5, **(signal or {})},
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.5}},
        "execution": {
            "kind": "simulated",
            "initial_cash": 10_000.0,
            "fill": "close",
            "allow_short": allow_short,
        },
    }
    if anomaly is not None:
        doc["plugins"] = ["flagged_model"]
        doc["model"] = {"kind": "flagged", "column": "p_up", "anomaly_column": "anomaly"}
    if regime is not None:
        doc["regime"] = regime
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _run(path: Path, driver: str) -> RunOutcome:
    config, plugins = load_strategy(path, [])
    out = path.parent / f"run-{driver}"
    return run_strategy(build_pipeline(config), plugins, out=out, driver=driver)  # type: ignore[arg-type]


def _rows(outcome: RunOutcome) -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (r.kind, r.bar, r.values)
        for r in read_rows(outcome.run_dir / "journal.sqlite")
        if r.kind not in RUN_KINDS | {"data_loaded"}
    ]


def _decisions(rows: list[tuple[str, int, dict[str, Any]]]) -> dict[int, dict[str, Any]]:
    return {
        bar: {"outcome": "rejected", **payload} if kind == "rejection" else payload
        for kind, bar, payload in rows
        if kind in ("risk_decision", "rejection")
    }


def _orders(rows: list[tuple[str, int, dict[str, Any]]]) -> dict[int, str]:
    return {bar: payload["reason"] for kind, bar, payload in rows if kind == "order"}


# --- the regime filter -------------------------------------------------------------------


def test_a_signal_outside_the_listed_regimes_changes_nothing(tmp_path: Path, driver: str) -> None:
    # long at 2 (warm-up: unknown), long at 10 (trending), short at 30 (ranging), short at 45
    signals = {2: 0.9, 10: 0.9, 30: 0.1, 45: 0.1}
    path = _write(
        tmp_path,
        _climb_zigzag_climb(),
        signals,
        signal={"regimes": ["trending"]},
        regime=SMALL,
    )
    outcome = _run(path, driver)
    rows = _rows(outcome)
    volatility = volatility_label(regime_codes(_climb_zigzag_climb(), RegimeParams(**SMALL))[30])
    assert [bar for kind, bar, _ in rows if kind == "signal"] == [2, 10, 30, 45]
    decisions = _decisions(rows)
    assert decisions[2] == {
        "outcome": "filtered",
        "target_fraction": None,  # NaN: not accepted
        "reason": "regime (unknown, unknown) is none of signal.regimes (trending)",
        "trend": "unknown",
        "volatility": "unknown",
    }
    assert decisions[10]["outcome"] == "accepted"
    assert decisions[30] == {
        "outcome": "filtered",
        "target_fraction": None,  # NaN: not accepted
        "reason": f"regime (ranging, {volatility}) is none of signal.regimes (trending)",
        "trend": "ranging",
        "volatility": volatility,
    }
    # the short signal at 30 did not close the long: only the one at 45, in a trend, did
    assert _orders(rows) == {10: "ENTRY", 45: "EXIT_SIGNAL"}
    position = outcome.result.equity["position"].to_numpy()
    assert (position[10:45] > 0).all() and position[45] == 0.0 and not position[:10].any()


def test_a_bar_passes_when_any_of_its_labels_is_listed(tmp_path: Path, driver: str) -> None:
    close = _climb_zigzag_climb()
    code = regime_codes(close, RegimeParams(**SMALL))[30]
    volatility = volatility_label(code)
    assert trend_label(code) == "ranging" and volatility != "unknown"
    path = _write(
        tmp_path,
        close,
        {30: 0.9},
        signal={"regimes": ["trending", volatility]},
        regime=SMALL,
    )
    rows = _rows(_run(path, driver))
    assert _decisions(rows)[30]["outcome"] == "accepted"
    assert _orders(rows) == {30: "ENTRY"}


def test_regime_changes_are_journaled_where_the_labels_change(tmp_path: Path, driver: str) -> None:
    close = _climb_zigzag_climb()
    path = _write(tmp_path, close, {}, regime=SMALL)
    rows = _rows(_run(path, driver))
    codes = regime_codes(close, RegimeParams(**SMALL)).tolist()
    changed = [t for t in range(len(codes)) if codes[t] != (codes[t - 1] if t else 0)]
    journaled = [(bar, payload) for kind, bar, payload in rows if kind == "regime_changed"]
    assert [bar for bar, _ in journaled] == changed
    assert len(changed) >= 3  # trend known, then ranging, then trending again at least
    for bar, payload in journaled:
        before = codes[bar - 1] if bar else 0
        assert payload == {
            "trend": trend_label(codes[bar]),
            "volatility": volatility_label(codes[bar]),
            "previous_trend": trend_label(before),
            "previous_volatility": volatility_label(before),
        }


def test_no_regime_rows_without_a_regime_section_or_filter(tmp_path: Path, driver: str) -> None:
    path = _write(tmp_path, _climb_zigzag_climb(), {10: 0.9, 30: 0.1})
    config, _ = load_strategy(path, [])
    assert (config.regime, config.signal_regimes) == (None, ())
    rows = _rows(_run(path, driver))
    assert not [row for row in rows if row[0] == "regime_changed"]
    assert _orders(rows) == {10: "ENTRY", 30: "EXIT_SIGNAL"}


def test_signal_regimes_alone_labels_with_the_defaults(tmp_path: Path, driver: str) -> None:
    rng = np.random.default_rng(5)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 300)))
    path = _write(tmp_path, close, {}, signal={"regimes": ["ranging"]})
    config, _ = load_strategy(path, [])
    assert config.regime == RegimeParams()
    assert config.signal_regimes == ("ranging",)
    rows = _rows(_run(path, driver))
    first = next(bar for kind, bar, _ in rows if kind == "regime_changed")
    assert first == RegimeParams().trend_window  # the default window's first known label


# --- the anomaly gate --------------------------------------------------------------------


def test_the_gate_blocks_entries_and_reversals_but_not_exits(tmp_path: Path, driver: str) -> None:
    close = 100.0 + np.arange(30.0)
    # 5: a long entry on an anomalous bar -> rejected; 8: the same, on a normal bar -> in;
    # 12 and 20: a short signal while long, on an anomalous bar -> the reversal is
    # refused, its exit part is made; 16: a long entry on a normal bar -> in
    p_up = {5: 0.9, 8: 0.9, 12: 0.1, 16: 0.9, 20: 0.1}
    anomaly = {5: -0.25, 12: -0.125, 20: -0.5}
    path = _write(tmp_path, close, p_up, anomaly=anomaly, allow_short=True)
    rows = _rows(_run(path, driver))
    decisions = _decisions(rows)
    assert decisions[5] == {
        "outcome": "rejected",
        "code": "ANOMALY",
        "message": "anomaly_score=-0.2500 < 0: the bar is unlike the model's training rows",
        "values": {"anomaly_score": -0.25},
        "purpose": "ENTRY",
    }
    assert decisions[12]["code"] == "ANOMALY"
    assert decisions[12]["values"] == {"anomaly_score": -0.125}
    assert decisions[20]["code"] == "ANOMALY"
    assert (decisions[12]["purpose"], decisions[20]["purpose"]) == ("REVERSE", "REVERSE")
    assert _orders(rows) == {8: "ENTRY", 12: "EXIT_SIGNAL", 16: "ENTRY", 20: "EXIT_SIGNAL"}
    metrics = json.loads((tmp_path / f"run-{driver}" / "metrics.json").read_text())
    assert metrics["rejections"] == {"ANOMALY": 3}
    # the refused reversals still exited: no exit is counted refused
    assert metrics["refusals"]["rejected"] == {"ANOMALY": {"ENTRY": 1, "REVERSE": 2}}
    assert metrics["exits_refused"] == {}


def test_a_long_only_exit_on_an_anomalous_bar_is_not_even_checked(
    tmp_path: Path, driver: str
) -> None:
    close = 100.0 + np.arange(20.0)
    path = _write(tmp_path, close, {3: 0.9, 9: 0.1}, anomaly={9: -1.0})
    rows = _rows(_run(path, driver))
    assert _orders(rows) == {3: "ENTRY", 9: "EXIT_SIGNAL"}
    assert not [p for k, _, p in rows if k == "rejection" and p.get("code") == "ANOMALY"]


def test_a_filtered_signal_never_reaches_the_gate(tmp_path: Path, driver: str) -> None:
    path = _write(
        tmp_path,
        _climb_zigzag_climb(),
        {30: 0.9},
        anomaly={30: -1.0},
        signal={"regimes": ["trending"]},
        regime=SMALL,
    )
    decisions = _decisions(_rows(_run(path, driver)))
    assert decisions[30]["outcome"] == "filtered"


# --- look-ahead --------------------------------------------------------------------------


def test_check_lookahead_sees_regime_labels_that_peek(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(8)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 200)))
    path = _write(tmp_path, close, {}, regime=SMALL)
    config, _ = load_strategy(path, [])
    assert check_lookahead(config, points=2).finding is None

    def peeking(close: np.ndarray, params: RegimeParams) -> np.ndarray:
        return np.r_[regime_codes(close, params)[1:], 0].astype(np.uint8)  # bar t+1's labels

    monkeypatch.setattr(tradeloom.backtest.pipeline, "regime_codes", peeking)
    finding = check_lookahead(config, points=2).finding
    assert finding is not None
    assert (finding.component, finding.subject) == (
        "the regime labels (regime:)",
        "journal row regime_changed",
    )


# --- the command line --------------------------------------------------------------------


def _tradeloom(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return forkserver.tradeloom(*args, cwd=cwd)


def test_an_unknown_regime_and_a_bad_contamination_exit_2(tmp_path: Path) -> None:
    text = (ROOT / "strategies" / "btc_regime_gate.yaml").read_text(encoding="utf-8")
    text = text.replace("regimes: [trending, high_volatility]", "regimes: [trending, trnding]")
    text = text.replace("contamination: 0.02", "contamination: 0.7")
    text = text.replace("  trend_window: 48", "  trend_windw: 48")
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    proc = _tradeloom("validate", "s.yaml", cwd=tmp_path)
    lines = text.splitlines()
    contamination = next(i for i, x in enumerate(lines) if "contamination" in x) + 1
    regimes = next(i for i, x in enumerate(lines) if "regimes:" in x) + 1
    window = next(i for i, x in enumerate(lines) if "trend_windw" in x) + 1
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [
        f"s.yaml:{contamination}:20 model.anomaly.contamination: expected 'auto' or a number "
        "in (0, 0.5], was 0.7",
        f"s.yaml:{regimes}:23 signal.regimes.1: expected a regime: trending, ranging, "
        "high_volatility or low_volatility, was 'trnding' (did you mean 'trending'?)",
        f"s.yaml:{window}:3 regime.trend_windw: unknown key (did you mean 'trend_window'?)",
    ]


@pytest.mark.slow
def test_the_shipped_strategy_filters_and_gates_through_the_cli(tmp_path: Path) -> None:
    overrides = [
        "data.bars=4000",
        "model.walk_forward.train_window=1000",
        "model.walk_forward.retrain_every=500",
        "regime.volatility_lookback=240",
    ]
    out = tmp_path / "run"
    proc = _tradeloom(
        "run",
        "strategies/btc_regime_gate.yaml",
        "--out",
        out,
        *[a for o in overrides for a in ("--set", o)],
    )
    assert proc.returncode == 0, proc.stderr
    allowed = {"trending", "high_volatility"}
    labels: tuple[str, str] = ("unknown", "unknown")
    counts = {"filtered": 0, "accepted": 0, "ANOMALY": 0, "regime_changed": 0}
    orders: dict[int, list[str]] = {}
    anomalous: list[int] = []
    for row in read_rows(out / "journal.sqlite"):
        bar, kind, payload = row.bar, row.kind, row.values
        if kind == "regime_changed":
            counts["regime_changed"] += 1
            assert (payload["previous_trend"], payload["previous_volatility"]) == labels
            labels = (payload["trend"], payload["volatility"])
        elif kind == "risk_decision" and payload["outcome"] == "filtered":
            counts["filtered"] += 1
            assert (payload["trend"], payload["volatility"]) == labels
            assert not allowed & set(labels)
        elif kind == "risk_decision" and payload["outcome"] == "accepted":
            counts["accepted"] += 1
            assert allowed & set(labels), bar  # decided in a listed regime
        elif kind == "rejection" and payload.get("code") == "ANOMALY":
            counts["ANOMALY"] += 1
            assert payload["values"]["anomaly_score"] < 0
            anomalous.append(bar)
        elif kind == "order":
            orders.setdefault(bar, []).append(payload["reason"])
    assert all(counts.values()), counts
    for bar in anomalous:  # nothing opened on an anomalous bar
        assert not {"ENTRY", "REVERSE"} & set(orders.get(bar, []))


def test_the_editor_schema_accepts_the_regime_keys_and_refuses_a_typo() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = strategy_json_schema(load_plugins().registry)
    path = ROOT / "strategies" / "btc_regime_gate.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    for section, key, value in [
        ("signal", "regimes", ["trendy"]),
        ("regime", "trend_windw", 3),
        ("model", "anomaly", {"contamination": "sometimes"}),
    ]:
        broken = yaml.safe_load(path.read_text(encoding="utf-8"))
        broken[section][key] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
