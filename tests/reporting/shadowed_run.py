"""A paper run with two challengers in shadow, and what a page shows of its books: the
report's and the console's tables hold each figure (``data-value``) beside its text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.live.test_challengers import CHALLENGERS, play, strategy

BOOK_CELLS = (
    "Array.from(document.querySelectorAll('#books tr')).slice(1).map(function (r) {"
    " return Array.from(r.children).map(function (c) {"
    " return [c.innerText, c.dataset.value === undefined ? null : c.dataset.value]; }); })"
)
"""Each book's row as ``[[text, data-value], ...]`` (the name's cell has no value)."""


def make_shadowed_run(folder: Path) -> Path:
    """Run the champion with two challengers on paper into ``folder``; return its run."""
    code, run = play(folder, strategy(challengers=CHALLENGERS))
    assert code == 0
    return run


def make_plain_run(folder: Path) -> Path:
    """Run the champion alone on paper into ``folder``; return its run."""
    code, run = play(folder, strategy())
    assert code == 0
    return run


def shown_values(cells: list[list[Any]]) -> list[float | None]:
    """The figures of a row's cells (after its name), as the page holds them."""
    return [None if value in (None, "") else float(value) for _, value in cells[1:]]
