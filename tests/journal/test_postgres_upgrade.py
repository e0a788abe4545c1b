"""A PostgreSQL journal schema made by an older tradeloom, before kinds were added to the
format: a restart gives it their tables (append-only, in the ``events`` view) and goes
on with nothing lost; readers, a read-only login's too, read the missing tables as empty
and make none."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import psycopg
import pytest

from tests.pg_server import PG_ENV, PG_URL, PgSchema
from tradeloom.cli.main import main
from tradeloom.journal import (
    ParityGapLost,
    RunIdentity,
    StaleData,
    journal_path,
    open_store,
    read_events,
    read_rows,
    verify,
)

NEWER = ("parity_gap_lost", "watch_passed", "allocation_decided")
"""Kinds added to the format after the release the schemas of these tests mimic."""
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _tables(pg: PgSchema) -> set[str]:
    with pg.connect() as db:
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_type = 'BASE TABLE'",
            (pg.name,),
        ).fetchall()
    return {str(r[0]) for r in rows}


def _as_an_older_release(pg: PgSchema) -> None:
    """Make ``pg``'s schema as a release without the `NEWER` kinds made it: their tables
    gone, the ``events`` view over the others only."""
    s = pg.name
    with pg.connect() as db:
        view = db.execute("SELECT pg_get_viewdef(%s::regclass)", (f'"{s}"."events"',)).fetchone()
        assert view is not None
        parts = str(view[0]).rstrip(";\n ").split("UNION ALL")
        kept = [p for p in parts if not any(f"'{kind}'::text AS kind" in p for kind in NEWER)]
        assert len(kept) == len(parts) - len(NEWER)
        db.execute(f'DROP VIEW "{s}"."events"')  # type: ignore[arg-type]
        for kind in NEWER:
            db.execute(f'DROP TABLE "{s}"."{kind}"')  # type: ignore[arg-type]
        db.execute(f'CREATE VIEW "{s}"."events" AS {" UNION ALL ".join(kept)}')  # type: ignore[arg-type]
    assert not set(NEWER) & _tables(pg)


def _gap(bar: int) -> ParityGapLost:
    return ParityGapLost(
        bar=bar, timestamp=T0, symbol="X", correlation_id=bar, challenger="c", cause="reload",
        message="the replay cannot follow",
    )  # fmt: skip


@pytest.fixture
def old_run(tmp_path: Path, pg_schema: PgSchema) -> Iterator[Path]:
    """A paper run's folder whose journal is in a schema of the older release."""
    run = tmp_path / "run"
    run.mkdir()
    store = open_store(run, RunIdentity("s", "run", "paper"), pg_schema.target)
    for bar in range(5):
        store.append(StaleData(bar=bar, timestamp=T0, symbol="X", message=f"m{bar}"))
    store.close()
    _as_an_older_release(pg_schema)
    yield run


def test_a_restart_adds_the_newer_kinds_tables_and_loses_nothing(
    old_run: Path, pg_schema: PgSchema
) -> None:
    path = journal_path(old_run)
    before = list(read_rows(path))
    assert [r.seq for r in before] == [1, 2, 3, 4, 5]

    store = open_store(old_run, RunIdentity("s", "run", "paper"), pg_schema.target)  # restart
    store.append(_gap(5))
    store.close()

    after = list(read_rows(path))
    assert after[:5] == before
    assert [(r.seq, r.kind) for r in after[5:]] == [(6, "parity_gap_lost")]
    assert [e.message for e in read_events(path, ["parity_gap_lost"])] == [  # type: ignore[attr-defined]
        "the replay cannot follow"
    ]
    assert verify(path).rows == 6
    assert set(NEWER) <= _tables(pg_schema)
    s = pg_schema.name
    with pg_schema.connect() as db:
        kinds = db.execute(
            f'SELECT kind, count(*) FROM "{s}".events GROUP BY kind ORDER BY kind'  # type: ignore[arg-type]
        ).fetchall()
        triggers = db.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass ORDER BY tgname",
            (f'"{s}"."parity_gap_lost"',),
        ).fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            db.execute(f'DELETE FROM "{s}"."parity_gap_lost"')  # type: ignore[arg-type]
    assert kinds == [("parity_gap_lost", 1), ("stale_data", 5)]
    assert triggers == [("parity_gap_lost_no_change",), ("parity_gap_lost_no_truncate",)]

    new = old_run.parent / "new"  # a new run in the schema, and the first one again
    new.mkdir()
    for folder, run_id in ((new, "new"), (old_run, "run")):
        store = open_store(folder, RunIdentity("s", run_id, "paper"), pg_schema.target)
        store.append(_gap(9))
        store.close()
    assert [r.seq for r in read_rows(journal_path(new))] == [1]
    assert list(read_rows(path))[:6] == after
    assert verify(path).rows == 7


def test_status_and_the_readers_read_it_before_any_restart(
    old_run: Path, pg_schema: PgSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    path = journal_path(old_run)
    assert [r.values["message"] for r in read_rows(path)] == [f"m{i}" for i in range(5)]
    assert list(read_events(path, ["parity_gap_lost", "watch_passed"])) == []
    assert verify(path).rows == 5
    assert main(["status", str(old_run)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert not set(NEWER) & _tables(pg_schema)  # a reader makes no table


def test_a_read_only_login_reads_it(
    old_run: Path, pg_schema: PgSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = f"reader_{uuid.uuid4().hex[:12]}"
    s = pg_schema.name
    with pg_schema.connect() as db:
        db.execute(f'CREATE ROLE "{role}" LOGIN')  # type: ignore[arg-type]
        db.execute(f'GRANT USAGE ON SCHEMA "{s}" TO "{role}"')  # type: ignore[arg-type]
        db.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{s}" TO "{role}"')  # type: ignore[arg-type]
    try:
        parts = urlsplit(PG_URL)
        host = parts.netloc.rsplit("@", 1)[-1]
        monkeypatch.setenv(PG_ENV, urlunsplit(parts._replace(netloc=f"{role}@{host}")))
        path = journal_path(old_run)
        assert [r.seq for r in read_rows(path)] == [1, 2, 3, 4, 5]
        assert list(read_events(path, ["parity_gap_lost"])) == []
        assert verify(path).rows == 5
        assert main(["status", str(old_run)]) == 0
    finally:
        with pg_schema.connect() as db:
            db.execute(f'DROP OWNED BY "{role}"')  # type: ignore[arg-type]
            db.execute(f'DROP ROLE "{role}"')  # type: ignore[arg-type]
    assert not set(NEWER) & _tables(pg_schema)
