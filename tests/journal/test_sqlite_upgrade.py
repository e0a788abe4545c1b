"""A SQLite journal made by an older tradeloom, before a kind and a field were added:
readers read it as it is (the missing table empty, the missing column ''), a restart
adds both and goes on with nothing lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from tradeloom.cli.main import main
from tradeloom.journal import (
    FillEvent,
    ParityGapLost,
    RunIdentity,
    StaleData,
    journal_path,
    open_store,
    read_events,
    read_rows,
    verify,
)

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _fill(liquidity: str) -> FillEvent:
    return FillEvent(
        order_id="a", bar=1, timestamp=T0, side=1, quantity=2.0, price=10.0, fee=0.01,
        slippage=0.0, liquidity=liquidity,
    )  # fmt: skip


def _columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as db:
        return {str(r[1]) for r in db.execute(f'PRAGMA table_info("{table}")')}


def test_an_older_file_reads_as_it_is_and_a_restart_adds_the_kind_and_the_column(
    tmp_path: Path,
) -> None:
    run, identity = tmp_path / "run", RunIdentity("s", "run", "paper")
    run.mkdir()
    store = open_store(run, identity, None)
    store.append(StaleData(bar=0, timestamp=T0, symbol="X", message="kept"))
    store.append(_fill(""))
    store.close()
    path = journal_path(run)
    with sqlite3.connect(path) as db:  # the file as a release without them made it
        view = db.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0]
        parts = view.removesuffix(" ORDER BY seq").split(" UNION ALL ")
        kept = [p for p in parts if "'parity_gap_lost' AS kind" not in p]
        assert len(kept) == len(parts) - 1
        db.execute("DROP VIEW events")
        db.execute('DROP TABLE "parity_gap_lost"')
        db.execute('ALTER TABLE "fill" DROP COLUMN "liquidity"')
        db.execute(" UNION ALL ".join(kept) + " ORDER BY seq")
    assert "liquidity" not in _columns(path, "fill")

    before = list(read_rows(path))
    assert [(r.seq, r.kind) for r in before] == [(1, "stale_data"), (2, "fill")]
    assert [e.liquidity for e in read_events(path, ["fill"])] == [""]  # type: ignore[attr-defined]
    assert list(read_events(path, ["parity_gap_lost"])) == []
    assert verify(path).rows == 2
    assert main(["status", str(run)]) == 0
    assert not _columns(path, "parity_gap_lost")  # a reader makes nothing

    store = open_store(run, identity, None)  # restart
    store.append(
        ParityGapLost(
            bar=2, timestamp=T0, symbol="X", correlation_id=2, challenger="c", cause="kill",
            message="halted",
        )
    )  # fmt: skip
    store.append(_fill("taker"))
    store.close()
    after = list(read_rows(path))
    assert after[:2] == before
    assert [(r.seq, r.kind) for r in after[2:]] == [(3, "parity_gap_lost"), (4, "fill")]
    assert [e.liquidity for e in read_events(path, ["fill"])] == ["", "taker"]  # type: ignore[attr-defined]
    assert verify(path).rows == 4
    with sqlite3.connect(path) as db:
        kinds = db.execute("SELECT seq, kind FROM events").fetchall()
    assert kinds == [(1, "stale_data"), (2, "fill"), (3, "parity_gap_lost"), (4, "fill")]
