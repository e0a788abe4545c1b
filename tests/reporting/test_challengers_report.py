"""report.html of a paper run with challengers: a champion-against-challengers panel (the
books' equity overlaid, their figures side by side) whose numbers are those of
`tradeloom.reporting.book_figures`, the very ones ``tradeloom status`` shows; a run
without challengers has no such panel, and its page is as before."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from tests.reporting.browser import chromium, visit
from tests.reporting.page_checks import ARTIFACTS, CHARTS, RENDERED, by_title
from tests.reporting.shadowed_run import (
    BOOK_CELLS,
    make_plain_run,
    make_shadowed_run,
    shown_values,
)
from tradeloom.engine.status import read_run
from tradeloom.reporting.books_view import BOOK_COLUMNS
from tradeloom.reporting.report import render_report, report_panels, write_report
from tradeloom.reporting.run_data import load_run

pytestmark = pytest.mark.xdist_group("report_runs")

TITLE = "Champion and challengers: equity"


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shadowed_run(tmp_path_factory.mktemp("shadowed-report"))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_plain_run(tmp_path_factory.mktemp("plain-report"))


def test_the_report_reads_the_books_status_shows(shadowed: Path) -> None:
    run = load_run(shadowed)
    assert run.books is not None
    figures = run.books.figures
    assert [b.name for b in figures] == ["champion", "logit", "small"]
    assert [asdict(b) for b in figures] == [asdict(b) for b in read_run(shadowed).status.books]
    assert all(b.ece is not None and b.auc is not None for b in figures)
    panels = report_panels(run)
    assert [len(t["x"]) for t in panels["challengers"].data] == [b.bars for b in figures]
    page = render_report(run)
    assert page.count("<section id='books'>") == 1


def test_a_run_without_challengers_has_no_books_panel(plain: Path) -> None:
    run = load_run(plain)
    assert run.books is None
    assert "challengers" not in report_panels(run)
    page = render_report(run)
    assert "id='books'" not in page and TITLE not in page


@pytest.mark.slow
def test_the_page_shows_the_figures_of_the_books(shadowed: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    page = write_report(shadowed)
    check = f"({{charts: {CHARTS}, books: {BOOK_CELLS}}})"
    seen = visit(page, check, wait_for=RENDERED, screenshot=ARTIFACTS / "challengers-report.png")
    assert seen.errors == []
    chart = by_title(seen.result["charts"])[TITLE]
    assert chart["rendered"] and chart["legend"] == ["champion", "logit", "small"]
    assert chart["lines"] == 3
    figures = load_run(shadowed).books
    assert figures is not None
    rows = seen.result["books"]
    assert [r[0][0] for r in rows] == ["champion", "logit", "small"]
    for row, book in zip(rows, figures.figures, strict=True):
        wanted = [getattr(book, key) for key, _, _ in BOOK_COLUMNS]
        assert shown_values(row)[: len(wanted)] == wanted
        texts = [text for text, _ in row[1 : len(wanted) + 1]]
        assert texts == [
            "-" if v is None else shown(v)
            for v, (_, _, shown) in zip(wanted, BOOK_COLUMNS, strict=True)
        ]
