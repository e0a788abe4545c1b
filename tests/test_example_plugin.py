"""The example third-party plugin (examples/tradeloom-example-plugin), as a user meets it.

Unit tests import it from its source folder. The end-to-end tests (marked slow) install
it with pip, as a plugin author would, and drive the real ``tradeloom`` command: entry-
point discovery, ``plugins``, ``validate`` and ``run``, and the journal of that run; and
``check-lookahead``, which passes the example strategy and catches the package's
deliberately leaky ``future_return`` feature in ``examples/leaky_strategy.yaml``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
from pydantic import ValidationError
from structlog.testing import capture_logs

from tradeloom.domain import Bar, Bars, Halt, OrderIntent, PortfolioView, Rejection, RunInfo
from tradeloom.errors import ConfigError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.manager import load_plugins
from tradeloom.plugins.protocols import Feature, RiskContext, RiskRule
from tradeloom.runner.journal import journal_digest, read_journal

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = ROOT / "examples" / "tradeloom-example-plugin"
STRATEGY = "examples/example_strategy.yaml"  # relative to ROOT, as a user types it
LEAKY_STRATEGY = "examples/leaky_strategy.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
DISTRIBUTION = "tradeloom-example-plugin"
PLUGIN_MODULE = "tradeloom_example.plugin"


@pytest.fixture(autouse=True)
def example_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Import the example package from its source folder, installed or not."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))


def _bars(n: int = 400, seed: int = 3, flat: tuple[int, int] | None = (50, 60)) -> Bars:
    """Return consistent random OHLCV bars; ``flat`` bars have high == low == close."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.005, n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.005, n))
    if flat is not None:
        start, end = flat
        open_[start:end] = high[start:end] = low[start:end] = close[start:end] = close[start]
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": rng.uniform(1, 9, n)},
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp"),
    )
    return Bars(frame=frame, symbol="BTC/USDT", timeframe="1h", timeframe_seconds=3600)


def _reference_range_position(bars: Bars, window: int, min_periods: int) -> np.ndarray:
    """The definition, one bar at a time: only bars t - window + 1 .. t are read."""
    high = bars.frame["high"].to_list()
    low = bars.frame["low"].to_list()
    close = bars.frame["close"].to_list()
    out = []
    for t in range(len(close)):
        first = max(0, t - window + 1)
        if t - first + 1 < min_periods:
            out.append(math.nan)
            continue
        lowest, highest = min(low[first : t + 1]), max(high[first : t + 1])
        span = highest - lowest
        out.append((close[t] - lowest) / span if span > 0 else math.nan)
    return np.array(out)


def _feature(**keys: Any) -> Any:
    from tradeloom_example import range_position

    params = range_position.RangePositionParams(**keys)
    return range_position.build(params, _context())


def _context(columns: Sequence[str] = ("log_return_1", "volatility_24")) -> BuildContext:
    return BuildContext(
        strategy_name="demo", strategy_dir=ROOT, seed=1, feature_columns=tuple(columns)
    )


# -- the feature: range_position ------------------------------------------------------------


@pytest.mark.parametrize(("window", "min_periods"), [(2, None), (5, None), (48, None), (20, 5)])
def test_range_position_matches_a_plain_loop(window: int, min_periods: int | None) -> None:
    bars = _bars()
    feature = _feature(window=window, min_periods=min_periods)

    out = feature.compute(bars, pd.DataFrame(index=bars.frame.index))

    assert isinstance(feature, Feature)
    assert list(out.columns) == feature.columns() == [f"range_position_{window}"]
    assert out.index.equals(bars.frame.index)
    assert out.dtypes.iloc[0] == np.float64
    expected = _reference_range_position(bars, window, min_periods or window)
    np.testing.assert_allclose(out.iloc[:, 0].to_numpy(), expected, rtol=1e-12, equal_nan=True)


def test_range_position_is_in_0_1_and_nan_only_in_warm_up_and_flat_ranges() -> None:
    bars = _bars(flat=(50, 60))
    values = _feature(window=5).compute(bars, pd.DataFrame()).iloc[:, 0].to_numpy()

    known = ~np.isnan(values)
    assert ((values[known] >= 0.0) & (values[known] <= 1.0)).all()
    nan_rows = set(np.flatnonzero(~known))
    # Rows 0..3 lack bars; rows 54..59 see only the flat bars 50..59 (an empty range).
    assert nan_rows == {0, 1, 2, 3, 54, 55, 56, 57, 58, 59}


@pytest.mark.parametrize("cut", [0, 1, 47, 48, 200, 398])
def test_range_position_at_t_does_not_move_when_the_future_changes(cut: int) -> None:
    bars = _bars(flat=None)
    feature = _feature(window=48)
    before = feature.compute(bars, pd.DataFrame()).iloc[:, 0].to_numpy()

    changed = bars.frame.copy()
    future = _bars(seed=99, flat=None).frame.iloc[cut + 1 :]
    changed.iloc[cut + 1 :] = future.to_numpy() * 1.7
    after = feature.compute(Bars(changed, "BTC/USDT", "1h", 3600), pd.DataFrame())
    # What a live run sees at bar `cut`: the bars up to it and nothing else.
    live = feature.compute(Bars(bars.frame.iloc[: cut + 1], "BTC/USDT", "1h", 3600), pd.DataFrame())

    np.testing.assert_array_equal(after.iloc[: cut + 1, 0].to_numpy(), before[: cut + 1])
    np.testing.assert_array_equal(live.iloc[:, 0].to_numpy(), before[: cut + 1])
    assert not np.array_equal(after.iloc[cut + 1 :, 0].to_numpy(), before[cut + 1 :])


def test_range_position_column_can_be_renamed() -> None:
    assert _feature(window=24, name="rp_day").columns() == ["rp_day"]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"window": 1}, "Input should be greater than or equal to 2"),
        ({"window": 10, "min_periods": 0}, "Input should be greater than or equal to 1"),
        (
            {"window": 48, "min_periods": 60},
            "Value error, min_periods must be <= window (48), was 60",
        ),
        ({"window": 10, "windows": 12}, "Extra inputs are not permitted"),
    ],
)
def test_range_position_params_refuse_bad_keys(keys: dict[str, Any], message: str) -> None:
    from tradeloom_example.range_position import RangePositionParams

    with pytest.raises(ValidationError) as caught:
        RangePositionParams(**keys)

    assert [e["msg"] for e in caught.value.errors()] == [message]


# -- the leaky feature: future_return ---------------------------------------------------------


def test_future_return_reads_the_next_bars_on_purpose() -> None:
    from tradeloom_example import future_return

    bars = _bars(flat=None)
    close = bars.frame["close"].to_numpy()
    feature = future_return.build(future_return.FutureReturnParams(period=2), _context())

    out = feature.compute(bars, pd.DataFrame(index=bars.frame.index))

    assert isinstance(feature, Feature)
    assert list(out.columns) == feature.columns() == ["future_return_2"]
    expected = np.r_[np.log(close[2:] / close[:-2]), np.nan, np.nan]
    np.testing.assert_allclose(out["future_return_2"].to_numpy(), expected, rtol=1e-12)
    # the leak itself: dropping the bars after t moves the value at t
    cut = feature.compute(Bars(bars.frame.iloc[:201], "BTC/USDT", "1h", 3600), pd.DataFrame())
    assert math.isnan(cut["future_return_2"].iloc[200]) and not math.isnan(expected[200])


# -- the risk rule: max_volatility ----------------------------------------------------------

_TS = pd.Timestamp("2024-03-01T04:00:00Z")


def _rule(limit: float = 0.8) -> Any:
    from tradeloom_example import max_volatility

    params = max_volatility.MaxVolatilityParams(feature="volatility_24", limit=limit)
    return max_volatility.build(params, _context())


def _risk_context(volatility: float) -> RiskContext:
    bar = Bar(120, _TS, 100.0, 101.0, 99.0, 100.5, 10.0)
    view = PortfolioView(cash=1e5, position=0.0, equity=1e5, peak_equity=1e5, price=100.5)
    features = {"log_return_1": 0.001, "volatility_24": volatility}
    return RiskContext(bar=bar, portfolio=view, features=features, probability=0.7)


def _intent(increases: bool = True) -> OrderIntent:
    return OrderIntent(
        bar=120,
        timestamp=_TS,
        direction=1 if increases else 0,
        target_fraction=0.1 if increases else 0.0,
        reason="ENTRY" if increases else "EXIT_SIGNAL",
        increases_exposure=increases,
        probability=0.7,
    )


def test_max_volatility_rejects_new_exposure_above_the_limit_with_code_and_values() -> None:
    rule = _rule(limit=0.8)

    rejection = rule.check(_intent(), _risk_context(0.912))

    assert isinstance(rule, RiskRule)
    assert rejection == Rejection(
        bar=120,
        timestamp=_TS,
        code="MAX_VOLATILITY",
        message="volatility_24=0.912 > limit=0.8",
        values={"volatility_24": 0.912, "limit": 0.8},
    )
    assert str(rejection) == "MAX_VOLATILITY: volatility_24=0.912 > limit=0.8"


@pytest.mark.parametrize("volatility", [0.0, 0.5, 0.8])
def test_max_volatility_lets_new_exposure_through_up_to_the_limit(volatility: float) -> None:
    assert _rule(limit=0.8).check(_intent(), _risk_context(volatility)) is None


def test_max_volatility_blocks_while_the_volatility_is_not_known() -> None:
    rejection = _rule(limit=0.8).check(_intent(), _risk_context(math.nan))

    assert rejection is not None
    assert str(rejection) == "MAX_VOLATILITY: volatility_24 is not known yet (NaN), limit=0.8"


def test_max_volatility_never_blocks_an_exit_and_never_halts() -> None:
    rule = _rule(limit=0.8)

    assert rule.check(_intent(increases=False), _risk_context(5.0)) is None
    assert rule.on_bar(_risk_context(5.0)) is None


def test_max_volatility_factory_refuses_a_column_the_strategy_does_not_have() -> None:
    from tradeloom_example import max_volatility

    params = max_volatility.MaxVolatilityParams(feature="volatility_42", limit=0.8)

    with pytest.raises(ParamError) as caught:
        max_volatility.build(params, _context())

    assert caught.value.key == "feature"
    assert caught.value.message == (
        "no feature column 'volatility_42' (did you mean 'volatility_24'?); "
        "columns: log_return_1, volatility_24"
    )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"feature": "volatility_24", "limit": 0}, "Input should be greater than 0"),
        ({"feature": "", "limit": 0.8}, "String should have at least 1 character"),
        ({"limit": 0.8}, "Field required"),
    ],
)
def test_max_volatility_params_refuse_bad_keys(keys: dict[str, Any], message: str) -> None:
    from tradeloom_example.max_volatility import MaxVolatilityParams

    with pytest.raises(ValidationError) as caught:
        MaxVolatilityParams(**keys)

    assert [e["msg"] for e in caught.value.errors()] == [message]


# -- the plugin module and its observers ----------------------------------------------------


def test_the_plugin_module_registers_its_components() -> None:
    plugins = load_plugins([PLUGIN_MODULE], entry_points=False)

    info = plugins.registry.plugins[-1]
    assert (info.name, info.source) == (PLUGIN_MODULE, f"module {PLUGIN_MODULE}")
    assert sorted((c.layer, c.kind) for c in info.components) == [
        ("features", "future_return"),
        ("features", "range_position"),
        ("risk", "max_volatility"),
    ]
    assert all(c.summary for c in info.components)


def test_the_observers_log_and_answer_nothing() -> None:
    plugins = load_plugins([PLUGIN_MODULE], entry_points=False)
    run = RunInfo(run_id="demo-1", strategy="demo", mode="backtest", run_dir="runs/demo-1")
    halt = Halt(bar=10, timestamp=_TS, code="MAX_DRAWDOWN_HALT", message="drawdown=0.1530")

    with capture_logs() as logs:
        halted = plugins.hook.tradeloom_halt(run=run, halt=halt)
        finished = plugins.hook.tradeloom_run_finished(
            run=run, metrics={"rejections": {"MAX_VOLATILITY": 3, "KELLY_NO_EDGE": 5}}
        )

    assert halted == [] and finished == []
    assert logs == [
        {
            "event": "example_halt_seen",
            "log_level": "warning",
            "bar": 10,
            "code": "MAX_DRAWDOWN_HALT",
            "message": "drawdown=0.1530",
        },
        {
            "event": "example_run_finished",
            "log_level": "info",
            "run_id": "demo-1",
            "max_volatility_rejections": 3,
        },
    ]


# -- in-process runs: a bad key, and observers that change nothing ---------------------------


def _load(modules: Sequence[str], overrides: Sequence[str] = (), path: str = STRATEGY) -> Any:
    from tradeloom.schemas import load_strategy

    def plugins_for(listed: Sequence[str]) -> Any:
        return load_plugins([*listed, *modules], entry_points=False)

    return load_strategy(ROOT / path, overrides, load_plugins=plugins_for)


def test_a_column_the_strategy_lacks_is_reported_at_its_key() -> None:
    from tradeloom.runner.wiring import build_pipeline

    config, _ = _load([PLUGIN_MODULE], ["risk.rules.0.feature=volatility_42"])
    with pytest.raises(ConfigError) as caught:
        build_pipeline(config)

    assert caught.value.lines() == [
        "--set risk.rules.0.feature: no feature column 'volatility_42' (did you mean "
        "'volatility_24'?); columns: log_return_1, rsi_14, volatility_24, range_position_48"
    ]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.slow
def test_observers_see_every_event_of_a_run_and_change_no_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    from tradeloom.runner.run import run_strategy
    from tradeloom.runner.wiring import build_pipeline

    monkeypatch.syspath_prepend(str(FIXTURES))
    import recording_observer

    recording_observer.CALLS.clear()
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # quiet
    outcomes = {}
    for label, modules in [
        ("plain", [PLUGIN_MODULE]),
        ("observed", [PLUGIN_MODULE, "recording_observer"]),
    ]:
        config, plugins = _load(modules)
        outcomes[label] = run_strategy(build_pipeline(config), plugins, out=tmp_path / label)
    calls = list(recording_observer.CALLS)
    recording_observer.CALLS.clear()

    plain, observed = outcomes["plain"].run_dir, outcomes["observed"].run_dir
    assert journal_digest(plain / "journal.sqlite") == journal_digest(observed / "journal.sqlite")
    assert (plain / "trades.csv").read_bytes() == (observed / "trades.csv").read_bytes()

    # Every journaled event reached the observer once, in journal order.
    hook_of = {
        "signal": ("tradeloom_signal", "signal"),
        "order": ("tradeloom_order", "order"),
        "fill": ("tradeloom_fill", "fill"),
        "halt": ("tradeloom_halt", "halt"),
        "model_trained": ("tradeloom_model_trained", "training"),
        "health": ("tradeloom_health_changed", "change"),
    }
    argument_of = dict(hook_of.values())
    expected = []
    for _, bar, _, kind, _, payload in read_journal(observed / "journal.sqlite"):
        data = json.loads(payload)
        if kind in hook_of:
            expected.append((hook_of[kind][0], bar))
        elif kind == "risk_decision" and data["outcome"] == "rejected":
            expected.append(("tradeloom_risk_rejection", data["code"]))
    seen = []
    for name, kwargs in calls[2:-1]:
        if name == "tradeloom_risk_rejection":
            seen.append((name, kwargs["rejection"].code))
        elif name == "tradeloom_model_trained":
            seen.append((name, kwargs["training"].predict_start))
        else:
            seen.append((name, kwargs[argument_of[name]].bar))
    assert [name for name, _ in calls[:2]] == ["tradeloom_components", "tradeloom_run_started"]
    assert seen == expected
    assert {"tradeloom_signal", "tradeloom_order", "tradeloom_fill"} <= {n for n, _ in seen}
    assert ("tradeloom_risk_rejection", "MAX_VOLATILITY") in seen
    name, kwargs = calls[-1]
    assert name == "tradeloom_run_finished"
    assert kwargs["run"].run_dir == str(observed)
    written = json.loads((observed / "metrics.json").read_text())
    assert kwargs["metrics"]["rejections"] == written["rejections"]


# -- end to end: installed with pip, driven through the real command -------------------------


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _is_installed() -> bool:
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _editable_build_problem() -> str | None:
    # Without build isolation pip uses this environment's setuptools; before 70.1 it
    # builds the editable wheel with the separate `wheel` package.
    version = importlib.metadata.version("setuptools")
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    if (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None:
        return None
    return (
        "cannot install the example plugin without build isolation: setuptools "
        f"{version} builds editable wheels with the 'wheel' package, which is not "
        "installed; tradeloom's test extra must list 'wheel' (then pip install -e '.[test]')"
    )


@pytest.fixture(scope="module")
def installed_example() -> Iterator[None]:
    """Install the example package with pip for this module's tests, then uninstall it.

    A package installed before the tests ran is left as it was. Module scope keeps the
    entry point visible only while these tests run.
    """
    if _is_installed():
        yield
        return
    problem = _editable_build_problem()
    if problem is not None:
        pytest.fail(problem)
    left_before = {p.name for p in EXAMPLE_DIR.iterdir()}
    result = _pip("install", "--no-build-isolation", "--no-deps", "-e", str(EXAMPLE_DIR))
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield
    finally:
        result = _pip("uninstall", "-y", DISTRIBUTION)
        # The build leaves its metadata (and perhaps build/) in the source folder.
        for path in EXAMPLE_DIR.iterdir():
            if path.name not in left_before and path.is_dir():
                shutil.rmtree(path)
        assert result.returncode == 0, result.stdout + result.stderr


def _tradeloom(*args: str) -> subprocess.CompletedProcess[str]:
    script = shutil.which("tradeloom", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "tradeloom.runner.cli"]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_tradeloom_plugins_lists_the_installed_package_and_its_components(
    installed_example: None,
) -> None:
    result = _tradeloom("plugins")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = "example  [distribution tradeloom-example-plugin 0.1.0 (entry point example)]"
    assert header in lines
    at = lines.index(header)
    assert [line.split()[:2] for line in lines[at + 1 : at + 4]] == [
        ["features", "future_return"],
        ["features", "range_position"],
        ["risk", "max_volatility"],
    ]


@pytest.mark.slow
def test_tradeloom_validate_accepts_the_example_strategy(installed_example: None) -> None:
    result = _tradeloom("validate", STRATEGY)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{STRATEGY}: valid strategy 'example_plugin' (")
    assert "4 feature columns" in result.stdout
    assert "2 risk rules" in result.stdout


@pytest.mark.slow
def test_tradeloom_validate_reports_a_missing_feature_column_in_one_line(
    installed_example: None,
) -> None:
    result = _tradeloom("validate", STRATEGY, "--set", "risk.rules.0.feature=volatility_42")

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "--set risk.rules.0.feature: no feature column 'volatility_42' (did you mean "
        "'volatility_24'?); columns: log_return_1, rsi_14, volatility_24, range_position_48"
    ]


@pytest.mark.slow
def test_tradeloom_run_uses_the_plugin_and_journals_its_rejections(
    installed_example: None, tmp_path: Path
) -> None:
    out = tmp_path / "run"

    result = _tradeloom("--log-level", "info", "run", STRATEGY, "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tradeloom backtest: example_plugin\n")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "example_plugin"
    assert metrics["bars"] == 6000

    db = sqlite3.connect(f"file:{out / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        columns = [row[1] for row in db.execute("PRAGMA table_info(events)")]
        rows = db.execute(
            "SELECT payload FROM events WHERE type = 'risk_decision' ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    assert columns == ["seq", "bar", "ts", "type", "correlation_id", "payload"]
    rejected = [
        p for p in map(json.loads, (r[0] for r in rows)) if p.get("code") == "MAX_VOLATILITY"
    ]
    assert rejected, "the limit is set so that max_volatility rejects some entries"
    for payload in rejected:
        assert payload["outcome"] == "rejected"
        value = payload["values"]["volatility_24"]
        assert value > 0.8 and payload["values"]["limit"] == 0.8
        assert re.fullmatch(r"volatility_24=\d+\.\d+ > limit=0\.8", payload["message"])
    assert metrics["rejections"]["MAX_VOLATILITY"] == len(rejected)

    # The package's observer ran, and saw the same count.
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    finished = [e for e in events if e.get("event") == "example_run_finished"]
    assert [e["max_volatility_rejections"] for e in finished] == [len(rejected)]


@pytest.mark.slow
def test_tradeloom_run_runs_the_leaky_strategy_too_well(
    installed_example: None, tmp_path: Path
) -> None:
    out = tmp_path / "leaky"

    result = _tradeloom("run", LEAKY_STRATEGY, "--out", str(out))

    # valid, and it runs: the leak is not an error a validator could see
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tradeloom backtest: leaky_example\n")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["bars"] == 3000 and metrics["trades"] > 0
    # what the leak buys in a backtest: a model that knows the next bar
    assert metrics["auc"] > 0.9


@pytest.mark.slow
def test_tradeloom_check_lookahead_passes_the_example_strategy(installed_example: None) -> None:
    result = _tradeloom("check-lookahead", STRATEGY)

    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 8
    assert all(line.endswith("unchanged") for line in lines[1:-1])
    # 4 features, the model, the signal, the sizing, 2 risk rules, the venue
    assert lines[-1] == "no look-ahead found (3 cut points, 10 components)"


@pytest.mark.slow
def test_tradeloom_check_lookahead_names_the_leaky_feature(installed_example: None) -> None:
    result = _tradeloom("check-lookahead", LEAKY_STRATEGY)

    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    first, finding = result.stdout.splitlines()
    cuts = re.fullmatch(
        r"reference: 3,000 bars, first prediction at bar \d+; cut points (\d+), \d+, \d+", first
    )
    assert cuts is not None, first
    t = int(cuts.group(1))
    # the value the leak read: the next bar's close, which truncation removed
    config, _ = _load([PLUGIN_MODULE], path=LEAKY_STRATEGY)
    from tradeloom.runner.wiring import build_pipeline

    bars = build_pipeline(config).data.load()
    close = bars.frame["close"].to_numpy()
    when = bars.frame.index[t].strftime("%Y-%m-%dT%H:%MZ")
    assert finding == (
        f"look-ahead: features.2 (kind future_return, plugin example) column future_return_1 "
        f"at bar {t} ({when}) changed from {math.log(close[t + 1] / close[t]):.6g} to nan "
        f"when bars after {t} were truncated"
    )
