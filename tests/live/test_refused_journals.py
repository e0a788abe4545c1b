"""``tradeloom run FILE --mode paper --out DIR`` over a journal it must not continue.

The same command restarts a run from the journal in DIR. A journal of another
strategy, of another format version, or a damaged one is refused before anything
else: exit 2, one line on stderr naming the file and what is wrong, no exchange
contacted, and the journal and the strategy file kept in DIR are left as they were
(SQLite may add its ``-wal`` and ``-shm`` files beside the journal when it opens it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ccxt
import pandas as pd
import pytest

from tradeloom import __version__
from tradeloom.cli.main import main
from tradeloom.journal import FORMAT_VERSION, RunIdentity, RunStarted, SignalEvent, open_journal
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = ROOT / "examples" / "paper_binance.yaml"
NAME = "paper_binance"
TS = pd.Timestamp("2024-01-01", tz="UTC")
SQLITE_FILES = {"journal.sqlite-wal", "journal.sqlite-shm"}


def _journal(run: Path, strategy: str = NAME, *, started: bool = True) -> Path:
    """A paper run's journal of ``strategy`` (``started``: past its first start)."""
    run.mkdir()
    path = run / "journal.sqlite"
    journal = open_journal(path, RunIdentity(strategy, run.name, "paper"))
    if started:
        journal.append(
            RunStarted(
                mode="paper",
                strategy=strategy,
                source=f"{strategy}.yaml",
                tradeloom=__version__,
                wall_time=TS,
                run_key="0badc0de",
                capital=10_000.0,
                document={},
            )
        )
    for i in range(40):
        journal.append(
            SignalEvent(bar=i, timestamp=TS, direction=1, confidence=0.5, probability=0.75)
        )
    journal.close()
    (run / "strategy.yaml").write_text(f"name: {strategy}\n", encoding="utf-8")
    return path


def _unlocked(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
        db.execute(f'DROP TRIGGER "{trigger}"')
    return db


def _another_strategy(run: Path) -> str:
    _journal(run, "someone_else")
    return (
        f"{run}: this run directory holds a paper run of 'someone_else'; it cannot continue "
        f"as a paper run of '{NAME}' (use another --out)"
    )


def _another_strategy_that_never_started(run: Path) -> str:
    path = _journal(run, "someone_else", started=False)
    return (
        f"{path}: the journal of a paper run of 'someone_else' (run {run.name}); it cannot "
        f"continue as a paper run of '{NAME}': use another folder; nothing was sent"
    )


def _a_newer_format(run: Path) -> str:
    path = _journal(run)
    with _unlocked(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    db.close()
    return (
        f"{path}: a journal of format 99; this tradeloom ({__version__}) reads format "
        f"{FORMAT_VERSION}: upgrade tradeloom to read it; refusing to restart: nothing was sent"
    )


def _format_1(run: Path) -> str:
    run.mkdir()
    path = run / "journal.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, payload TEXT)")
    db.close()
    (run / "strategy.yaml").write_text(f"name: {NAME}\n", encoding="utf-8")
    return (
        f"{path}: a journal of format 1 (tradeloom before the typed journal); this tradeloom "
        f"reads format {FORMAT_VERSION}: start a new run in another folder, or read it with "
        "the tradeloom that wrote it; refusing to restart: nothing was sent"
    )


def _truncated(run: Path) -> str:
    path = _journal(run)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return (
        f"{path}: damaged journal (SQLite: database disk image is malformed); refusing to "
        "restart: nothing was sent"
    )


def _offline(settings: dict[str, Any]) -> Any:
    """A real ccxt client that fails any request: the refusal comes before the first one."""
    client = ccxt.binance(dict(settings))

    def fetch(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the exchange was contacted")

    client.fetch = fetch
    return client


@pytest.mark.parametrize(
    "make",
    [
        _another_strategy,
        _another_strategy_that_never_started,
        _a_newer_format,
        _format_1,
        _truncated,
    ],
)
def test_a_journal_that_cannot_be_continued_is_refused_in_one_line_and_kept(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], str],
) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    line = make(run)
    kept = {p.name: p.read_bytes() for p in run.iterdir()}

    with use_client_factory("binance", _offline), use_pro_client_factory("binance", None):
        code = main(["run", str(STRATEGY), "--mode", "paper", "--out", str(run)])

    assert (code, capsys.readouterr()) == (2, ("", line + "\n"))
    now = {p.name: p.read_bytes() for p in run.iterdir()}
    assert set(now) - set(kept) <= SQLITE_FILES
    assert {name: now[name] for name in kept} == kept
