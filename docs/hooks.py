"""mkdocs hooks: the reference pages are generated from the code at every build.

A page holds a marker comment where a generated table goes:

- ``<!-- reference: LAYER -->``: every built-in component of a layer, each key with its
  type, default and the description of its params model's field;
- ``<!-- reference: top-level -->``: the keys outside the components (``name``, ``seed``,
  ``signal.regimes``, ``risk``...), from the strategy file's own models; ``regime``,
  ``health``, ``live`` and ``outputs`` for those sections;
- ``<!-- reference: hooks -->``: every hook with its signature and docstring, from
  ``tradeloom.plugins.hookspecs``;
- ``<!-- reference: cli -->``: every command's ``--help``;
- ``<!-- reference: records -->``: every kind of the compiled core's event rows, its
  values and the journal fields they give, from ``tradeloom.core.records.RECORDS``;
- ``<!-- reference: refusal-codes -->``: how each built-in rejection code and cancel
  reason counts in the refusal table, and which order reasons are exits, from
  ``tradeloom.core.codes``;
- ``<!-- reference: json-outputs -->``: every command's ``--json`` object, its keys from
  the JSON Schema the package ships (``tradeloom.reporting.json_output.OUTPUTS``);
- ``<!-- reference: metrics -->``: every Prometheus metric a paper or live run exports,
  from ``tradeloom.live.outputs.metrics.METRICS``; ``live-metrics``, ``live-alerts`` and
  ``alert-target`` for the keys of ``live.metrics`` and ``live.alerts``.

So the tables cannot drift from the code; tests/test_docs.py builds with ``--strict``.

The JSON Schemas of the strategy, portfolio and sweep files (the built-in components')
are published with the site as ``schemas/<kind>.schema.json``: ``python docs/hooks.py``
writes them into docs/schemas/, which the shipped files' first lines name for editors
(``tradeloom.cli.file_schemas``), and tests/test_docs.py checks they are current.

The generated markdown is also written into the pages themselves, after each marker and
up to ``<!-- end of reference -->``, so that a page read outside the site (on GitHub, in
an editor) holds its tables rather than a placeholder: ``python docs/hooks.py`` rewrites
them, and tests/test_docs.py checks that the pages hold what the code generates now.
A build replaces each block with a fresh one all the same.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import textwrap
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

_END = "<!-- end of reference -->"
_MARKER = re.compile(
    r"<!-- reference: ([a-z_-]+) -->\n?(?:(?:(?!<!-- reference: ).)*?" + _END + r"\n?)?",
    re.DOTALL,
)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace every reference marker of a page, and the block it holds, with the
    generated markdown between the marker and its end."""
    return _MARKER.sub(lambda m: _block(m.group(1)), markdown)


def _block(name: str) -> str:
    return f"<!-- reference: {name} -->\n\n{generate(name).strip()}\n\n{_END}\n"


def write_pages(docs: Path) -> list[Path]:
    """Write each page's generated blocks into it, and the published file schemas
    (`schema_texts`); return the files that changed."""
    changed = []
    for name, fresh in schema_texts().items():
        path = docs / "schemas" / name
        if not path.is_file() or path.read_text(encoding="utf-8") != fresh:
            path.parent.mkdir(exist_ok=True)
            path.write_text(fresh, encoding="utf-8")
            changed.append(path)
    for page in sorted(docs.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        fresh = on_page_markdown(text)
        if fresh != text:
            page.write_text(fresh, encoding="utf-8")
            changed.append(page)
    return changed


def schema_texts() -> dict[str, str]:
    """Return the text of each published file schema by its name, of the built-in
    components (`tradeloom.cli.file_schemas.published_schemas`)."""
    from tradeloom.cli.file_schemas import published_schemas
    from tradeloom.plugins.manager import load_plugins

    return dict(published_schemas(load_plugins(entry_points=False).registry))


def generate(name: str) -> str:
    """Return the generated markdown of one marker."""
    if name == "hooks":
        return hooks_markdown()
    if name == "json-outputs":
        return json_outputs_markdown()
    if name == "cli":
        return cli_markdown()
    if name == "top-level":
        return top_level_markdown()
    if name == "metrics":
        return metrics_markdown()
    if name == "records":
        return records_markdown()
    if name == "refusal-codes":
        return refusal_codes_markdown()
    if name in _SECTIONS:
        module, model, prefix, skip = _SECTIONS[name]
        return fields_table(getattr(importlib.import_module(module), model), prefix, skip)
    return layer_markdown(name)


_SECTIONS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "regime": ("tradeloom.schemas.regime", "RegimeParams", "regime.", ()),
    "health": ("tradeloom.schemas.health", "HealthRule", "health[].", ()),
    "live": ("tradeloom.schemas.live", "LiveSection", "live.", ()),
    "outputs": ("tradeloom.schemas.strategy", "OutputsSection", "outputs.", ()),
    "journal": ("tradeloom.schemas.journal", "JournalSection", "journal.", ()),
    "risk-section": ("tradeloom.schemas.strategy", "RiskSection", "risk.", ("sizing", "rules")),
    "allocation-section": (
        "tradeloom.schemas.strategy",
        "AllocationSection",
        "allocation.",
        ("kind",),
    ),
    "live-metrics": ("tradeloom.schemas.live", "MetricsSection", "live.metrics.", ()),
    "live-alerts": ("tradeloom.schemas.alerts", "AlertsParams", "live.alerts.", ()),
    "alert-target": (
        "tradeloom.schemas.alerts",
        "AlertTarget",
        "live.alerts.targets[].",
        (),
    ),
}
"""Sections of the strategy file outside the components: module, model, key prefix, and
the keys that hold components (listed with their layer instead)."""


def metrics_markdown() -> str:
    """Return the table of every metric a paper or live run exports."""
    from tradeloom.live.outputs.metrics import METRICS

    suffix = {"counter": "_total", "info": "_info"}
    rows = ["| metric | type | labels | what |", "|---|---|---|---|"]
    for spec in METRICS:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "-"
        name = spec.name + suffix.get(spec.kind, "")
        rows.append(f"| `{name}` | {spec.kind} | {labels} | {spec.help} |")
    return "\n".join(rows) + "\n"


def records_markdown() -> str:
    """Return the table of the core's event row kinds, then each kind's values."""
    from tradeloom.core.records import BAR, HEAD, KIND, RECORDS, SYMBOL, VALUES, WIDTH

    rows = [
        f"Every row is {WIDTH} floats: column {KIND} its kind's code, {BAR} its bar, "
        f"{SYMBOL} its symbol's index (-1: the account), then {VALUES} values (columns "
        f"{HEAD} .. {WIDTH - 1}); a kind uses the first ones, the rest are 0.\n",
        "| code | kind | journal event | what |",
        "|---|---|---|---|",
    ]
    for rec in RECORDS:
        journal = f"`{rec.journal}`" if rec.journal else "-"
        rows.append(f"| {rec.code} | [`{rec.name}`](#{rec.name}) | {journal} | {_cell(rec.doc)} |")
    parts = ["\n".join(rows) + "\n"]
    for rec in RECORDS:
        parts.append(f"\n### {rec.name}\n\n")
        if rec.head:
            fields = ", ".join(f"`{name}`" for name in rec.head)
            parts.append(f"The journal event's {fields} comes from the row's bar.\n\n")
        parts.append("| columns | field | type | journal fields | what |\n|---|---|---|---|---|\n")
        for f in rec.fields:
            at = rec.column(f.name)
            columns = str(at) if f.width == 1 else f"{at} .. {at + f.width - 1}"
            journal = ", ".join(f"`{name}`" for name in f.journal) if rec.journal else ""
            parts.append(
                f"| {columns} | `{f.name}` | {f.type} | {journal or '-'} | {_cell(f.doc)} |\n"
            )
    return "".join(parts)


def refusal_codes_markdown() -> str:
    """Return how each built-in code counts in the refusal table, and the exits."""
    from tradeloom.core import codes

    rows = [
        "| code | counted as | what it refuses |",
        "|---|---|---|",
    ]
    for name in codes.REJECTION_NAMES.names:
        what = (
            "an order (the engine's exits too): a pre-trade check"
            if name in codes.ORDER_CHECKS
            else "an order below the minimum (an exit's: dust, counted flat)"
            if name in codes.DUST_CODES
            else "a signal's intent or the engine's exit (its cancel took no effect); "
            "purpose `KILL_SWITCH`: the kill switch's cancel, asked again at each bar"
            if name == "CANCEL_UNCONFIRMED"
            else "a signal's intent"
        )
        rows.append(f"| `{name}` | rejected | {what} |")
    for name in codes.CANCEL_NAMES.names:
        stage = codes.refusal_stage(name, cancelled=True)
        what = (
            "nothing: the engine's own cancel, no refusal"
            if stage is None
            else "an order, cut by the venue's cash or minimum"
            if stage == "cut"
            else "an order, stopped short"
        )
        rows.append(f"| `{name}` (cancel) | {stage or '-'} | {what} |")
    exits = ["| order reason | an exit | protective |", "|---|---|---|"]
    for name in codes.ORDER_REASON_NAMES.names:
        exit_ = "yes" if name in codes.EXIT_REASONS else "-"
        protective = "yes" if name in codes.PROTECTIVE_REASONS else "-"
        exits.append(f"| `{name}` | {exit_} | {protective} |")
    return "\n".join(rows) + "\n\n" + "\n".join(exits) + "\n"


def builtin_components(layer: str) -> list[Any]:
    """Return the built-in components of a layer, by kind."""
    from tradeloom.plugins.manager import BUILTIN_PLUGINS, load_plugins

    registry = load_plugins(entry_points=False).registry
    found = [rc for rc in registry.components(layer) if rc.plugin.name in BUILTIN_PLUGINS]
    return sorted(found, key=lambda rc: rc.component.kind)


def layer_markdown(layer: str) -> str:
    """Return one section per built-in component of ``layer`` with its keys."""
    parts = []
    for rc in builtin_components(layer):
        c = rc.component
        parts.append(f"### `{c.kind}`\n\n{c.summary}\n\n")
        doc = inspect.getdoc(c.params) or ""
        first = doc.split("\n\n", 1)[0].strip()
        if first and first != c.summary:
            parts.append(f"{first}\n\n")
        parts.append(fields_table(c.params))
        parts.append("\n")
    return "".join(parts) or f"No built-in {layer} component.\n"


def fields_table(model: type[BaseModel], prefix: str = "", skip: tuple[str, ...] = ()) -> str:
    """Return a markdown table of a params model's keys (nested models expanded)."""
    rows = list(_rows(model, prefix, skip))
    if not rows:
        return "No keys.\n"
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines.extend(f"| `{k}` | {t} | {d} | {desc} |" for k, t, d, desc in rows)
    return "\n".join(lines) + "\n"


def _rows(model: type[BaseModel], prefix: str, skip: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for key, field in model.model_fields.items():
        if key in skip:
            continue
        name = f"{prefix}{field.alias or key}"
        nested = _nested_model(field.annotation)
        if nested is not None:
            yield name, _cell(_type_name(field.annotation)), _default(field), _describe(field)
            yield from _rows(nested, f"{name}.", ())
            continue
        yield name, _cell(_type_name(field.annotation)), _default(field), _describe(field)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            return "(see below)"
        return _cell(f"`{value!r}`")
    if field.default is PydanticUndefined:
        return "required"
    return _cell(f"`{field.default!r}`")


def _describe(field: FieldInfo) -> str:
    return _cell(field.description or "")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def top_level_markdown() -> str:
    """Return the strategy file's own keys: top level, risk, health rules, live, outputs."""
    from tradeloom.schemas.health import HealthRule
    from tradeloom.schemas.strategy import (
        FeatureSection,
        RiskSection,
        SignalSection,
        StrategyFile,
    )

    components = (
        "data",
        "features",
        "model",
        "signal",
        "allocation",
        "risk",
        "execution",
        "monitoring",
    )
    parts = [
        "### Top level\n\n",
        "The sections `data`, `features`, `model`, `signal`, `allocation` (optional), "
        "`risk.sizing`, `risk.rules`, `execution` and `monitoring` hold components: `kind:` "
        "picks one, the other keys are its own (the tables of each layer; `allocation`'s own "
        "keys are on [its page](allocation.md)).\n\n",
        fields_table(StrategyFile, skip=components),
        "\n### `features` entries (for any kind)\n\n",
        fields_table(FeatureSection, "features[].", skip=("kind",)),
        "\n### `signal` (for any kind)\n\n",
        fields_table(SignalSection, "signal.", skip=("kind",)),
        "\n### `risk`\n\n",
        fields_table(RiskSection, "risk.", skip=("sizing", "rules")),
        "\n### `health` rules\n\n",
        fields_table(HealthRule, "health[].", ()),
    ]
    return "".join(parts)


def hooks_markdown() -> str:
    """Return every hook of the hookspecs module: signature and docstring."""
    from tradeloom.plugins import hookspecs

    parts = []
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith(f"{hookspecs.PROJECT}_"):
            continue
        signature = str(inspect.signature(function)).replace("'", "")
        doc = inspect.getdoc(function) or ""
        parts.append(f"### `{name}`\n\n```python\ndef {name}{signature}: ...\n```\n\n{doc}\n\n")
    return "".join(parts)


def cli_markdown() -> str:
    """Return ``tradeloom --help`` and each command's ``--help``."""
    from tradeloom.cli.main import _parser

    parser = _parser()
    parts = [f"### `tradeloom`\n\n```text\n{_help(parser)}\n```\n\n"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts.append(f"### `tradeloom {name}`\n\n```text\n{_help(sub)}\n```\n\n")
                for inner in sub._actions:
                    if isinstance(inner, argparse._SubParsersAction):
                        for sub_name, subsub in inner.choices.items():
                            parts.append(
                                f"### `tradeloom {name} {sub_name}`\n\n"
                                f"```text\n{_help(subsub)}\n```\n\n"
                            )
    return "".join(parts)


def json_outputs_markdown() -> str:
    """Return a section per ``--json`` output: its command, what it holds and a table of
    its keys (type, whether always there, description), from its shipped JSON Schema."""
    from tradeloom.reporting.json_output import OUTPUTS, output_schema

    parts = []
    for output, (version, command) in OUTPUTS.items():
        schema = output_schema(output)
        required = set(schema.get("required", ()))
        rows = [
            f"| `{key}` | {_json_type(node)} | {'yes' if key in required else ''} | "
            f"{node.get('description', '').replace('|', '/')} |"
            for key, node in schema["properties"].items()
        ]
        parts.append(
            f"### `tradeloom.{output}/{version}`\n\n`{command}`: {schema['description']}\n\n"
            "| key | type | always | description |\n|---|---|---|---|\n"
            + "\n".join(rows)
            + f"\n\nIts JSON Schema: `tradeloom/reporting/json_schemas/{output}.schema.json`.\n\n"
        )
    return "".join(parts)


def _json_type(node: dict[str, Any]) -> str:
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " or ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "$ref" in node:
        return "object"
    if "anyOf" in node:
        names = [_json_type(n) for n in node["anyOf"]]
        return " or ".join(dict.fromkeys(t for name in names for t in name.split(" or ")))
    kind = node.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _help(parser: argparse.ArgumentParser) -> str:
    formatter = parser.formatter_class
    parser.formatter_class = lambda prog: formatter(prog, width=90)  # type: ignore[misc]
    try:
        return textwrap.dedent(parser.format_help()).strip()
    finally:
        parser.formatter_class = formatter


if __name__ == "__main__":
    for written in write_pages(Path(__file__).resolve().parent):
        print(f"wrote {written}")
