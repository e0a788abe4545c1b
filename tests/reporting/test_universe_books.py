"""A paper run over a universe with challengers: each book's AUC and ECE are those of its
model's predictions of every symbol pooled (`tradeloom.reporting.book_figures`),
recomputed here from the journal's rows with scikit-learn, and ``tradeloom status`` (text
and ``--json``), the console's run answer and report.html show those very numbers."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import structlog
from sklearn.metrics import roc_auc_score
from starlette.testclient import TestClient

from tests.console.console_runs import TOKENS
from tests.live.test_challengers import CHALLENGERS, play, strategy, universe
from tests.reporting.test_book_figures import _ece
from tradeloom.cli.main import main
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions
from tradeloom.engine.status import read_run
from tradeloom.journal import read_rows
from tradeloom.reporting.report import render_report
from tradeloom.reporting.run_data import load_run

HORIZON = 3
"""The strategy's label horizon (`tests.live.test_challengers.MODEL`)."""


@pytest.fixture(autouse=True)
def cli_logging() -> object:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("universe-books")
    saved = structlog.get_config()
    try:
        code, run = play(folder / "runs", universe(strategy(challengers=CHALLENGERS)), 16)
    finally:
        structlog.configure(**saved)
    assert code == 0
    return run


def pooled(run: Path, book: str) -> tuple[np.ndarray, np.ndarray]:
    """The book's predictions whose label is known, every symbol's, from the journal's
    rows: a symbol's probability at its k-th bar of the book against whether its close at
    its (k + horizon)-th is higher."""
    journal = run / "journal.sqlite"
    symbols = [r.symbol for r in read_rows(journal, ["warm_up"])]
    close = {(r.symbol, r.bar): r.values["close"] for r in read_rows(journal, ["live_bar"])}
    if book == "champion":
        predicted = {
            (r.symbol, r.bar): r.values["probability"] for r in read_rows(journal, ["live_bar"])
        }
    else:
        predicted = {
            (symbol, r.bar): p
            for r in read_rows(journal, ["challenger_bar"])
            if r.values["challenger"] == book
            for symbol, p in zip(symbols, r.values["probabilities"], strict=True)
        }
    bars = sorted({bar for _, bar in predicted})
    scores, ups = [], []
    for symbol in symbols:
        own = [bar for bar in bars if (symbol, bar) in close]
        for k in range(len(own) - HORIZON):
            p = predicted.get((symbol, own[k]), math.nan)
            if not math.isnan(p):
                scores.append(p)
                ups.append(close[(symbol, own[k + HORIZON])] > close[(symbol, own[k])])
    return np.array(scores), np.array(ups)


def test_each_books_auc_and_ece_pool_the_symbols_predictions(run: Path) -> None:
    books = read_run(run).status.books
    assert [b.name for b in books] == ["champion", "logit", "small"]
    symbols = {r.symbol for r in read_rows(run / "journal.sqlite", ["live_bar"])}
    assert symbols == {"BTC/USDT", "ETH/USDT"}
    for book in books:
        scores, up = pooled(run, book.name)
        assert len(scores) == 2 * (book.bars - HORIZON)  # both symbols', every bar
        assert book.auc == pytest.approx(roc_auc_score(up, scores), rel=1e-12)
        assert book.ece == pytest.approx(_ece(scores, up.astype(float)), rel=1e-12)


def test_status_the_console_and_the_report_show_them(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    books = read_run(run).status.books
    capsys.readouterr()
    assert main(["status", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["books"]
    assert [(b["auc"], b["ece"]) for b in shown] == [(b.auc, b.ece) for b in books]
    assert main(["status", str(run)]) == 0
    text = capsys.readouterr().out
    for book in books:
        assert book.auc is not None and book.ece is not None
        line = next(x for x in text.splitlines() if f" {book.name} " in x)
        assert f"{book.auc:.3f}" in line and f"{book.ece:.4f}" in line
    client = TestClient(create_app([run.parent], TOKENS, Sessions()))
    detail = client.get(
        "/api/v1/runs/0/run", headers={"Authorization": f"Bearer {TOKENS.read}"}
    ).json()
    assert detail["status"]["books"] == [asdict(b) for b in books]
    page = render_report(load_run(run))
    for book in books:
        row = page[page.index(f"<tr data-book='{book.name}'>") :].split("</tr>")[0]
        assert f"data-value='{book.auc!r}'" in row and f"data-value='{book.ece!r}'" in row
