"""`load_strategy`: a whole strategy file validated against the installed components."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tradeloom.errors import ConfigError, UserError
from tradeloom.schemas import StrategyConfig, load_strategy


@pytest.fixture
def load(
    strategy_file: Callable[[str], str], fake_loader: Callable
) -> Callable[..., StrategyConfig]:
    def run(text: str, *overrides: str) -> StrategyConfig:
        config, _ = load_strategy(strategy_file(text), overrides, load_plugins=fake_loader)
        return config

    return run


@pytest.fixture
def problems(load: Callable[..., StrategyConfig]) -> Callable[..., list[str]]:
    def run(text: str, *overrides: str) -> list[str]:
        with pytest.raises(ConfigError) as caught:
            load(text, *overrides)
        return caught.value.lines()

    return run


def _replace(valid: str, old: str, new: str) -> str:
    assert old in valid
    return valid.replace(old, new, 1)


def test_a_valid_strategy(load: Callable[..., StrategyConfig], valid: str, fake_loader) -> None:
    config = load(valid)
    assert fake_loader.calls == [[]]
    assert config.name == "btc_rf"
    assert config.seed == 7
    assert config.plugins == ()
    assert config.source.name == "s.yaml"
    assert (config.data.path, config.data.kind, config.data.params.bars) == (
        "data",
        "synthetic",
        500,
    )
    assert [(f.path, f.kind) for f in config.features] == [
        ("features.0", "log_return"),
        ("features.1", "rsi"),
    ]
    assert config.features[1].params.window == 14
    assert config.model.params.label.horizon == 4
    assert config.model.params.params == {"max_depth": 5}
    assert config.signal.params.threshold == 0.3
    assert (config.sizing.path, config.sizing.params.fraction) == ("risk.sizing", 0.25)
    assert [(r.path, r.kind) for r in config.risk_rules] == [("risk.rules.0", "drawdown_halt")]
    assert config.max_holding_bars == 48
    assert config.execution.kind == "simulated"
    assert [(m.path, m.kind) for m in config.monitoring] == [("monitoring.0", "rolling_auc")]
    assert config.sizing.registered.plugin.name == "fake"
    assert config.sizing.registered.component.layer == "sizing"
    assert config.document["risk"]["sizing"] == {"kind": "kelly", "fraction": 0.25}
    assert config.locate("risk.sizing.fraction") == "s.yaml:24:15"
    assert config.locate("risk.sizing.max_position") == "s.yaml:23:5"
    assert config.locate("features.1.window") == "s.yaml:10:13"


def test_defaults_of_optional_sections(load: Callable[..., StrategyConfig], valid: str) -> None:
    optional = (
        "  rules:\n    - kind: drawdown_halt\n      max_drawdown: 0.15\n  max_holding_bars: 48\n"
    )
    text = _replace(valid.split("monitoring:")[0], optional, "")
    config = load(text)
    assert config.document["risk"] == {"sizing": {"kind": "kelly", "fraction": 0.25}}
    assert config.risk_rules == ()
    assert config.max_holding_bars is None
    assert config.monitoring == ()


def test_all_problems_are_collected_in_file_order(problems: Callable[..., list[str]]) -> None:
    text = """\
        name: my strategy
        seed: -1
        data:
          kind: synthetic
          bars: many
          timeframe: 2h
        features:
          - kind: rsi
            window: 0
          - kind: lag
          - kind: lags
            of: []
        model:
          kind: sklearn
          estimator: sklearn.ensemble.RandomForestClassifier
          n_estimatrs: 100
          label:
            horizn: 4
          walk_forward:
            train_window: 10
            retrain_every: 20
        signal:
          kind: threshold
          min_interval: 2
        risk:
          sizing:
            kind: kelly
            fraction: 1.5
          rules:
            - kind: exposure
              limit: -0.5
          max_holding_bars: 0
        execution:
          kind: simulated
          allow_short: maybe
        monitoring:
          - kind: rolling_auc
            warning_below: 0.4
        extras: 1
        """
    assert problems(text) == [
        "s.yaml:1:7 name: may hold only letters, digits, _ . and -, was 'my strategy' (' ' at 3)",
        "s.yaml:2:7 seed: must be >= 0, was -1",
        "s.yaml:5:9 data.bars: expected an integer, was 'many'",
        "s.yaml:6:14 data.timeframe: expected '1m', '1h' or '1d', was '2h'",
        "s.yaml:9:13 features.0.window: must be >= 1, was 0",
        "s.yaml:10:11 features.1.kind: unknown features kind 'lag' (did you mean 'lags'?); "
        "installed kinds: lags, log_return, rsi",
        "s.yaml:12:9 features.2.of: must have at least 1 item, was empty",
        "s.yaml:16:3 model.n_estimatrs: unknown key (did you mean 'n_estimators'?)",
        "s.yaml:18:5 model.label.horizn: unknown key (did you mean 'horizon'?)",
        "s.yaml:20:5 model.walk_forward: retrain_every (20) must be <= train_window (10)",
        "s.yaml:23:3 signal.threshold: required key is missing",
        "s.yaml:28:15 risk.sizing.fraction: must be <= 1, was 1.5",
        "s.yaml:31:14 risk.rules.0.limit: must be >= 0, was -0.5",
        "s.yaml:32:21 risk.max_holding_bars: must be >= 1, was 0",
        "s.yaml:35:16 execution.allow_short: expected true or false, was 'maybe'",
        "s.yaml:37:5 monitoring.0: critical_below must be <= warning_below",
        "s.yaml:39:1 extras: unknown key; valid keys: name, description, seed, plugins, data, "
        "features, model, signal, allocation, regime, risk, execution, monitoring, health, live, "
        "outputs, journal, challengers",
    ]


def test_unknown_keys_get_a_did_you_mean(problems: Callable[..., list[str]], valid: str) -> None:
    text = _replace(valid, "model:\n", "modle:\n")
    text = _replace(text, "  rules:\n", "  rule:\n")
    text = _replace(text, "  kind: synthetic\n", "  kind: synthetic\n  Bars: 3\n  colour: red\n")
    assert problems(text) == [  # modle's line says that model is missing: one line
        "s.yaml:5:3 data.Bars: unknown key (did you mean 'bars'?)",
        "s.yaml:6:3 data.colour: unknown key; valid keys: symbol, timeframe, bars, start",
        "s.yaml:13:1 modle: unknown key (did you mean 'model'?)",
        "s.yaml:27:3 risk.rule: unknown key (did you mean 'rules'?)",
    ]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "  sizing:\n",
            "  sizng:\n",
            "s.yaml:22:3 risk.sizng: unknown key (did you mean 'sizing'?)",
        ),
        (
            "features:\n",
            "fetaures:\n",
            "s.yaml:6:1 fetaures: unknown key (did you mean 'features'?)",
        ),
        (
            "threshold: 0.3",
            "threshhold: 0.3",
            "s.yaml:20:3 signal.threshhold: unknown key (did you mean 'threshold'?)",
        ),
    ],
)
def test_a_misspelt_required_key_is_one_line_with_its_suggestion(
    problems: Callable[..., list[str]], valid: str, old: str, new: str, line: str
) -> None:
    """Not two lines (the key required missing, then the unknown one): one mistake."""
    assert problems(_replace(valid, old, new)) == [line]


def test_a_kind_in_another_case_is_suggested_in_every_layer(
    problems: Callable[..., list[str]], valid: str
) -> None:
    text = _replace(valid, "kind: rsi\n", "kind: RSI\n")
    text = _replace(text, "    kind: kelly\n", "    kind: KELLY\n")
    text = _replace(text, "  kind: simulated\n", "  kind: Simulated\n")
    assert problems(text) == [
        "s.yaml:9:11 features.1.kind: unknown features kind 'RSI' (did you mean 'rsi'?); "
        "installed kinds: lags, log_return, rsi",
        "s.yaml:23:11 risk.sizing.kind: unknown sizing kind 'KELLY' (did you mean 'kelly'?); "
        "installed kinds: kelly",
        "s.yaml:30:9 execution.kind: unknown execution kind 'Simulated' (did you mean "
        "'simulated'?); installed kinds: exchange, simulated",
    ]


def test_unknown_kind_lists_the_installed_kinds(
    problems: Callable[..., list[str]], valid: str
) -> None:
    text = _replace(valid, "  kind: simulated\n", "  kind: paper_venue\n  fee_bps: 3\n")
    text = _replace(text, "    kind: kelly\n", "    kind: kely\n")
    assert problems(text) == [
        "s.yaml:23:11 risk.sizing.kind: unknown sizing kind 'kely' (did you mean 'kelly'?); "
        "installed kinds: kelly",
        "s.yaml:30:9 execution.kind: unknown execution kind 'paper_venue'; "
        "installed kinds: exchange, simulated",
    ]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "fraction: 0.25",
            "fraction: 1.5",
            "s.yaml:24:15 risk.sizing.fraction: must be <= 1, was 1.5",
        ),
        ("fraction: 0.25", "fraction: 0", "s.yaml:24:15 risk.sizing.fraction: must be > 0, was 0"),
        ("window: 14", "window: 0", "s.yaml:10:13 features.1.window: must be >= 1, was 0"),
        (
            "- kind: drawdown_halt\n      max_drawdown: 0.15",
            "- kind: exposure\n      limit: -1",
            "s.yaml:27:14 risk.rules.0.limit: must be >= 0, was -1",
        ),
        ("threshold: 0.3", "threshold: 1.0", "s.yaml:20:14 signal.threshold: must be < 1, was 1.0"),
        ("bars: 500", "bars: many", "s.yaml:5:9 data.bars: expected an integer, was 'many'"),
        ("bars: 500", "bars: 2.5", "s.yaml:5:9 data.bars: expected an integer, was 2.5"),
        ("bars: 500", "bars: [1]", "s.yaml:5:9 data.bars: expected an integer, was a list"),
        ("bars: 500", "bars:", "s.yaml:5:8 data.bars: expected an integer, was null"),
        (
            "bars: 500",
            "start: someday",
            "s.yaml:5:10 data.start: expected a date-time such as "
            "2024-01-01T00:00:00Z, was 'someday'",
        ),
        (
            "threshold: 0.3",
            "threshold: high",
            "s.yaml:20:14 signal.threshold: expected a number, was 'high'",
        ),
        ("seed: 7", "seed: seven", "s.yaml:2:7 seed: expected an integer, was 'seven'"),
        ("name: btc_rf", "name: 42", "s.yaml:1:7 name: expected a string, was 42"),
        (
            "  max_holding_bars: 48",
            "  max_holding_bars: forever",
            "s.yaml:28:21 risk.max_holding_bars: expected an integer, was 'forever'",
        ),
        (
            "  max_holding_bars: 48",
            "  exit_time: '25:00'",
            "s.yaml:28:14 risk.exit_time: expected a UTC time of day HH:MM on the 24-hour clock "
            "(00:00 .. 23:59), was '25:00'",
        ),
        (
            "  max_holding_bars: 48",
            "  trailing_stop: 1.5",
            "s.yaml:28:18 risk.trailing_stop: must be < 1, was 1.5",
        ),
        (
            "  max_holding_bars: 48",
            "  trailing_stop: {atr: 14, multiple: 0}",
            "s.yaml:28:38 risk.trailing_stop.multiple: must be > 0, was 0",
        ),
        (
            "  max_holding_bars: 48",
            "  cooldown_bars: 0",
            "s.yaml:28:18 risk.cooldown_bars: must be >= 1, was 0",
        ),
        (
            "  max_holding_bars: 48",
            "  break_even: -0.01",
            "s.yaml:28:15 risk.break_even: must be > 0, was -0.01",
        ),
        (
            "features:\n  - kind: log_return\n    period: 1\n  - kind: rsi\n    window: 14",
            "features: []",
            "s.yaml:6:11 features: must have at least 1 item, was empty",
        ),
        (
            "features:\n  - kind: log_return\n    period: 1\n  - kind: rsi\n    window: 14",
            "features:\n  kind: rsi",
            "s.yaml:7:3 features: expected a list, was a mapping",
        ),
        (
            "data:\n  kind: synthetic\n  bars: 500",
            "data: synthetic",
            "s.yaml:3:7 data: expected a component: a mapping with 'kind' and its keys, "
            "was 'synthetic'",
        ),
        ("  kind: synthetic\n", "", "s.yaml:4:3 data.kind: required key is missing"),
        ("kind: synthetic", "kind: 3", "s.yaml:4:9 data.kind: expected a string, was 3"),
        (
            "kind: threshold\n  threshold: 0.3",
            "kind: threshold",
            "s.yaml:19:3 signal.threshold: required key is missing",
        ),
    ],
)
def test_one_problem(
    problems: Callable[..., list[str]], valid: str, old: str, new: str, line: str
) -> None:
    assert problems(_replace(valid, old, new)) == [line]


def test_a_missing_section_is_located_at_the_top(
    load: Callable[..., StrategyConfig], valid: str
) -> None:
    text = "# comment\n" + valid.replace("execution:\n  kind: simulated\n", "")
    with pytest.raises(ConfigError, match=r"^s\.yaml:2:1 execution: required key is missing$"):
        load(text)


def test_plugins_listed_by_the_strategy_are_loaded(
    load: Callable[..., StrategyConfig], valid: str, fake_loader
) -> None:
    text = valid.replace("seed: 7\n", "seed: 7\nplugins: [tests.extra_features]\n")
    text = text.replace("  - kind: rsi\n", "  - kind: ema\n")
    config = load(text)
    assert fake_loader.calls == [["tests.extra_features"]]
    assert config.plugins == ("tests.extra_features",)
    assert config.features[1].registered.plugin.name == "tests.extra_features"


def test_a_plugin_module_that_fails_to_import(
    problems: Callable[..., list[str]], valid: str, fake_loader
) -> None:
    text = valid.replace(
        "seed: 7\n", "seed: 7\nplugins:\n  - tests.extra_features\n  - 7\n  - my_company.features\n"
    )
    text = text.replace("bars: 500", "bars: -5").replace("  - kind: rsi\n", "  - kind: ema\n")
    assert problems(text) == [
        "s.yaml:5:5 plugins.1: expected a string, was 7",
        "s.yaml:6:5 plugins.2: cannot import plugin module 'my_company.features': "
        "ModuleNotFoundError: No module named 'my_company.features'",
    ]
    assert fake_loader.calls == [["tests.extra_features", "my_company.features"]]


def test_other_plugin_errors_propagate(strategy_file: Callable[[str], str], valid: str) -> None:
    def broken(modules: object) -> object:
        raise UserError("plugin 'x' implements unknown hook 'tradeloom_nope'")

    with pytest.raises(UserError, match=r"^plugin 'x' implements unknown hook 'tradeloom_nope'$"):
        load_strategy(strategy_file(valid), load_plugins=broken)  # type: ignore[arg-type]


def test_invalid_yaml_is_reported_before_anything_else(
    problems: Callable[..., list[str]], fake_loader
) -> None:
    assert problems("name: x\ndata: [\n") == [
        "s.yaml:3:1: invalid YAML: expected the node content, but found the end of the file"
    ]
    assert fake_loader.calls == []


def test_top_level_not_a_mapping(problems: Callable[..., list[str]]) -> None:
    assert problems("- kind: rsi\n") == [
        "s.yaml:1:1: the top level must be a mapping of keys to values, was a list"
    ]


def test_missing_file(strategy_file: Callable[[str], str], fake_loader) -> None:
    strategy_file("")
    with pytest.raises(UserError, match=r"^other\.yaml: no such file$"):
        load_strategy("other.yaml", load_plugins=fake_loader)
