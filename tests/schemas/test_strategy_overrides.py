"""``--set`` overrides: applied before validation, located at ``--set``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tradeloom.errors import ConfigError
from tradeloom.schemas import load_strategy
from tradeloom.schemas.overrides import apply_overrides
from tradeloom.schemas.yaml_loader import parse_yaml

TEXT = """\
data:
  kind: synthetic
  bars: 20000
features:
  - kind: rsi
    window: 14
  - kind: ema
risk:
  sizing:
    kind: kelly
    fraction: 0.25
"""


def _apply(*overrides: str) -> tuple[dict, list[str], list[str]]:
    doc = parse_yaml(TEXT, "s.yaml")
    data, source_map, problems = apply_overrides(doc.data, overrides, doc.source_map)
    overridden = sorted(source_map.overridden)
    return data, overridden, [str(p) for p in problems]


def test_values_are_parsed_as_yaml_and_applied() -> None:
    data, overridden, problems = _apply(
        "risk.sizing.fraction=0.5",
        "features.0.window=10",
        "data.bars=500",
        "data.symbol=ETH/USDT",
        "data.start='2024'",
        "features.1.span=[1, 2]",
    )
    assert problems == []
    assert data["risk"]["sizing"]["fraction"] == 0.5
    assert data["features"][0]["window"] == 10
    assert data["data"] == {
        "kind": "synthetic",
        "bars": 500,
        "symbol": "ETH/USDT",
        "start": "2024",
    }
    assert data["features"][1]["span"] == [1, 2]
    assert overridden == [
        "data.bars",
        "data.start",
        "data.symbol",
        "features.0.window",
        "features.1.span",
        "risk.sizing.fraction",
    ]


def test_a_list_item_is_appended_with_plus_equals() -> None:
    data, overridden, problems = _apply(
        "features+={kind: sma, window: 50}", "features += {kind: obv}", "features.2.window=20"
    )
    assert problems == []
    assert data["features"][2:] == [{"kind": "sma", "window": 20}, {"kind": "obv"}]
    assert overridden == ["features.2", "features.2.window", "features.3"]


def test_the_document_is_not_modified_and_the_last_override_wins() -> None:
    doc = parse_yaml(TEXT, "s.yaml")
    data, _, _ = apply_overrides(doc.data, ["data.bars=1", "data.bars=2"], doc.source_map)
    assert data["data"]["bars"] == 2
    assert doc.data["data"]["bars"] == 20000


def test_missing_mappings_on_the_way_are_created() -> None:
    data, overridden, problems = _apply("model.params.max_depth=3", "risk.rules=[]")
    assert problems == []
    assert data["model"] == {"params": {"max_depth": 3}}
    assert data["risk"]["rules"] == []
    assert overridden == ["model.params.max_depth", "risk.rules"]


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "data.bars",
            "--set: invalid override 'data.bars': expected KEY.PATH=VALUE, "
            "e.g. risk.sizing.fraction=0.5",
        ),
        ("=5", "--set: invalid override '=5': the key path is empty"),
        ("data..bars=5", "--set: invalid override 'data..bars=5': the key path has an empty part"),
        (
            "features.2.window=5",
            "--set features.2: index 2 is out of range: features has 2 items (append with "
            "features+=VALUE)",
        ),
        ("features.0+=5", "--set features.0: cannot append: features.0 is a mapping, not a list"),
        ("signals+=5", "--set signals: cannot append: there is no such key"),
        (
            "features.first.window=5",
            "--set features.first: expected a list index (digits without leading zeros), "
            "was 'first'",
        ),
        (
            "features.-1.window=5",
            "--set features.-1: expected a list index (digits without leading zeros), was '-1'",
        ),
        (
            "data.bars.max=5",
            "--set data.bars.max: cannot set a key inside data.bars, which is 20000",
        ),
        (
            "data.bars=[1, 2",
            "--set data.bars: invalid YAML value '[1, 2': expected ',' or ']', "
            "but got the end of the file",
        ),
    ],
)
def test_malformed_overrides(override: str, line: str) -> None:
    data, overridden, problems = _apply(override, "data.bars=7")
    assert problems == [line]
    assert data["data"]["bars"] == 7  # the other overrides still apply
    assert overridden == ["data.bars"]


@given(
    value=st.one_of(
        st.integers(-(10**90), 10**90),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.text(),
        st.none(),
    )
)
def test_values_written_as_yaml_round_trip(value: object) -> None:
    # Every finite value a strategy file can hold (non-finite numbers are refused below).
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).removesuffix("\n")
    text = text.removesuffix("\n...")
    data, _, problems = _apply(f"data.bars={text}")
    assert problems == []
    assert data["data"]["bars"] == value


def test_load_strategy_applies_overrides(
    strategy_file: Callable[[str], str], valid: str, fake_loader: Callable
) -> None:
    name = strategy_file(valid)
    config, _ = load_strategy(
        name,
        ["risk.sizing.fraction=0.5", "features.0.period=10", "data.bars=700", "seed=3"],
        load_plugins=fake_loader,
    )
    assert config.sizing.params.fraction == 0.5
    assert config.features[0].params.period == 10
    assert config.data.params.bars == 700
    assert config.seed == 3
    assert config.document["data"] == {"kind": "synthetic", "bars": 700}
    assert config.locate("data.bars") == "--set"
    assert config.locate("data.kind") == "s.yaml:4:9"


def test_problems_in_overridden_values_are_located_at_set(
    strategy_file: Callable[[str], str], valid: str, fake_loader: Callable
) -> None:
    name = strategy_file(valid)
    with pytest.raises(ConfigError) as caught:
        load_strategy(
            name,
            [
                "risk.sizing.fraction=1.5",
                "data.bars=many",
                "data.bras=3",
                "signal={kind: threshold}",
                "features.5.window=3",
                "bars",
            ],
            load_plugins=fake_loader,
        )
    assert caught.value.lines() == [
        "--set: invalid override 'bars': expected KEY.PATH=VALUE, e.g. risk.sizing.fraction=0.5",
        "--set data.bars: expected an integer, was 'many'",
        "--set data.bras: unknown key (did you mean 'bars'?)",
        "--set features.5: index 5 is out of range: features has 2 items (append with "
        "features+=VALUE)",
        "--set risk.sizing.fraction: must be <= 1, was 1.5",
        "--set signal.threshold: required key is missing",
    ]
