"""The JSON Schema of a strategy file, for YAML editors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tradeloom.plugins.component import Component, Params
from tradeloom.plugins.manager import Plugins
from tradeloom.plugins.registry import PluginInfo, Registry
from tradeloom.schemas import load_strategy, strategy_json_schema
from tradeloom.schemas.json_schema import to_draft7
from tradeloom.schemas.strategy import LIST_SECTIONS, RUNNER_KEYS, SINGLE_SECTIONS, StrategyFile


def _section(schema: dict[str, Any], layer: str) -> dict[str, Any]:
    return schema["$defs"][f"component.{layer}"]


def _alternatives(schema: dict[str, Any], layer: str) -> dict[str, dict[str, Any]]:
    return {alt["title"]: alt for alt in _section(schema, layer)["oneOf"]}


def test_every_installed_kind_is_an_alternative_of_its_layer(plugins: Plugins) -> None:
    schema = strategy_json_schema(plugins.registry)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    json.dumps(schema)  # JSON-ready
    for layer in {*SINGLE_SECTIONS.values(), *LIST_SECTIONS.values()}:
        alternatives = _alternatives(schema, layer)
        assert sorted(alternatives) == plugins.registry.kinds(layer)
        runner_keys = {
            key
            for path, keys in RUNNER_KEYS.items()
            if {**SINGLE_SECTIONS, **LIST_SECTIONS}[path] == layer
            for key in keys
        }
        for kind, alt in alternatives.items():
            params = plugins.registry.get(layer, kind).component.params
            assert alt["type"] == "object"
            assert alt["additionalProperties"] is False
            assert set(alt["properties"]) == {"kind", *params.model_fields, *runner_keys}
            required = {name for name, f in params.model_fields.items() if f.is_required()}
            # the runner's keys a section requires (allocation's window and rebalance)
            runner_required = {"window", "rebalance"} if layer == "allocation" else set()
            assert set(alt["required"]) == {"kind", *required, *runner_required}


def test_sections_point_at_their_layer(plugins: Plugins) -> None:
    schema = strategy_json_schema(plugins.registry)
    top = schema["properties"]
    assert set(top) == set(StrategyFile.model_fields)
    assert set(schema["required"]) == {
        "name", "data", "features", "model", "signal", "risk", "execution"
    }  # fmt: skip
    assert schema["additionalProperties"] is False
    assert top["data"]["$ref"] == "#/$defs/component.data"
    assert top["features"]["items"] == {"$ref": "#/$defs/component.features"}
    assert top["features"]["minItems"] == 1
    risk = schema["$defs"][top["risk"]["$ref"].removeprefix("#/$defs/")]
    assert risk["properties"]["sizing"]["$ref"] == "#/$defs/component.sizing"
    assert risk["properties"]["rules"]["items"] == {"$ref": "#/$defs/component.risk"}
    assert top["allocation"]["anyOf"] == [
        {"$ref": "#/$defs/component.allocation"},
        {"type": "null"},
    ]
    assert _section(schema, "data")["oneOf"][1]["description"] == "random-walk bars"


def test_signal_regimes_is_offered_by_every_signal_kind(plugins: Plugins) -> None:
    for alt in _alternatives(strategy_json_schema(plugins.registry), "signal").values():
        regimes = alt["properties"]["regimes"]["anyOf"][0]
        assert regimes["items"] == {
            "type": "string",
            "enum": ["trending", "ranging", "high_volatility", "low_volatility"],
        }
        assert regimes["minItems"] == 1
        assert "regimes" not in alt["required"]


def test_secret_fields_take_a_reference(plugins: Plugins) -> None:
    api_key = _alternatives(strategy_json_schema(plugins.registry), "execution")["exchange"][
        "properties"
    ]["api_key"]
    assert api_key["type"] == "string"
    assert api_key["pattern"] == r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"


def test_a_layer_without_components_still_has_a_section() -> None:
    schema = strategy_json_schema(Registry([]))
    assert _section(schema, "model") == {
        "title": "model component",
        "description": "no model components are installed",
        "type": "object",
        "properties": {"kind": {"type": "string"}},
        "required": ["kind"],
    }


def test_a_type_without_a_json_form_is_left_open() -> None:
    class Odd(Params):
        transform: Callable[[float], float]
        fallback: Callable[[float], float] = abs
        window: int = 3

    registry = Registry(
        [PluginInfo("p", "module p", (Component("signal", "odd", Odd, lambda p, c: p),))]
    )
    odd = _alternatives(strategy_json_schema(registry), "signal")["odd"]
    assert odd["required"] == ["kind", "transform"]
    assert odd["properties"]["transform"] == {"title": "Transform"}
    assert odd["properties"]["window"] == {"default": 3, "title": "Window", "type": "integer"}


jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(params=["2020-12", "7"])
def validator(plugins: Plugins, request: pytest.FixtureRequest) -> Any:
    """The schema's validator, in each draft ``tradeloom schema`` writes: the same verdicts."""
    schema = strategy_json_schema(plugins.registry)
    if request.param == "7":
        schema = to_draft7(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert "$defs" not in json.dumps(schema)
        assert "dependentRequired" not in json.dumps(schema)
        jsonschema.Draft7Validator.check_schema(schema)
        return jsonschema.Draft7Validator(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_draft7_moves_what_draft7_names_otherwise() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"a": {"type": "object", "dependentRequired": {"path": ["sha256"]}}},
        "properties": {
            "x": {"$ref": "#/$defs/a", "description": "kept"},
            "pair": {"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
        },
    }
    assert to_draft7(schema) == {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"a": {"type": "object", "dependencies": {"path": ["sha256"]}}},
        "properties": {
            "x": {"allOf": [{"$ref": "#/definitions/a"}], "description": "kept"},
            "pair": {"items": [{"type": "string"}, {"type": "integer"}], "additionalItems": False},
        },
    }
    no_form = r"^unevaluatedProperties has no JSON Schema draft 7 form$"
    with pytest.raises(ValueError, match=no_form):
        to_draft7({"unevaluatedProperties": False})


def test_a_valid_strategy_is_valid(validator: Any, valid: str) -> None:
    assert list(validator.iter_errors(yaml.safe_load(valid))) == []


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("fraction: 0.25", "fraction: 1.5", "risk.sizing"),
        ("fraction: 0.25", "fracton: 0.25", "risk.sizing"),
        ("kind: kelly", "kind: kely", "risk.sizing"),
        ("window: 14", "window: 0", "features.1"),
        ("bars: 500", "bars: many", "data"),
        ("kind: threshold\n  threshold: 0.3", "kind: threshold", "signal"),
        ("seed: 7", "seed: -7", "seed"),
        ("name: btc_rf", "name: btc rf", "name"),
        ("seed: 7", "seed: 7\nsed: 8", ""),
        ("  max_holding_bars: 48", "  max_holding_bars: 0", "risk.max_holding_bars"),
    ],
)
def test_invalid_strategies_are_invalid(
    validator: Any, valid: str, old: str, new: str, path: str
) -> None:
    assert old in valid
    document = yaml.safe_load(valid.replace(old, new, 1))
    errors = list(validator.iter_errors(document))
    assert [".".join(str(p) for p in e.path) for e in errors] == [path]


def test_a_loaded_strategys_document_is_valid(
    validator: Any,
    strategy_file: Callable[[str], str],
    valid: str,
    fake_loader: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TL_KEY", "value")
    text = valid.replace(
        "  kind: simulated\n", "  kind: exchange\n  exchange: x\n  api_key: ${TL_KEY}\n"
    )
    config, _ = load_strategy(
        strategy_file(text), ["data.start='2024-01-01T00:00:00Z'"], load_plugins=fake_loader
    )
    assert list(validator.iter_errors(config.document)) == []
    document = {**config.document, "execution": {**config.document["execution"], "api_key": "v"}}
    assert [e.json_path for e in validator.iter_errors(document)] == ["$.execution"]
