"""The journal's tail record and owner: a cut tail or another run's journal, caught in one line.

``journal verify``, ``status``, ``report`` and a restart (reopening the journal to
append) each refuse, with exit 2 and one line naming the journal: the last row
deleted, the last 20 deleted, a middle row deleted, another run's journal copied over
this run's (alone, or with its tail record from a folder of the same name and strategy
file: the run folder's key tells them apart), the folder's key deleted. An intact
journal, one whose last commit outran its record (a crash between the two), and a run
folder moved whole, pass.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.cli.main import main
from tradeloom.journal import (
    JournalDamaged,
    RunIdentity,
    SignalEvent,
    open_journal,
    open_store,
    verify,
)
from tradeloom.journal.owner import read_folder_key, strategy_digest
from tradeloom.journal.schema import schema_of
from tradeloom.journal.tail import read_tail, tail_path
from tradeloom.reporting.outputs import write_strategy

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


def _strategy_run(folder: Path, document: dict[str, object], rows: int = ROWS) -> Path:
    """A run folder as a run leaves it: its journal bound to the strategy.yaml beside it."""
    folder.mkdir(parents=True)
    identity = RunIdentity("s", folder.name, "paper", strategy_digest(document))
    journal = open_journal(folder / "journal.sqlite", identity)
    for i in range(rows):
        journal.append(
            SignalEvent(bar=i, timestamp=TS, direction=1, confidence=0.5, probability=0.5)
        )
    journal.close()
    write_strategy(folder, document)
    return folder


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1])
def test_another_strategys_journal_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Same strategy name, run id and mode, another file: the chain's first record differs."""
    mine = _strategy_run(tmp_path / "a" / "run", {"name": "s", "risk": {"fraction": 0.5}})
    theirs = _strategy_run(tmp_path / "b" / "run", {"name": "s", "risk": {"fraction": 0.9}})
    assert main(["journal", "verify", str(mine)]) == 0
    path = mine / "journal.sqlite"
    for name in ("journal.sqlite", "journal.sqlite.tail"):  # journal and record both copied
        shutil.copyfile(theirs / name, mine / name)
    message = _refused([*command, str(mine)], capsys)
    assert message.startswith(f"{path}: its first record names strategy sha256 ")
    assert message.endswith(
        "another strategy's journal, or the run's strategy file was replaced; put the run's "
        "own journal and strategy.yaml back"
    )
    with pytest.raises(JournalDamaged, match="another strategy's journal"):  # a restart
        open_journal(path, RunIdentity("s", "run", "paper"))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1])
def test_a_deleted_tail_record_is_refused_when_the_journal_kept_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Rows cut and the record deleted with them: the journal's meta says it kept one."""
    run = _run_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    _delete_last(path, 5)
    tail_path(path).unlink()
    assert _refused([*command, str(run)], capsys) == (
        f"{path}: its tail record journal.sqlite.tail is missing (the journal was written "
        f"with one; it holds {ROWS - 5} rows): rows may have been cut with it; put the run's "
        "own record back"
    )
    with pytest.raises(JournalDamaged, match=r"its tail record journal\.sqlite\.tail is missing"):
        open_journal(path, RunIdentity("s", "run", "paper"))


def test_a_journal_from_before_tail_records_and_strategy_hashes_still_opens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its meta has neither key: no record is expected, no strategy compared."""
    from tradeloom.journal import sqlite as store

    written = store._meta_entries
    monkeypatch.setattr(store, "_meta_entries", lambda identity: written(identity)[:4])
    run = _strategy_run(tmp_path / "run", {"name": "s"})
    monkeypatch.undo()
    path = run / "journal.sqlite"
    tail_path(path).unlink()
    write_strategy(run, {"name": "s", "edited": True})
    with sqlite3.connect(path) as db:
        assert dict(db.execute("SELECT key, value FROM meta")).keys() == {
            "format_version",
            "strategy",
            "run_id",
            "mode",
            "tradeloom",
        }
    for command in COMMANDS[:2]:
        capsys.readouterr()
        assert main([*command, str(run)]) == 0, capsys.readouterr().err
    open_journal(path, RunIdentity("s", "run", "paper")).close()
    assert verify(path).rows == ROWS


def _folder_run(folder: Path, rows: int = ROWS) -> Path:
    """A run folder as `open_store` makes it: its journal bound to its ``folder.key``."""
    folder.mkdir(parents=True)
    document = {"name": "s"}
    journal = open_store(folder, RunIdentity("s", folder.name, "paper", strategy_digest(document)))
    for i in range(rows):
        journal.append(
            SignalEvent(bar=i, timestamp=TS, direction=1, confidence=0.5, probability=0.5)
        )
        journal.flush()
    journal.close()
    write_strategy(folder, document)
    return folder


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1])
def test_another_runs_journal_copied_with_its_tail_record_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Same strategy file, same folder name (``runs/<name>-<mode>`` in two working
    directories), the journal and its tail record copied together: the folder's key
    is what tells the runs apart."""
    mine = _folder_run(tmp_path / "a" / "run")
    theirs = _folder_run(tmp_path / "b" / "run", rows=40)
    assert main(["journal", "verify", str(mine)]) == 0
    for name in ("journal.sqlite", "journal.sqlite.tail"):
        shutil.copyfile(theirs / name, mine / name)
    mine_key, their_key = read_folder_key(mine), read_folder_key(theirs)
    assert mine_key is not None and their_key is not None and mine_key != their_key
    path = mine / "journal.sqlite"
    line = (
        f"{path}: another run's journal: its first record names run folder key "
        f"{their_key[:12]}, {mine / 'folder.key'} is {mine_key[:12]} (a journal and its tail "
        "record copied from another run's folder); put the run's own journal back"
    )
    assert _refused([*command, str(mine)], capsys) == line
    with pytest.raises(JournalDamaged, match=f"^{re.escape(line)}$"):  # a restart
        open_store(mine, RunIdentity("s", "run", "paper", strategy_digest({"name": "s"})))


def test_a_run_folder_moved_whole_still_opens_and_its_key_deleted_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _folder_run(tmp_path / "run")
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    shutil.move(run, moved)
    assert main(["journal", "verify", str(moved)]) == 0
    identity = RunIdentity("s", "run", "paper", strategy_digest({"name": "s"}))
    open_store(moved, identity).close()
    key = read_folder_key(moved)
    assert key is not None
    (moved / "folder.key").unlink()
    path = moved / "journal.sqlite"
    assert _refused(["status", str(moved)], capsys) == (
        f"{path}: its run folder's key {moved / 'folder.key'} is missing (the journal was "
        f"created with key {key[:12]}): put the run's own folder.key back; a run folder is "
        "moved or copied whole, never its journal alone"
    )


def test_a_tail_record_of_another_run_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The record alone copied over (same run id, strategy, mode and row count)."""
    mine = _folder_run(tmp_path / "a" / "run")
    theirs = _folder_run(tmp_path / "b" / "run")
    shutil.copyfile(theirs / "journal.sqlite.tail", mine / "journal.sqlite.tail")
    mine_key, their_key = read_folder_key(mine), read_folder_key(theirs)
    assert mine_key is not None and their_key is not None
    assert _refused(["journal", "verify", str(mine)], capsys) == (
        f"{mine / 'journal.sqlite'}: another run's journal (its first record names run "
        f"folder key {mine_key[:12]}); this folder's tail record names run folder key "
        f"{their_key[:12]}: put the run's own journal back"
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1])
def test_a_deleted_middle_record_is_refused_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """The tail record still matches (the last row is there): the chain catches it."""
    run = _run_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    table = schema_of("signal").table
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TRIGGER {table}_no_delete")
        db.execute(f"DELETE FROM {table} WHERE seq = 12")
    assert _refused([*command, str(run)], capsys) == (
        f"{path}: the hash chain breaks at sequence 12: the row of sequence 12 is missing (deleted)"
    )
