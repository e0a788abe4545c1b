"""Health rules: when they fire (edge-triggered, with a cooldown) and how a bad one is refused.

A rule fires at the bar its condition becomes true; again only once the condition has
been false at some bar since (a NaN metric counts as false) and ``cooldown`` bars have
passed since it fired. A rule naming an unknown monitor or metric, a monitor without
metrics, or a ``retrain`` with a model that cannot retrain is refused when the strategy
is built: one line per problem, ``FILE:LINE:COL key.path: message``, exit 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.backtest.run import run_strategy
from tradeloom.cli.main import main
from tradeloom.domain import Bar
from tradeloom.engine.health import HealthRules
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RUN_KINDS, read_rows
from tradeloom.schemas import load_strategy
from tradeloom.schemas.health import HealthRule

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
T0 = pd.Timestamp("2024-01-01T00:00:00Z")


class _Series:
    """A monitor whose metric ``m`` takes the next value of a list at each bar."""

    name = "series"
    metric_names = ("m",)

    def __init__(self) -> None:
        self.value = math.nan

    def on_bar(self, data: Any) -> None:
        return None

    def metrics(self) -> Mapping[str, float]:
        return {"m": self.value}

    def summary(self) -> dict[str, Any]:
        return {}


def _fired(values: list[float], **rule: Any) -> list[int]:
    monitor = _Series()
    rules = HealthRules([HealthRule(metric="series.m", action="warn", **rule)], [monitor])
    fired = []
    for i, value in enumerate(values):
        monitor.value = value
        for action in rules.check(Bar(i, T0, 1, 1, 1, 1, 1)):
            assert (action.rule, action.value, action.metric) == (0, value, "series.m")
            fired.append(i)
    return fired


def test_a_rule_fires_when_its_condition_becomes_true() -> None:
    values = [math.nan, 0.1, 0.5, 0.6, 0.2, 0.7, 0.7, math.nan, 0.8]
    assert _fired(values, above=0.4) == [2, 5, 8]
    assert _fired(values, below=0.4) == [1, 4]


def test_a_cooldown_delays_the_next_firing_until_it_has_passed() -> None:
    values = [math.nan, 0.1, 0.5, 0.6, 0.2, 0.7, 0.7, 0.1, 0.8]
    # 5 is true and re-armed, but only 3 bars after 2; 6 is 4 bars after: it fires
    assert _fired(values, above=0.4, cooldown=4) == [2, 6]
    assert _fired(values, above=0.4, cooldown=100) == [2]


@settings(max_examples=examples(300), deadline=None)
@given(
    values=st.lists(st.sampled_from([math.nan, 0.0, 0.3, 0.5, 0.7, 1.0]), max_size=60),
    threshold=st.sampled_from([0.2, 0.5, 0.8]),
    above=st.booleans(),
    cooldown=st.integers(0, 6),
)
def test_firings_are_exactly_the_edges_the_rule_allows(
    values: list[float], threshold: float, above: bool, cooldown: int
) -> None:
    rule = {"above": threshold} if above else {"below": threshold}
    fired = _fired(values, cooldown=cooldown, **rule)
    true = [(v > threshold) if above else (v < threshold) for v in values]  # NaN: False
    last: int | None = None
    armed = True
    for i, is_true in enumerate(true):
        if not is_true:
            armed = True
            assert i not in fired
            continue
        may = armed and (last is None or i - last >= cooldown)
        assert (i in fired) == may, (i, fired)
        if may:
            last, armed = i, False


# --- validation through the CLI -----------------------------------------------------------


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid strategy with two monitors over 120 bars of bars.csv."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 120)))
    pd.DataFrame(
        {
            "timestamp": [(T0 + pd.Timedelta(hours=i)).isoformat() for i in range(120)],
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 10.0,
            "p_up": rng.random(120),
        }
    ).to_csv(tmp_path / "bars.csv", index=False)
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: rules\n"
        "plugins: [scripted_monitor]\n"
        "data: {kind: csv, path: bars.csv, timeframe: 1h}\n"
        "features: [{kind: log_return}]\n"
        "model: {kind: precomputed, column: p_up}\n"
        "signal: {kind: threshold, threshold: 0.3, sides: long}\n"
        "risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}\n"
        "execution: {kind: simulated}\n"
        "monitoring:\n"
        "  - {kind: calibration, window: 20, min_samples: 20}\n"
        "  - {kind: mute}\n"
        "health:\n"
        "  - {metric: calibration.brier, above: 0.3, action: warn}\n",
        encoding="utf-8",
    )
    return path


def _errors(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    code = main(["validate", str(path), *args])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    return captured.err.splitlines()


def _set_health(path: Path, rules: str) -> None:
    text = path.read_text()
    path.write_text(text[: text.index("health:\n")] + "health:\n" + rules, encoding="utf-8")


@pytest.mark.usefixtures("cli_logging")
def test_the_strategy_of_these_tests_is_valid(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(strategy)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.usefixtures("cli_logging")
def test_unknown_monitors_and_metrics_are_refused_with_a_did_you_mean(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_health(
        strategy,
        "  - {metric: calibraton.brier, above: 0.3, action: warn}\n"
        "  - {metric: calibration.brer, above: 0.3, action: warn}\n"
        "  - {metric: mute.anything, above: 0.3, action: warn}\n",
    )
    assert _errors(strategy, capsys) == [
        f"{strategy}:13:14 health.0.metric: unknown monitor 'calibraton' (did you mean "
        "'calibration'?); monitors: calibration, mute",
        f"{strategy}:14:14 health.1.metric: monitor 'calibration' (kind calibration) has no "
        "metric 'brer' (did you mean 'brier'?); its metrics: brier, ece, bias",
        f"{strategy}:15:14 health.2.metric: monitor 'mute' (kind mute) has no metrics for "
        "health rules",
    ]


@pytest.mark.usefixtures("cli_logging")
def test_retrain_needs_a_model_that_can_retrain(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_health(strategy, "  - {metric: calibration.brier, above: 0.3, action: retrain}\n")
    assert _errors(strategy, capsys) == [
        f"{strategy}:13:53 health.0.action: retrain needs a model that can retrain; model "
        "kind 'precomputed' (plugin 'tradeloom.plugins.model') cannot (use warn or halt)"
    ]


@pytest.mark.usefixtures("cli_logging")
def test_the_shape_of_a_rule_is_checked_with_the_file(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_health(
        strategy,
        "  - {metric: brier, above: 0.3, action: warn}\n"
        "  - {metric: calibration.brier, above: 0.3, below: 0.1, action: warn}\n"
        "  - {metric: calibration.brier, below: 0.1, action: retire, cooldown: -1}\n",
    )
    assert _errors(strategy, capsys) == [
        f"{strategy}:13:14 health.0.metric: expected '<monitor name>.<metric>' such as "
        "'calibration.brier', was 'brier'",
        f"{strategy}:14:5 health.1: set exactly one of above and below, was both",
        f"{strategy}:15:53 health.2.action: expected 'warn', 'retrain' or 'halt', was 'retire'",
        f"{strategy}:15:71 health.2.cooldown: must be >= 0, was -1",
    ]


@pytest.mark.usefixtures("cli_logging")
def test_two_monitors_may_not_share_a_name(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = strategy.read_text().replace(
        "  - {kind: mute}\n", "  - {kind: calibration, name: calibration}\n"
    )
    strategy.write_text(text, encoding="utf-8")
    assert _errors(strategy, capsys) == [
        f"{strategy}:11:31 monitoring.1.name: monitor name 'calibration' is already used by "
        "monitoring.0; set name: to tell them apart"
    ]
    assert main(["validate", str(strategy), "--set", "monitoring.1.name=slow"]) == 0


@pytest.mark.usefixtures("cli_logging")
def test_a_rule_on_a_renamed_monitor_uses_its_name(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = strategy.read_text().replace(
        "  - {kind: mute}\n", "  - {kind: calibration, name: slow, window: 40, min_samples: 40}\n"
    )
    strategy.write_text(text + "  - {metric: slow.ece, above: 0.2, action: warn}\n")
    assert main(["validate", str(strategy)]) == 0
    capsys.readouterr()


# --- a real monitor firing a rule, under both drivers ----------------------------------------


def test_a_calibration_rule_fires_at_the_first_bar_past_its_threshold(
    strategy: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(tmp_path / "bars.csv")
    close = frame["close"].to_numpy()
    p = frame["p_up"].to_numpy()
    up = np.r_[np.zeros(1, bool), close[1:] > close[:-1]].astype(float)  # horizon 1
    brier = [
        np.mean((p[t - 20 : t] - up[t - 19 : t + 1]) ** 2) if t >= 20 else math.nan
        for t in range(len(p))
    ]
    threshold = float(np.nanmedian(brier))
    true = [b > threshold for b in brier]
    expected = [t for t in range(len(true)) if true[t] and not (t > 0 and true[t - 1])]
    _set_health(
        strategy, f"  - {{metric: calibration.brier, above: {threshold!r}, action: warn}}\n"
    )
    journals = []
    for driver in ("auto", "per_bar"):
        config, plugins = load_strategy(strategy, [])
        outcome = run_strategy(
            build_pipeline(config), plugins, out=tmp_path / driver, driver=driver
        )
        rows = [
            (r.bar, r.timestamp, r.kind, r.correlation_id, r.values)
            for r in read_rows(outcome.run_dir / "journal.sqlite")
            if r.kind not in RUN_KINDS
        ]
        fired = [row[0] for row in rows if row[2] == "health_action"]
        assert fired == expected and len(expected) >= 2
        journals.append(rows)
    assert journals[0] == journals[1]
