"""The console's run page of a paper run with challengers: its API answer holds the books
as ``tradeloom status`` reads them (`tradeloom.reporting.book_figures`), and the page
shows them in a real browser, each figure the function's (and no books section for a run
without challengers)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import structlog
from starlette.testclient import TestClient

from tests.console.console_runs import TOKENS
from tests.console.served import served
from tests.reporting.browser import Tab, chromium, drive
from tests.reporting.shadowed_run import (
    BOOK_CELLS,
    make_plain_run,
    make_shadowed_run,
    shown_values,
)
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions
from tradeloom.engine.status import read_run

READ = {"Authorization": f"Bearer {TOKENS.read}"}


@pytest.fixture(autouse=True)
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs: ``shadowed/run`` (two challengers) and ``plain/run`` (none)."""
    folder = tmp_path_factory.mktemp("challengers-console")
    make_shadowed_run(folder / "shadowed")
    make_plain_run(folder / "plain")
    return folder


def test_the_run_answer_holds_the_books(root: Path) -> None:
    client = TestClient(create_app([root], TOKENS, Sessions()))
    schema = client.get("/api/v1/openapi.json", headers=READ).json()["components"]["schemas"]
    assert schema["Status"]["properties"]["books"]["items"] == {"$ref": "#/components/schemas/Book"}
    detail = client.get("/api/v1/runs/0/shadowed/run", headers=READ).json()
    books = read_run(root / "shadowed" / "run").status.books
    assert [b["name"] for b in detail["status"]["books"]] == ["champion", "logit", "small"]
    assert detail["status"]["books"] == [asdict(b) for b in books]
    assert set(schema["Book"]["properties"]) == set(asdict(books[0]))
    plain = client.get("/api/v1/runs/0/plain/run", headers=READ).json()
    assert plain["status"]["books"] == []


@pytest.mark.slow
def test_the_run_page_shows_the_books(root: Path, tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sessions = Sessions()
    login = f"/login?code={sessions.login_code('read')}"
    with served(create_app([root], TOKENS, sessions), {}) as console:
        base = f"http://127.0.0.1:{console.port}"

        async def steps(tab: Tab) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            await tab.navigate(base + login)
            for run in ("shadowed", "plain"):
                await tab.navigate(f"{base}/run/0/{run}/run")
                await tab.wait_for("document.getElementById('equity-value') !== null", 60)
                seen[run] = await tab.evaluate(
                    f"[document.getElementById('books-box').hidden, {BOOK_CELLS}, "
                    "[...document.querySelectorAll('#books th')].map(h => h.innerText)]"
                )
                await tab.screenshot(tmp_path / f"{run}-run-page.png")
            return seen

        seen, visit = drive(steps, timeout=120)
    assert visit.errors == []
    hidden, rows, head = seen["shadowed"]
    assert not hidden
    assert head == [
        "book", "from bar", "bars", "equity", "return", "Sharpe", "max drawdown", "fills",
        "turnover", "AUC", "ECE",
    ]  # fmt: skip
    books = read_run(root / "shadowed" / "run").status.books
    assert [r[0][0] for r in rows] == [b.name for b in books]
    for row, b in zip(rows, books, strict=True):
        wanted = [
            b.first_bar, b.bars, b.equity, b.total_return, b.sharpe, b.max_drawdown,
            b.fills, b.turnover, b.auc, b.ece,
        ]  # fmt: skip
        assert shown_values(row) == wanted
        assert [text for text, _ in row[1:]] == _texts(b)
    assert seen["plain"][0] is True  # no challengers: no section


def _texts(b: Any) -> list[str]:
    """The row's texts as the page rounds them (JavaScript's toFixed and en-US grouping)."""

    def fixed(v: float | None, digits: int, suffix: str = "") -> str:
        return "-" if v is None else f"{v:.{digits}f}{suffix}"

    def pct(v: float | None, sign: bool = False) -> str:
        return "-" if v is None else ("+" if sign and v >= 0 else "") + f"{100 * v:.2f}%"

    return [
        fixed(b.first_bar, 0), fixed(b.bars, 0),
        "-" if b.equity is None else f"{b.equity:,.2f}",
        pct(b.total_return, sign=True), fixed(b.sharpe, 2), pct(b.max_drawdown),
        fixed(b.fills, 0), fixed(b.turnover, 2, "x"), fixed(b.auc, 3), fixed(b.ece, 4),
    ]  # fmt: skip
