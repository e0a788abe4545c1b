"""The JSON Schema of a strategy file, with every installed component, for YAML editors.

Point yaml-language-server at the output of ``tradeloom schema`` (``# yaml-language-server:
$schema=strategy.schema.json``) and an editor completes keys, shows each key's
description and flags a typo as you type. Each component section is a ``oneOf`` over the
installed components of its layer; each alternative fixes ``kind`` to the component's
spellings (``rsi`` or ``tradeloom.plugins.features:rsi``; only the qualified one when two
plugins provide the kind) and lists that component's keys, refusing any other.

The schema is written in JSON Schema 2020-12 (pydantic's dialect); `to_draft7` translates
it for yaml-language-server, whose validator implements draft 7 (``tradeloom schema``'s
default): ``$defs`` becomes ``definitions``, ``dependentRequired`` and
``dependentSchemas`` become ``dependencies``, ``prefixItems`` becomes an ``items`` list,
and a ``$ref`` with other keywords beside it, which draft 7 ignores, is wrapped in an
``allOf``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import (
    GenerateJsonSchema,
    JsonSchemaValue,
    JsonSchemaWarningKind,
    models_json_schema,
)

from tradeloom.plugins.component import LAYERS
from tradeloom.plugins.registry import Registry, qualified_kind
from tradeloom.schemas.strategy import (
    IMPLIED_KINDS,
    LIST_SECTIONS,
    RUNNER_KEYS,
    SINGLE_SECTIONS,
    StrategyFile,
)

__all__ = ["DRAFT7_DIALECT", "JSON_SCHEMA_DIALECT", "strategy_json_schema", "to_draft7"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

DRAFT7_DIALECT = "http://json-schema.org/draft-07/schema#"

_SECRET_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"


class _Generator(GenerateJsonSchema):
    # A params model may hold a type with no JSON form (a callable, an arbitrary class);
    # describe it as "anything" rather than failing the whole schema.
    def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> JsonSchemaValue:
        return {}

    # A default with no JSON form (a function) is simply left out; no need to warn users.
    def emit_warning(self, kind: JsonSchemaWarningKind, detail: str) -> None:
        if kind != "non-serializable-default":
            super().emit_warning(kind, detail)


def strategy_json_schema(registry: Registry) -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a strategy file.

    Args:
        registry: The installed components; each section accepts exactly those of its layer.

    Returns:
        The schema, as JSON-ready data.
    """
    top = StrategyFile.model_json_schema(
        ref_template="#/$defs/strategy.{model}", schema_generator=_Generator
    )
    defs: dict[str, Any] = {f"strategy.{k}": v for k, v in top.pop("$defs", {}).items()}
    defs.pop("strategy.ComponentSection", None)
    schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, **top, "$defs": defs}

    # every layer, a section's or one named inside a component (llm_client), has its
    # definition: an editor checks ``features.N.client`` against it
    layers = list(LAYERS)
    models: list[tuple[type[BaseModel], Any]] = [
        (entry.component.params, "validation")
        for layer in layers
        for entry in registry.components(layer)
    ]
    refs: dict[Any, Any] = {}
    if models:
        refs, params_defs = models_json_schema(
            models, ref_template="#/$defs/{model}", schema_generator=_Generator
        )
        defs.update(params_defs.get("$defs", {}))
    for layer in layers:
        alternatives = [
            _alternative(
                entry.component.kind,
                [qualified_kind(entry)]
                if registry.is_clash(entry)
                else [entry.component.kind, qualified_kind(entry)],
                entry.component.summary,
                _resolve(defs, refs[(entry.component.params, "validation")]),
            )
            for entry in registry.components(layer)
        ]
        defs[_layer_def(layer)] = _section_schema(layer, alternatives)

    for path, (kind, _) in IMPLIED_KINDS.items():
        # the loader fills in its kind, so the section is valid without one
        for alternative in defs[_layer_def(SINGLE_SECTIONS[path])].get("oneOf", []):
            if kind in alternative["properties"]["kind"]["enum"]:
                alternative["required"].remove("kind")
    for path, layer in SINGLE_SECTIONS.items():
        node = _property(schema, defs, path)
        # an optional section (allocation) is {anyOf: [its model, null]}
        optional = [n for n in node.get("anyOf", ()) if n.get("type") != "null"]
        section = optional[0] if optional else node
        # keys the runner handles for every kind (signal.regimes) go into each alternative
        keys = RUNNER_KEYS.get(path, ())
        runner = {key: _resolve(defs, section)["properties"][key] for key in keys}
        required = (
            [key for key in _resolve(defs, section).get("required", []) if key in keys]
            if keys
            else []
        )
        for alternative in defs[_layer_def(layer)].get("oneOf", []):
            alternative["properties"].update(runner)
            alternative["required"] = [*alternative["required"], *required]
        description = node.get("description")
        node.clear()
        ref = {"$ref": f"#/$defs/{_layer_def(layer)}"}
        if optional:
            node["anyOf"] = [ref, {"type": "null"}]
            node["default"] = None
        else:
            node.update(ref)
        if description:
            node["description"] = description
    defs.pop("strategy.SignalSection", None)
    defs.pop("strategy.AllocationSection", None)
    for path, layer in LIST_SECTIONS.items():
        node = _property(schema, defs, path)
        # keys the runner handles for every entry (features' timeframe), likewise
        keys = RUNNER_KEYS.get(path, ())
        if keys:
            entry = _resolve(defs, node["items"])
            runner = {key: entry["properties"][key] for key in keys}
            for alternative in defs[_layer_def(layer)].get("oneOf", []):
                alternative["properties"].update(runner)
        node["items"] = {"$ref": f"#/$defs/{_layer_def(layer)}"}
    defs.pop("strategy.FeatureSection", None)
    _mark_secrets(schema)
    return schema


def _layer_def(layer: str) -> str:
    return f"component.{layer}"


def _alternative(
    kind: str, spellings: list[str], summary: str, params: dict[str, Any]
) -> dict[str, Any]:
    alternative: dict[str, Any] = {"type": "object", "title": kind}
    description = summary or params.get("description")
    if description:
        alternative["description"] = description
    alternative["properties"] = {"kind": {"enum": spellings}, **params.get("properties", {})}
    alternative["required"] = ["kind", *params.get("required", [])]
    alternative["additionalProperties"] = params.get("additionalProperties", False)
    # cross-key rules a params model declares (exactly one of two keys, one needing another)
    for rule in _KEY_RULES:
        if rule in params:
            alternative[rule] = params[rule]
    return alternative


_KEY_RULES = ("oneOf", "anyOf", "allOf", "not", "dependentRequired")


def _section_schema(layer: str, alternatives: list[dict[str, Any]]) -> dict[str, Any]:
    if alternatives:
        return {"title": f"{layer} component", "oneOf": alternatives}
    return {
        "title": f"{layer} component",
        "description": f"no {layer} components are installed",
        "type": "object",
        "properties": {"kind": {"type": "string"}},
        "required": ["kind"],
    }


def _resolve(defs: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].removeprefix("#/$defs/")]
    return node


def _property(schema: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for part in path.split("."):
        node = _resolve(defs, node)["properties"][part]
    return node


def _mark_secrets(node: Any) -> None:
    # Secret fields accept only an environment variable reference, never the value.
    if isinstance(node, dict):
        if node.get("format") == "password" and node.get("type") == "string":
            node["pattern"] = _SECRET_PATTERN
            node["description"] = node.get("description") or "An environment variable: ${NAME}"
        for value in node.values():
            _mark_secrets(value)
    elif isinstance(node, list):
        for value in node:
            _mark_secrets(value)


def to_draft7(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` (2020-12, as `strategy_json_schema` writes it) in JSON Schema draft 7.

    Args:
        schema: The 2020-12 schema; not modified.

    Raises:
        ValueError: A keyword draft 7 has no form of (``unevaluatedProperties``...), which
            would otherwise be dropped and let through what it refuses.
    """
    translated: dict[str, Any] = _draft7_node(schema)
    translated["$schema"] = DRAFT7_DIALECT
    return translated


_NO_DRAFT7_FORM = ("unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$dynamicAnchor")
# keywords whose value is a map of names to schemas, or a list of schemas
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMAS = frozenset(
    {"items", "additionalItems", "not", "additionalProperties", "contains", "propertyNames"}
    | {"if", "then", "else"}
)


def _draft7_node(node: Any) -> Any:
    if isinstance(node, list):
        return [_draft7_node(item) for item in node]
    if not isinstance(node, dict):
        return node
    for keyword in _NO_DRAFT7_FORM:
        if keyword in node:
            raise ValueError(f"{keyword} has no JSON Schema draft 7 form")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS:
            value = {name: _draft7_node(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS or key in _SCHEMAS:
            value = _draft7_node(value)
        elif key == "$ref" and isinstance(value, str):
            value = _draft7_ref(value)
        elif key == "discriminator" and isinstance(value, dict) and "mapping" in value:
            # OpenAPI's, which pydantic writes beside a oneOf: its refs move too
            value = {**value, "mapping": {k: _draft7_ref(v) for k, v in value["mapping"].items()}}
        out[key] = value
    if "$defs" in out:
        out["definitions"] = {**out.pop("$defs"), **out.get("definitions", {})}
    dependencies = {**out.pop("dependentRequired", {}), **out.pop("dependentSchemas", {})}
    if dependencies:
        out["dependencies"] = {**out.get("dependencies", {}), **dependencies}
    if "prefixItems" in out:
        rest = out.pop("items", None)
        out["items"] = out.pop("prefixItems")
        if rest is not None:
            out["additionalItems"] = rest
    if "$ref" in out and len(out) > 1:
        # draft 7 ignores every keyword beside a $ref: the rest applies through allOf
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def _draft7_ref(ref: str) -> str:
    return ref.replace("#/$defs/", "#/definitions/", 1)
