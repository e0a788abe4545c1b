"""The journal's tail record: a cut tail or another run's journal, caught in one line.

``journal verify``, ``status``, ``report`` and a restart (reopening the journal to
append) each refuse, with exit 2 and one line naming the journal: the last row
deleted, the last 20 deleted, another run's journal copied over this run's. An
intact journal, and one whose last commit outran its record (a crash between the
two), pass.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.journal import (
    JournalDamaged,
    RunIdentity,
    SignalEvent,
    open_journal,
    verify,
)
from tradeloom.journal.schema import schema_of
from tradeloom.journal.tail import read_tail, tail_path
from tradeloom.runner.cli import main

TS = pd.Timestamp("2024-01-01", tz="UTC")
ROWS = 30


def _run_dir(folder: Path, rows: int = ROWS) -> Path:
    folder.mkdir()
    journal = open_journal(folder / "journal.sqlite", RunIdentity("s", folder.name, "paper"))
    for i in range(rows):
        journal.append(
            SignalEvent(bar=i, timestamp=TS, direction=1, confidence=0.5, probability=0.5)
        )
        journal.flush()
    journal.close()
    return folder


def _delete_last(path: Path, rows: int) -> None:
    table = schema_of("signal").table
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TRIGGER {table}_no_delete")
        db.execute(f"DELETE FROM {table} WHERE seq > (SELECT MAX(seq) FROM {table}) - {rows}")


def _refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    return err.rstrip("\n")


COMMANDS = (["journal", "verify"], ["status"], ["report"])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1])
@pytest.mark.parametrize("cut", [1, 20])
def test_a_cut_tail_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], cut: int
) -> None:
    run = _run_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    assert main(["journal", "verify", str(run)]) == 0
    _delete_last(path, cut)
    lost = f"{cut} row{'s' if cut != 1 else ''} lost"
    assert _refused([*command, str(run)], capsys) == (
        f"{path}: its tail was cut: it holds {ROWS - cut} rows, its tail record says "
        f"{ROWS} were committed ({lost})"
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1])
def test_another_runs_journal_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    mine, theirs = _run_dir(tmp_path / "mine"), _run_dir(tmp_path / "theirs", rows=40)
    path = mine / "journal.sqlite"
    shutil.copyfile(theirs / "journal.sqlite", path)  # the tail record stays mine
    assert _refused([*command, str(mine)], capsys) == (
        f"{path}: another run's journal (run theirs of 's', paper); this folder's tail "
        "record names run mine of 's', paper: put the run's own journal back"
    )


def test_a_restart_refuses_a_cut_journal_and_appends_to_an_intact_one(tmp_path: Path) -> None:
    run = _run_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    identity = RunIdentity("s", "run", "paper")
    journal = open_journal(path, identity)  # intact: reopened to append
    journal.append(SignalEvent(bar=30, timestamp=TS, direction=1, confidence=0.5, probability=0.5))
    journal.close()
    record = read_tail(path)
    assert record is not None and (record.rows, record.head) == (ROWS + 1, verify(path).head)
    _delete_last(path, 1)
    with pytest.raises(JournalDamaged, match=r"its tail was cut: it holds 30 rows, .* says 31"):
        open_journal(path, identity)


def test_a_journal_ahead_of_its_record_passes_and_one_behind_its_head_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crash between a commit and the record's write leaves the journal ahead: fine."""
    run = _run_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    saved = tail_path(path).read_bytes()
    journal = open_journal(path, RunIdentity("s", "run", "paper"))
    journal.append(SignalEvent(bar=30, timestamp=TS, direction=1, confidence=0.5, probability=0.5))
    journal.close()
    tail_path(path).write_bytes(saved)  # the record of 30 rows, the journal of 31
    assert verify(path).rows == ROWS + 1
    # the record's head no longer matches row 30: rows replaced, not appended
    record = {**json.loads(saved), "head": "0" * 16}
    tail_path(path).write_text(json.dumps(record))
    message = _refused(["journal", "verify", str(run)], capsys)
    assert message.startswith(f"{path}: row 30 does not match its tail record (hash ")
    assert message.endswith("): its last rows were replaced")
