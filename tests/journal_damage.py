"""Damage a run's journal as the issue's testers did: rows cut from its end, a row deleted
from its middle, another run's journal copied in with its tail record.

Each helper works on a SQLite journal as a user with the ``sqlite3`` shell would: the
append-only triggers dropped, then the rows deleted.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from tradeloom.journal import KINDS
from tradeloom.journal.schema import schema_of
from tradeloom.journal.tail import read_tail

__all__ = ["copy_journal", "cut_below_tail", "cut_last_rows", "delete_row"]


def _tables(db: sqlite3.Connection) -> list[str]:
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return [schema_of(kind).table for kind in KINDS if schema_of(kind).table in names]


def _unguard(db: sqlite3.Connection, table: str) -> None:
    db.execute(f'DROP TRIGGER IF EXISTS "{table}_no_delete"')


def cut_last_rows(journal: Path, count: int) -> int:
    """Delete the journal's last ``count`` rows (of the kinds' tables); return how many it
    held before."""
    with sqlite3.connect(journal) as db:
        tables = _tables(db)
        last = max(db.execute(f'SELECT max(seq) FROM "{t}"').fetchone()[0] or 0 for t in tables)
        for table in tables:
            _unguard(db, table)
            db.execute(f'DELETE FROM "{table}" WHERE seq > ?', (last - count,))
    return int(last)


def delete_row(journal: Path, kind: str, nth: int = 0) -> int:
    """Delete the ``nth`` row of ``kind`` (a table's: a paper or live run's); return its seq."""
    table = schema_of(kind).table
    with sqlite3.connect(journal) as db:
        seqs = [row[0] for row in db.execute(f'SELECT seq FROM "{table}" ORDER BY seq')]
        seq = int(seqs[nth])
        _unguard(db, table)
        db.execute(f'DELETE FROM "{table}" WHERE seq = ?', (seq,))
    return seq


def copy_journal(source: Path, run: Path) -> None:
    """Put the journal of run folder ``source`` (its file, write-ahead log and tail record)
    in place of ``run``'s, as a user copying ``journal.sqlite*`` would."""
    for old in run.glob("journal.sqlite*"):
        old.unlink()
    for path in source.glob("journal.sqlite*"):
        shutil.copyfile(path, run / path.name)


def cut_below_tail(journal: Path, count: int) -> int:
    """Delete every row after the ``count``-th last one its tail record counts (durable
    commits lost, with whatever was committed without fsync after them); return the
    record's row count."""
    record = read_tail(journal)
    assert record is not None, f"{journal}: no tail record"
    with sqlite3.connect(journal) as db:
        for table in _tables(db):
            _unguard(db, table)
            db.execute(f'DELETE FROM "{table}" WHERE seq > ?', (record.rows - count,))
    return record.rows
