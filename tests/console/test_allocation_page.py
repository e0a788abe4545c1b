"""The console's run page of an allocating run: its API answer holds the last rebalance and
target against held weight per symbol, as ``tradeloom status`` reads them, and the page
shows them in a real browser (and nothing of it for a run that does not allocate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from starlette.testclient import TestClient

from tests.console.console_runs import ONE, TOKENS, backtest
from tests.console.served import served
from tests.reporting.allocated_run import SYMBOLS, make_allocated_run
from tests.reporting.browser import Tab, chromium, drive
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions
from tradeloom.engine.status_rows import read_status

READ = {"Authorization": f"Bearer {TOKENS.read}"}


@pytest.fixture(autouse=True)
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs: ``run`` (allocates) and ``one`` (one market, no allocation)."""
    folder = tmp_path_factory.mktemp("allocated-console")
    make_allocated_run(folder)
    (folder / "one.yaml").write_text(ONE, encoding="utf-8")
    backtest(folder / "one.yaml", folder / "one")
    return folder


def test_the_run_answer_holds_the_last_rebalance(root: Path) -> None:
    client = TestClient(create_app([root], TOKENS, Sessions()))
    document = client.get("/api/v1/openapi.json", headers=READ).json()
    schema = document["components"]["schemas"]
    assert "allocation" in schema["Status"]["properties"]
    detail = client.get("/api/v1/runs/0/run", headers=READ).json()
    shown = detail["status"]["allocation"]
    status = read_status(root / "run")
    assert status.allocation is not None
    assert shown["allocator"] == "risk_parity" == status.allocation.allocator
    assert shown["bar"] == status.allocation.bar
    assert shown["rebalances"] == status.allocation.rebalances
    assert [w["symbol"] for w in shown["weights"]] == SYMBOLS
    for w, mine in zip(shown["weights"], status.allocation.weights, strict=True):
        assert (w["target"], w["held"]) == (mine.target, mine.held)
    plain = client.get("/api/v1/runs/0/one", headers=READ).json()
    assert plain["status"]["allocation"] is None


@pytest.mark.slow
def test_the_run_page_shows_target_against_held(root: Path, tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sessions = Sessions()
    login = f"/login?code={sessions.login_code('read')}"
    status = read_status(root / "run")
    assert status.allocation is not None
    with served(create_app([root], TOKENS, sessions), {}) as console:
        base = f"http://127.0.0.1:{console.port}"

        async def steps(tab: Tab) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            await tab.navigate(base + login)
            for run in ("run", "one"):
                await tab.navigate(f"{base}/run/0/{run}")
                await tab.wait_for("document.getElementById('equity-value') !== null", 60)
                seen[run] = await tab.evaluate(
                    "[document.getElementById('allocation-box').hidden, "
                    "document.getElementById('allocation-last').innerText, "
                    "[...document.querySelectorAll('#allocation tr')].map("
                    "r => [...r.children].map(c => c.innerText))]"
                )
                await tab.screenshot(tmp_path / f"{run}-run-page.png")
            return seen

        seen, visit = drive(steps, timeout=120)
    assert visit.errors == []
    hidden, last, rows = seen["run"]
    a = status.allocation
    assert not hidden
    assert last == (
        f"risk_parity, last rebalance bar {a.bar} {a.time}: "
        + ("ok" if a.status == "ok" else f"{a.status} ({a.message}): the last weights hold")
        + f"; {a.rebalances} rebalances, {a.kept} kept the last weights"
    )
    assert rows[0] == ["symbol", "target", "held now"]
    shown = {r[0]: r[1:] for r in rows[1:]}
    assert sorted(shown) == sorted(SYMBOLS)
    for w in a.weights:
        assert w.target is not None and w.held is not None
        assert shown[w.symbol] == [f"{w.target * 100:+.2f}%", f"{w.held * 100:+.2f}%"]
    assert seen["one"][0] is True  # no allocation: no section
