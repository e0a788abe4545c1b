"""One schema set for every kind of file: strategy, portfolio and sweep files each have a
JSON Schema (`tradeloom schema --kind KIND`), published with the docs (docs/schemas/),
named by the first line of every shipped file, and every shipped file of every kind
validates against its kind's schema with no error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tradeloom.cli.file_schemas import (
    FILE_KINDS,
    file_json_schema,
    file_kind,
    modeline,
    published_schemas,
    schema_file,
)
from tradeloom.cli.main import main
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas.json_schema import to_draft7

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
SHIPPED = sorted(ROOT.glob("strategies/**/*.yaml")) + sorted(ROOT.glob("examples/**/*.yaml"))
EXAMPLE_PLUGIN = ROOT / "examples" / "tradeloom-example-plugin"
NEEDS_THE_EXAMPLE_PLUGIN = {"examples/example_strategy.yaml", "examples/leaky_strategy.yaml"}
"""Files that use the example plugin's components: the published schema (the built-ins')
would refuse them, so they name none; they validate against the schema with it loaded."""


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _published(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / schema_file(kind)).read_text())  # type: ignore[arg-type]
    return schema


def test_the_published_schemas_are_the_built_ins_now() -> None:
    fresh = published_schemas(load_plugins(entry_points=False).registry)
    assert sorted(fresh) == sorted(p.name for p in SCHEMAS.glob("*.json"))
    stale = [name for name, text in fresh.items() if (SCHEMAS / name).read_text() != text]
    assert stale == [], f"{stale}: run python docs/hooks.py"
    for kind in FILE_KINDS:
        jsonschema.Draft7Validator.check_schema(_published(kind))


def test_every_kind_is_shipped_and_names_its_schema_in_its_first_line() -> None:
    kinds = {}
    for path in SHIPPED:
        kind = file_kind(yaml.safe_load(path.read_text()))
        kinds.setdefault(kind, []).append(_name(path))
        first = path.read_text().splitlines()[0]
        if _name(path) in NEEDS_THE_EXAMPLE_PLUGIN:
            assert not first.startswith("# yaml-language-server"), _name(path)
            continue
        folder = os.path.relpath(SCHEMAS, path.parent)
        assert first == modeline(kind, folder), _name(path)
        assert (path.parent / folder / schema_file(kind)).is_file()
    assert set(kinds) == set(FILE_KINDS), kinds
    assert len(kinds["sweep"]) >= 2 and len(kinds["portfolio"]) >= 3


@pytest.fixture(scope="module")
def with_the_example_plugin() -> dict[str, Any]:
    """The strategy files' schema with the example plugin's components."""
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(EXAMPLE_PLUGIN))
    try:
        registry = load_plugins(["tradeloom_example.plugin"], entry_points=False).registry
        return to_draft7(file_json_schema("strategy", registry))
    finally:
        patch.undo()


@pytest.mark.parametrize("path", SHIPPED, ids=_name)
def test_every_shipped_file_is_valid_under_its_kinds_schema(
    path: Path, with_the_example_plugin: dict[str, Any]
) -> None:
    document = yaml.safe_load(path.read_text())
    kind = file_kind(document)
    schema = _published(kind)
    if _name(path) in NEEDS_THE_EXAMPLE_PLUGIN:
        assert list(jsonschema.Draft7Validator(schema).iter_errors(document)) != []
        schema = with_the_example_plugin
    errors = jsonschema.Draft7Validator(schema).iter_errors(document)
    assert [f"{e.json_path}: {e.message}" for e in errors] == []


PORTFOLIO = "examples/two_strategies.yaml"
COMPOSITE = "examples/sweep_files/composite.sweep.yaml"
PARETO = "examples/sweep_files/pareto.sweep.yaml"


@pytest.mark.parametrize(
    ("kind", "path", "edit", "where"),
    [
        ("portfolio", PORTFOLIO, ("initial_cash: 100000", "initial_cash: -1"), "$.initial_cash"),
        ("portfolio", PORTFOLIO, ("name: two_strategies", "nam: x"), "$ $"),
        ("sweep", COMPOSITE, ("strategy: ", "strategies_file: "), "$ $"),
        ("sweep", PARETO, ("search: optuna", "search: bayes"), "$.search"),
    ],
)
def test_a_mistake_in_a_portfolio_or_a_sweep_file_is_flagged(
    kind: str, path: str, edit: tuple[str, str], where: str
) -> None:
    text = (ROOT / path).read_text()
    assert edit[0] in text
    document = yaml.safe_load(text.replace(*edit, 1))
    assert file_kind(document) == kind
    errors = jsonschema.Draft7Validator(_published(kind)).iter_errors(document)
    assert [e.json_path for e in errors] == where.split()  # a key missing, one unknown


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_schema_prints_each_kind(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["schema", "--kind", kind]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert printed == to_draft7(file_json_schema(kind, load_plugins().registry))
    assert printed["title"] == f"tradeloom {kind}"


@pytest.mark.parametrize(("leg", "valid"), [("20", True), ("0.5", True), ("-1", False)])
def test_a_latency_leg_in_bare_milliseconds_is_what_the_validator_takes(
    leg: str, valid: bool
) -> None:
    # the validator takes `cancel: 20` for {kind: fixed, ms: 20}: so does the editor's schema
    text = (ROOT / "examples/order_book_fills.yaml").read_text()
    fixed = "cancel: {kind: fixed, ms: 20}"
    assert fixed in text
    document = yaml.safe_load(text.replace(fixed, f"cancel: {leg}", 1))
    errors = list(jsonschema.Draft7Validator(_published("strategy")).iter_errors(document))
    assert (errors == []) is valid, [e.message for e in errors]
