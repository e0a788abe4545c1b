"""The journal is append-only, durable and exact."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from tradeloom.domain import Signal
from tradeloom.runner.journal import Journal, journal_digest, read_journal

T = pd.Timestamp("2024-01-01T05:00:00", tz="UTC")


def test_rows_round_trip_exactly(tmp_path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    seq = j.append(
        "signal",
        Signal(5, T, 1, 0.1 + 0.2, float("nan")),
        bar=5,
        timestamp=T,
        correlation_id="bar-5",
    )
    j.close()
    [row] = list(read_journal(tmp_path / "j.sqlite"))
    assert row[:5] == (seq, 5, "2024-01-01T05:00:00+00:00", "signal", "bar-5")
    payload = json.loads(row[5])
    assert payload["confidence"] == 0.1 + 0.2  # floats written exactly
    assert payload["probability"] is None  # NaN as null
    assert payload["timestamp"] == "2024-01-01T05:00:00+00:00"


@pytest.mark.parametrize("statement", ["UPDATE events SET type = 'x'", "DELETE FROM events"])
def test_append_only(tmp_path, statement) -> None:
    j = Journal(tmp_path / "j.sqlite")
    j.append("fill", {"a": 1})
    j.close()
    db = sqlite3.connect(tmp_path / "j.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(statement)


def test_reopening_continues_the_sequence(tmp_path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    j.append("a", {})
    j.close()
    j = Journal(path, flush_every=1)
    assert j.append("b", {}) == 2
    j.close()
    assert [r[3] for r in read_journal(path)] == ["a", "b"]


def test_wal_and_full_sync(tmp_path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    j.close()


def test_digest_ignores_run_rows_but_sees_any_other_change(tmp_path) -> None:
    def write(name: str, wall: str, price: float) -> str:
        j = Journal(tmp_path / name)
        j.append("run", {"wall_time": wall})
        j.append("fill", {"price": price}, bar=1)
        j.close()
        return journal_digest(tmp_path / name)

    assert write("a", "10:00", 1.0) == write("b", "11:00", 1.0)
    assert write("c", "10:00", 1.0) != write("d", "10:00", 1.0000001)
