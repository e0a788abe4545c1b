"""The test tree's own rule. Lint, format and type checks are CI steps of their own.

`ruff check .`, `ruff format --check .` and `mypy tradeloom` run in `.ci/run` before
the suite (they took a minute of the suite's two cores inside pytest); run them
yourself before a commit.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
forkserver_probe_prefix = "_forkserver_probe_"


def _bare_imports(path: Path, helpers: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n in helpers]
    return found


def test_test_folders_are_packages_and_helpers_are_imported_by_path() -> None:
    """Every folder of tests is a package and a helper is imported by its path
    (``from tests.live.live_emulated import ...``), never by a bare name that only a folder
    on ``sys.path`` resolves; the fixture plugins are imported by name, as a strategy's
    ``plugins:`` are."""
    files = [
        p
        for p in sorted((ROOT / "tests").rglob("*.py"))
        # test_forkserver.py writes its probe scripts beside the tests (the fork server runs
        # only those) and removes them: one may vanish between this listing and its read
        if "__pycache__" not in p.parts and not p.name.startswith(forkserver_probe_prefix)
    ]
    folders = sorted({p.parent for p in files})
    assert [str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file()] == []
    plugins = {p.stem for p in (ROOT / "tests" / "fixtures" / "plugins").glob("*.py")}
    helpers = {p.stem for p in files} - plugins - {"__init__", "conftest"}
    assert [line for path in files for line in _bare_imports(path, helpers)] == []
