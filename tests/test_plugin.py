"""``tradeloom.plugin``, the one module plugin authors import, and those who import it.

The example plugin package and the README's code are what authors copy: they must
import ``tradeloom.plugin`` and no other part of tradeloom (the README's test code may
also import ``tradeloom.testing``, the other public module).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
from pathlib import Path

import pytest

import tradeloom.plugin

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tradeloom-example-plugin"
PUBLIC = {"tradeloom", "tradeloom.plugin", "tradeloom.testing"}  # tradeloom: the Python API


def tradeloom_imports(source: str) -> list[str]:
    """Return the tradeloom modules ``source`` imports from, wherever the import stands."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return sorted({name for name in found if name.split(".")[0] == "tradeloom"})


def _attribute_docstring(module: str, name: str) -> str | None:
    # A constant's docstring is the string literal right after its assignment.
    path = ROOT / Path(*module.split(".")).with_suffix(".py")
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for statement, following in itertools.pairwise(body):
        targets = (
            (statement.targets if isinstance(statement, ast.Assign) else [statement.target])
            if isinstance(statement, ast.Assign | ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                return str(following.value.value)
            return None
    return None


def _sources() -> dict[str, str]:
    # where tradeloom.plugin imports each name from
    tree = ast.parse(Path(tradeloom.plugin.__file__).read_text(encoding="utf-8"))
    return {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


@pytest.mark.parametrize("name", tradeloom.plugin.__all__)
def test_every_public_name_resolves_and_is_documented(name: str) -> None:
    value = getattr(tradeloom.plugin, name)

    if inspect.isclass(value) or inspect.isfunction(value):
        doc = value.__doc__ or ""
        # a dataclass without a docstring gets its signature as one
        assert doc.strip() and not doc.startswith(f"{name}("), f"{name} has no docstring"
    else:
        doc = _attribute_docstring(_sources()[name], name)
        assert doc, f"{name} ({type(value).__name__}) has no docstring where it is defined"


def test_the_public_names_are_exactly_what_the_module_imports() -> None:
    imported = set(_sources()) - {"annotations"}
    assert sorted(tradeloom.plugin.__all__) == sorted(imported)
    assert tradeloom.plugin.__doc__ is not None
    assert "stable" in tradeloom.plugin.__doc__ and "deprecation" in tradeloom.plugin.__doc__


def test_the_example_plugin_imports_only_tradeloom_plugin() -> None:
    files = sorted(EXAMPLE.rglob("*.py"))
    assert len(files) >= 4

    imports = {
        str(path.relative_to(EXAMPLE)): tradeloom_imports(path.read_text(encoding="utf-8"))
        for path in files
    }

    assert {m for found in imports.values() for m in found} == {"tradeloom.plugin"}
    assert imports["tradeloom_example/plugin.py"] == ["tradeloom.plugin"]


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_readme_code_imports_only_the_public_modules() -> None:
    # the plugin guide moved from the README to the docs site (issue 13)
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), EXAMPLE / "README.md"]
    blocks = [block for page in pages for block in _python_blocks(page)]
    assert len(blocks) >= 2

    imported = [tradeloom_imports(block) for block in blocks]

    assert [set(modules) - PUBLIC for modules in imported] == [set() for _ in blocks]
    guide = next(m for b, m in zip(blocks, imported, strict=True) if "tradeloom_components" in b)
    assert guide == ["tradeloom.plugin"]
