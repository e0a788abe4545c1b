"""The test tree's own rule. Lint, format and type checks are CI steps of their own.

`ruff check .`, `ruff format --check .` and `mypy tradeloom` run in `.ci/run` before
the suite (they took a minute of the suite's two cores inside pytest); run them
yourself before a commit.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_test_modules_have_unique_names() -> None:
    """The test folders are not packages: two test files of one name collide at collection."""
    names: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        names.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}
