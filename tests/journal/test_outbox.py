"""`publisher_lag` counts the committed rows after each publisher's position by the
journal's sequence numbers: the same figures as reading every row after it, for any
journal (rows appended, bulk blocks, a format-2 file, a table an older file lacks) and
any position (none yet, another run's, before the first row, past the last), without
reading a row; a run in a PostgreSQL database shared with others counts its own rows."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.journal.journal_values import events
from tests.pg_server import PgSchema
from tradeloom.journal import (
    ColumnBatch,
    Event,
    EventFollower,
    RunIdentity,
    StaleData,
    open_journal,
    open_store,
)
from tradeloom.journal import sqlite as journal_sqlite
from tradeloom.journal.events import KINDS, SignalEvent
from tradeloom.journal.outbox import POSITIONS_DIR, publisher_lag, read_position
from tradeloom.journal.source import _SqliteSource

IDENTITY = RunIdentity("strategy", "run-1", "paper")
WRITTEN = ["order", "fill", "signal", "live_bar", "halt"]
ABSENT = "parity_gap_lost"
"""A kind no journal here writes: an older file may lack its table."""


def _walked(run_dir: Path) -> list[tuple[str, int, int]]:
    """What `publisher_lag` returned before: every row after each position, read."""
    journal = run_dir / "journal.sqlite"
    found = []
    for path in sorted((run_dir / POSITIONS_DIR).glob("*.position")):
        recorded = read_position(path)
        acked = recorded.seq if recorded is not None and recorded.run_id == "run-1" else 0
        follower = EventFollower(journal, list(KINDS))
        follower.seq = acked
        try:
            behind = len(follower.read_sequenced())
        finally:
            follower.close()
        found.append((path.stem, acked, behind))
    return found


def _write(journal: journal_sqlite.SqliteJournal, written: list[Event], bulk: bool) -> None:
    if not bulk:
        for event in written:
            journal.append(event)
        journal.flush()
    elif written:  # one batch per kind, the rows interleaved by position
        by_kind: dict[type[Event], list[tuple[int, Event]]] = {}
        for position, event in enumerate(written):
            by_kind.setdefault(type(event), []).append((position, event))
        journal.write_columns(
            [ColumnBatch.of([e for _, e in v], [p for p, _ in v]) for v in by_kind.values()]
        )


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_the_lag_is_the_count_of_the_rows_after_each_position(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        run_dir = Path(folder)
        if data.draw(st.booleans(), label="format 2"):  # a file from before blocks
            patch.setattr(journal_sqlite, "FORMAT_VERSION", 2)
            patch.setattr(journal_sqlite, "SEGMENT_SQL", "")
        journal = open_journal(run_dir / "journal.sqlite", IDENTITY)
        for _ in range(data.draw(st.integers(0, 4), label="commits")):
            kinds = data.draw(st.lists(st.sampled_from(WRITTEN), max_size=8))
            written = [data.draw(events(kind)) for kind in kinds]
            _write(journal, written, bulk=data.draw(st.booleans(), label="bulk"))
        journal.close()
        if data.draw(st.booleans(), label="an older file"):
            with sqlite3.connect(run_dir / "journal.sqlite") as db:
                db.execute(f'DROP TABLE "{ABSENT}"')
        rows = journal.last_seq
        positions = run_dir / POSITIONS_DIR
        if data.draw(st.booleans(), label="publishers"):
            positions.mkdir()
            names = data.draw(st.sets(st.sampled_from(["nats", "redis", "a", "zz"]), max_size=4))
            for name in names:
                run_id = data.draw(st.sampled_from(["run-1", "run-0"]), label="run id")
                seq = data.draw(st.integers(-3, rows + 3), label="seq")
                text = json.dumps({"run_id": run_id, "seq": seq})
                (positions / f"{name}.position").write_text(text)
            (positions / "notes.txt").write_text("not a position")

        lag = publisher_lag(run_dir)

        assert lag == (_walked(run_dir) if positions.is_dir() else [])
        assert all(0 <= behind <= rows for _, _, behind in lag)


def test_a_journal_with_no_rows_has_no_lag(tmp_path: Path) -> None:
    open_journal(tmp_path / "journal.sqlite", IDENTITY).close()
    (tmp_path / POSITIONS_DIR).mkdir()
    (tmp_path / POSITIONS_DIR / "nats.position").write_text('{"run_id": "run-1", "seq": 0}')
    assert publisher_lag(tmp_path) == [("nats", 0, 0)]


def test_the_lag_reads_no_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = open_journal(tmp_path / "journal.sqlite", IDENTITY)
    signals = [SignalEvent(bar, pd.Timestamp(bar, tz="UTC"), 1, 0.5, 0.7) for bar in range(100)]
    _write(journal, signals[:30], bulk=False)
    _write(journal, signals[30:], bulk=True)
    journal.close()
    (tmp_path / POSITIONS_DIR).mkdir()
    (tmp_path / POSITIONS_DIR / "nats.position").write_text('{"run_id": "run-1", "seq": 10}')

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a row was read")

    for reader in ("rows", "table_rows", "blocks"):  # a walk's every path to a row
        monkeypatch.setattr(_SqliteSource, reader, refused)
    assert publisher_lag(tmp_path) == [("nats", 10, 90)]


def test_a_postgresql_run_counts_its_own_rows_among_the_databases(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    runs = {}
    for run_id, rows in (("r", 12), ("q", 30)):  # two runs sharing the database
        runs[run_id] = tmp_path / run_id
        runs[run_id].mkdir()
        store = open_store(runs[run_id], RunIdentity("s", run_id, "live"), pg_schema.target)
        for i in range(rows):
            store.append(StaleData(bar=i, message=f"m{i}"))
            store.flush()
        store.close()
    (runs["r"] / POSITIONS_DIR).mkdir()
    (runs["r"] / POSITIONS_DIR / "nats.position").write_text('{"run_id": "r", "seq": 4}')
    (runs["r"] / POSITIONS_DIR / "redis.position").write_text('{"run_id": "q", "seq": 4}')
    assert publisher_lag(runs["r"]) == [("nats", 4, 8), ("redis", 0, 12)]
