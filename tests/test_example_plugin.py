"""The example third-party plugin (examples/tradeloom-example-plugin), as a user meets it.

Unit tests import it from its source folder. The end-to-end tests (marked slow) install
it with pip into a throwaway virtual environment, as a plugin's user would, and drive the
real ``tradeloom`` command there: entry-
point discovery, ``plugins``, ``validate`` and ``run``, and the journal of that run; and
``check-lookahead``, which passes the example strategy and catches the package's
deliberately leaky ``future_return`` feature in ``examples/leaky_strategy.yaml``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
from pydantic import ValidationError
from structlog.testing import capture_logs

from tests.plugin_venv import EXAMPLE_GROUP, ExampleCommands, PluginVenv, make_plugin_venv
from tradeloom.domain import Bar, Bars, Halt, OrderIntent, PortfolioView, Rejection, RunInfo
from tradeloom.errors import ConfigError
from tradeloom.journal import journal_digest, read_frame, read_rows
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.manager import load_plugins
from tradeloom.plugins.protocols import Feature, RiskContext, RiskRule

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = ROOT / "examples" / "tradeloom-example-plugin"
STRATEGY = "examples/example_strategy.yaml"  # relative to ROOT, as a user types it
LEAKY_STRATEGY = "examples/leaky_strategy.yaml"
SHORTENED = [
    word
    for setting in (
        "data.bars=1500",
        "model.walk_forward.train_window=500",
        "model.walk_forward.retrain_every=500",
        "model.params.n_estimators=5",
    )
    for word in ("--set", setting)
]
"""The example strategy's check-lookahead, shortened as tests/diagnostics/test_lookahead.py
shortens btc_rf's: every component checked at the same 3 cut points (a leak is a feature
reading later bars, whatever the history's length or the forest's size)."""
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
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


def test_range_position_declares_the_columns_it_reads() -> None:
    """A third-party feature declares what it reads (`tradeloom.plugin.ReadsColumns`), so
    that validation checks it against the data as it checks the built-ins'."""
    from tradeloom.plugin import ReadsColumns

    feature = _feature(window=5)
    assert isinstance(feature, ReadsColumns)
    assert feature.input_columns() == ("high", "low", "close")


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
    from tradeloom.engine.wiring import build_pipeline

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
    from tradeloom.backtest.run import run_strategy
    from tradeloom.engine.wiring import build_pipeline

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
    for row in read_rows(observed / "journal.sqlite"):
        bar, kind, data = row.bar, row.kind, row.values
        if kind in hook_of:
            expected.append((hook_of[kind][0], bar))
        elif kind == "rejection":  # told as a rejection, then as a refusal
            expected.append(("tradeloom_risk_rejection", data["code"]))
            expected.append(("tradeloom_refusal", (data["code"], data["purpose"])))
    seen = []
    for name, kwargs in calls[2:-1]:
        if name == "tradeloom_risk_rejection":
            seen.append((name, kwargs["rejection"].code))
        elif name == "tradeloom_refusal":
            seen.append((name, (kwargs["refusal"].code, kwargs["refusal"].purpose)))
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
#
# In a throwaway virtual environment (tests/plugin_venv.py) that sees this interpreter's
# packages plus the example package installed by pip: the interpreter running the tests
# is never modified. One xdist worker builds it and runs these tests. The example files'
# validate and runs are made once (`example_commands`), and tests/cli/test_cli.py's
# every-shipped-file tests read the same ones.


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_tradeloom_plugins_lists_the_installed_package_and_its_components(
    example_venv: PluginVenv,
) -> None:
    result = example_venv.tradeloom("plugins")

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
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_tradeloom_validate_accepts_the_example_strategy(
    example_commands: ExampleCommands,
) -> None:
    result = example_commands.validate(STRATEGY)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{STRATEGY}: valid strategy 'example_plugin' (")
    assert "4 feature columns" in result.stdout
    assert "2 risk rules" in result.stdout


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_tradeloom_validate_reports_a_missing_feature_column_in_one_line(
    example_venv: PluginVenv,
) -> None:
    result = example_venv.tradeloom(
        "validate", STRATEGY, "--set", "risk.rules.0.feature=volatility_42"
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "--set risk.rules.0.feature: no feature column 'volatility_42' (did you mean "
        "'volatility_24'?); columns: log_return_1, rsi_14, volatility_24, range_position_48"
    ]


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_tradeloom_run_uses_the_plugin_and_journals_its_rejections(
    example_commands: ExampleCommands,
) -> None:
    result, out = example_commands.run(STRATEGY)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tradeloom backtest: example_plugin\n")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "example_plugin"
    assert metrics["bars"] == 6000

    # the reader gives the rejections as typed columns (a backtest's bulk rows are
    # blocks, not table rows: `tradeloom.journal.blocks`); only the values mapping is JSON
    frame = read_frame(out / "journal.sqlite", "rejection")
    columns = list(frame.columns)
    vetoed = frame[frame["code"] == "MAX_VOLATILITY"].sort_values("seq")
    rows = list(zip(vetoed["code"], vetoed["message"], vetoed["values"], strict=True))
    assert columns == [
        "seq", "bar", "timestamp", "symbol", "correlation_id", "code", "message", "values",
        "purpose",
    ]  # fmt: skip
    rejected = [{"code": c, "message": m, "values": v} for c, m, v in rows]
    assert rejected, "the limit is set so that max_volatility rejects some entries"
    # the plugin's rule refused signals: what each asked for is the core's to say
    assert set(vetoed["purpose"]) <= {"ENTRY", "REVERSE", "SCALE_IN"}
    assert metrics["refusals"]["rejected"]["MAX_VOLATILITY"] == (
        vetoed["purpose"].value_counts().to_dict()
    )
    for payload in rejected:
        value = payload["values"]["volatility_24"]
        assert value > 0.8 and payload["values"]["limit"] == 0.8
        assert re.fullmatch(r"volatility_24=\d+\.\d+ > limit=0\.8", payload["message"])
    assert metrics["rejections"]["MAX_VOLATILITY"] == len(rejected)

    # The package's observer ran, and saw the same count.
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    finished = [e for e in events if e.get("event") == "example_run_finished"]
    assert [e["max_volatility_rejections"] for e in finished] == [len(rejected)]


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_tradeloom_run_runs_the_leaky_strategy_too_well(
    example_commands: ExampleCommands,
) -> None:
    result, out = example_commands.run(LEAKY_STRATEGY)

    # valid, and it runs: the leak is not an error a validator could see
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tradeloom backtest: leaky_example\n")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["bars"] == 3000 and metrics["trades"] > 0
    # what the leak buys in a backtest: a model that knows the next bar
    assert metrics["auc"] > 0.9


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_tradeloom_check_lookahead_passes_the_example_strategy(example_venv: PluginVenv) -> None:
    result = example_venv.tradeloom("check-lookahead", STRATEGY, *SHORTENED)

    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 8
    assert all(line.endswith("unchanged") for line in lines[1:-1])
    # 4 features, the model, the signal, the sizing, 2 risk rules, the venue
    assert lines[-1] == "no look-ahead found (3 cut points, 10 components)"


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_tradeloom_check_lookahead_names_the_leaky_feature(example_venv: PluginVenv) -> None:
    result = example_venv.tradeloom("check-lookahead", LEAKY_STRATEGY)

    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    first, finding = result.stdout.splitlines()
    cuts = re.fullmatch(
        r"reference: 3,000 bars, first prediction at bar \d+; cut points (\d+), \d+, \d+", first
    )
    assert cuts is not None, first
    t = int(cuts.group(1))
    # the value the leak read: the next bar's close, which truncation removed
    config, _ = _load([PLUGIN_MODULE], path=LEAKY_STRATEGY)
    from tradeloom.engine.wiring import build_pipeline

    bars = build_pipeline(config).data.load()
    close = bars.frame["close"].to_numpy()
    when = bars.frame.index[t].strftime("%Y-%m-%dT%H:%MZ")
    assert finding == (
        f"look-ahead: features.2 (kind future_return, plugin example) column future_return_1 "
        f"at bar {t} ({when}) changed from {math.log(close[t + 1] / close[t]):.6g} to nan "
        f"when bars after {t} were truncated"
    )


# -- two installed packages with the same kind ------------------------------------------------

OTHER_PACKAGE = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "tradeloom-other-range"
version = "2.0.0"

[project.entry-points.tradeloom]
other = "other_range"
""",
    "other_range.py": '''\
"""Another package with a features kind range_position: a clash with the example's."""

import pandas as pd

from tradeloom.plugin import Component, Params, hookimpl


class OtherParams(Params):
    window: int = 10


class OtherRange:
    def __init__(self, params):
        self.window = params.window

    def columns(self):
        return [f"other_range_{self.window}"]

    def compute(self, bars, features):
        return pd.DataFrame({self.columns()[0]: 0.5}, index=bars.frame.index)


@hookimpl
def tradeloom_components():
    return [
        Component("features", "range_position", OtherParams, lambda p, c: OtherRange(p), "other")
    ]
''',
}


@pytest.fixture(scope="module")
def clash_venv(example_venv: PluginVenv, tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    """The example venv plus a second package that also provides features range_position."""
    folder = tmp_path_factory.mktemp("clash")
    source = folder / "tradeloom-other-range"
    source.mkdir()
    for name, text in OTHER_PACKAGE.items():
        (source / name).write_text(text, encoding="utf-8")
    return make_plugin_venv(
        folder / "venv",
        [source],
        over=[str(example_venv.site_packages), *site_dirs_of(example_venv)],
    )


def site_dirs_of(built: PluginVenv) -> list[str]:
    """The site directories ``built`` layers over (its .pth file names them)."""
    layer = (built.site_packages / "_tradeloom_tests_layer.pth").read_text(encoding="utf-8")
    return re.findall(r"addsitedir\('([^']+)'\)", layer)


EXAMPLE_SOURCE = "distribution tradeloom-example-plugin 0.1.0 (entry point example)"
OTHER_SOURCE = "distribution tradeloom-other-range 2.0.0 (entry point other)"


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_two_packages_with_one_kind_are_both_listed_and_the_clash_is_marked(
    clash_venv: PluginVenv,
) -> None:
    result = clash_venv.tradeloom("plugins")

    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert f"example  [{EXAMPLE_SOURCE}]" in lines and f"other  [{OTHER_SOURCE}]" in lines
    marked = [line for line in lines if line.startswith("    features    range_position ")]
    assert sorted(line.rpartition("  (")[2] for line in marked) == [
        "clash with example: kind other:range_position)",
        "clash with other: kind example:range_position)",
    ]
    first, second = sorted(
        [lines.index(f"example  [{EXAMPLE_SOURCE}]"), lines.index(f"other  [{OTHER_SOURCE}]")]
    )
    named = [lines[first].split()[0], lines[second].split()[0]]  # in discovery order
    assert lines[-1] == (
        f"clash: features kind 'range_position' is provided by {named[0]} and {named[1]}; a "
        f"strategy using it names one: kind: {named[0]}:range_position or kind: "
        f"{named[1]}:range_position"
    )


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_a_clash_refuses_only_the_strategies_that_use_the_kind(clash_venv: PluginVenv) -> None:
    unrelated = clash_venv.tradeloom("validate", "strategies/btc_rf.yaml")
    assert (unrelated.returncode, unrelated.stderr) == (0, ""), unrelated.stderr

    refused = clash_venv.tradeloom("validate", STRATEGY)

    assert (refused.returncode, refused.stdout) == (2, "")
    # the plugins in discovery order: this venv's package first, then the example's
    assert refused.stderr.splitlines() == [
        f"{STRATEGY}:23:11 features.3.kind: features kind 'range_position' is provided by 2 "
        f"plugins, 'other' ({OTHER_SOURCE}) and 'example' ({EXAMPLE_SOURCE}); name one: kind: "
        "other:range_position or kind: example:range_position"
    ]


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_a_strategy_names_the_provider_of_a_clashing_kind(
    clash_venv: PluginVenv, tmp_path: Path
) -> None:
    chosen = ("--set", "features.3.kind=example:range_position")

    validated = clash_venv.tradeloom("validate", STRATEGY, *chosen)
    ran = clash_venv.tradeloom(
        "run", STRATEGY, *chosen, "--set", "data.bars=2500", "--out", tmp_path / "run"
    )
    other = clash_venv.tradeloom(
        "validate",
        STRATEGY,
        "--set",
        "features.3.kind=other:range_position",
        "--set",
        "risk.rules.0.feature=volatility_24",
    )

    assert (validated.returncode, validated.stderr) == (0, ""), validated.stderr
    assert "4 feature columns" in validated.stdout
    assert (ran.returncode, "Traceback" in ran.stderr) == (0, False), ran.stderr
    resolved = (tmp_path / "run" / "strategy.yaml").read_text(encoding="utf-8")
    assert "kind: example:range_position" in resolved
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["bars"] == 2500
    assert (other.returncode, other.stderr) == (0, ""), other.stderr


@pytest.mark.slow
@pytest.mark.xdist_group(EXAMPLE_GROUP)
def test_the_json_schema_takes_the_qualified_kind_of_a_clash(clash_venv: PluginVenv) -> None:
    import jsonschema
    import yaml

    result = clash_venv.tradeloom("schema")
    assert (result.returncode, result.stderr) == (0, "")
    validator = jsonschema.Draft7Validator(json.loads(result.stdout))
    document = yaml.safe_load((ROOT / STRATEGY).read_text(encoding="utf-8"))

    assert not validator.is_valid(document)  # range_position: which one?
    document["features"][3]["kind"] = "example:range_position"
    assert validator.is_valid(document)
    document["features"][3]["kind"] = "tradeloom.plugins.features:rsi"
    document["features"][3].pop("window")
    assert validator.is_valid(document)  # a qualified built-in is accepted too
