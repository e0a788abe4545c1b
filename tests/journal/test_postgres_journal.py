"""The PostgreSQL journal, against the real server: the SQLite journal's rows and chain,
append-only enforced by the database, several runs in one schema, refusals in one line."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.journal.journal_values import events
from tests.pg_server import PgSchema, pg_schema_of
from tradeloom import __version__
from tradeloom.journal import (
    FORMAT_VERSION,
    KINDS,
    ColumnBatch,
    Event,
    FillEvent,
    JournalOwnerError,
    JournalUnavailable,
    JournalVersionError,
    PgTarget,
    RunIdentity,
    StaleData,
    journal_digest,
    journal_path,
    open_store,
    read_events,
    read_frames,
    read_info,
    read_rows,
    stores,
    verify,
)
from tradeloom.journal.owner import new_folder_key
from tradeloom.journal.postgres import NUL_STAND_IN, PostgresJournal

SETTINGS = settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
T0 = pd.Timestamp("2024-03-01", tz="UTC")


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def _no_nul(event: Event) -> bool:
    # PostgreSQL texts cannot hold NUL: tested on its own
    return not any("\0" in t for f in fields(event) for t in _texts(getattr(event, f.name)))


@contextmanager
def one_folder_key() -> Iterator[None]:
    """New journals get one run folder key: one run's journal, in either store, hashes
    the same (each run folder has its own key otherwise, bound into the chain)."""
    key = new_folder_key()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stores, "new_folder_key", lambda: key)
        yield


def _both(tmp_path: Path, pg: PgSchema, run_id: str) -> tuple[Path, Path]:
    """Two run directories of one run id: one journals to SQLite, one to PostgreSQL."""
    lite, post = tmp_path / "sqlite" / run_id, tmp_path / "pg" / run_id
    lite.mkdir(parents=True)
    post.mkdir(parents=True)
    return lite, post


GROUPS = 3
"""Every kind is drawn in one of this many groups: one example of all of them at once
is more than hypothesis draws in one example (its data_too_large health check)."""


@pytest.mark.parametrize("group", range(GROUPS))
@SETTINGS
@given(data=st.data())
def test_every_kind_reads_back_as_from_sqlite_with_the_same_chain(
    tmp_path_factory: pytest.TempPathFactory,
    pg_schema: PgSchema,
    group: int,
    data: st.DataObject,
) -> None:
    tmp = tmp_path_factory.mktemp("kinds")
    run_id = f"run-{uuid.uuid4().hex[:12]}"  # a new run for every example, even a replay
    lite, post = _both(tmp, pg_schema, run_id)
    identity = RunIdentity("strategy", run_id, "paper")
    kinds = sorted(KINDS)[group::GROUPS]
    drawn = [data.draw(events(kind).filter(_no_nul)) for kind in kinds]
    with one_folder_key():
        for run_dir, target in ((lite, None), (post, pg_schema.target)):
            store = open_store(run_dir, identity, target, flush_every=17)
            for event in drawn:
                store.append(event)
            store.close()
    assert journal_path(lite).name == "journal.sqlite"
    assert journal_path(post).name == "journal.json"
    assert not (post / "journal.sqlite").exists()
    assert list(read_rows(journal_path(post))) == list(read_rows(journal_path(lite)))
    assert verify(journal_path(post)) == verify(journal_path(lite))
    assert journal_digest(journal_path(post)) == journal_digest(journal_path(lite))
    assert read_info(journal_path(post)) == read_info(journal_path(lite))


def test_a_bulk_write_is_copied_with_the_rows_and_chain_of_sqlite(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    lite, post = _both(tmp_path, pg_schema, "bulk-1")
    identity = RunIdentity("strategy", "bulk-1", "backtest")
    n = 2_000
    bars = np.arange(n, dtype=np.int64)
    fills = ColumnBatch(
        FillEvent,
        np.arange(0, 2 * n, 2, dtype=np.int64),
        {
            "bar": bars,
            "timestamp": (T0 + pd.to_timedelta(bars, unit="h")).asi8,
            "symbol": "BTC/USDT",
            "correlation_id": bars - 1,
            "order_id": [f"o-{i}" for i in range(n)],
            "side": np.where(bars % 2 == 0, 1, -1),
            "quantity": np.linspace(0.1, 2.0, n),
            "price": np.full(n, 42_000.5),
            "fee": np.full(n, np.nan),
            "slippage": np.zeros(n),
        },
    )
    stale = ColumnBatch(
        StaleData,
        np.arange(1, 2 * n, 2, dtype=np.int64),
        {
            "bar": bars,
            "timestamp": T0.value,
            "message": pd.Categorical(["late", "late ü"] * (n // 2)),
        },
    )
    with one_folder_key():
        for run_dir, target in ((lite, None), (post, pg_schema.target)):
            store = open_store(run_dir, identity, target)
            store.append(StaleData(bar=-1, message="first, appended"))
            store.write_columns([fills, stale])
            store.append(StaleData(bar=-1, message="last, appended"))
            store.close()
    pg_frames, lite_frames = read_frames(journal_path(post)), read_frames(journal_path(lite))
    for kind in KINDS:
        pd.testing.assert_frame_equal(pg_frames[kind], lite_frames[kind])
    assert verify(journal_path(post)) == verify(journal_path(lite))
    assert verify(journal_path(post)).rows == 2 * n + 2
    with pg_schema.connect() as db:  # a NaN is NULL in SQL, as in SQLite
        nulls = db.execute(f'SELECT count(*) FROM "{pg_schema.name}".fill WHERE fee IS NULL')  # type: ignore[arg-type]
        assert nulls.fetchone() == (n,)


def test_a_text_holding_nul_is_journaled_with_a_stand_in_and_still_chains(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    (tmp_path / "r").mkdir()
    store = open_store(tmp_path / "r", RunIdentity("s", "r", "paper"), pg_schema.target)
    store.append(StaleData(bar=1, message="a\0b"))
    store.write_columns([ColumnBatch(StaleData, np.array([0]), {"bar": 2, "message": ["c\0"]})])
    store.close()
    path = journal_path(tmp_path / "r")
    messages = [row.values["message"] for row in read_rows(path)]
    assert messages == [f"a{NUL_STAND_IN}b", f"c{NUL_STAND_IN}"]
    assert verify(path).rows == 2


def _store(pg: PgSchema, run_id: str, strategy: str = "s", mode: str = "paper") -> PostgresJournal:
    return PostgresJournal(pg.target, RunIdentity(strategy, run_id, mode))


@pytest.fixture(scope="module")
def kept_row() -> Iterator[PgSchema]:
    """A schema holding one run's journal, one row ("kept"), for the refusals below.

    Made once for them: each statement is refused (an error, its transaction rolled
    back), so none changes what the next one meets, and each test still checks the row
    after its own statement. Were one let through, its test fails, and the row check of
    those after it too: no test passes on another's breakage.
    """
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        contextmanager(pg_schema_of)(monkeypatch) as pg,
    ):
        store = _store(pg, "r1")
        store.append(StaleData(bar=1, message="kept"))
        store.close()
        yield pg


@pytest.mark.parametrize(
    "statement",
    [
        'UPDATE "{s}"."stale_data" SET message = \'edited\'',
        'DELETE FROM "{s}"."stale_data"',
        'TRUNCATE "{s}"."stale_data"',
        'UPDATE "{s}"."runs" SET strategy = \'other\'',
        'DELETE FROM "{s}"."runs"',
        'UPDATE "{s}"."journal_meta" SET value = \'1\'',
    ],
)
def test_the_database_refuses_update_delete_and_truncate_even_to_the_superuser(
    kept_row: PgSchema, statement: str
) -> None:
    pg_schema = kept_row
    with pg_schema.connect() as db:
        assert db.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (True,)
        sql = statement.format(s=pg_schema.name)
        table = sql.split('"."')[1].split('"')[0]
        op = sql.split()[0]
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege,
            match=rf"^the journal is append-only \({op} on {table}\)",
        ):
            db.execute(sql)  # type: ignore[arg-type]
        rows = db.execute(f'SELECT message FROM "{pg_schema.name}"."stale_data"').fetchall()  # type: ignore[arg-type]
    assert rows == [("kept",)]


def test_several_runs_share_a_schema_each_with_its_own_chain(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    for run_id in ("a", "b"):
        (tmp_path / run_id).mkdir()
        store = open_store(tmp_path / run_id, RunIdentity("s", run_id, "paper"), pg_schema.target)
        for i in range(3 if run_id == "a" else 5):
            store.append(StaleData(bar=i, message=f"{run_id}{i}"))
        store.close()
    a, b = journal_path(tmp_path / "a"), journal_path(tmp_path / "b")
    assert [r.values["message"] for r in read_rows(a)] == ["a0", "a1", "a2"]
    assert [r.seq for r in read_rows(b)] == [1, 2, 3, 4, 5]
    assert verify(a).rows == 3 and verify(b).rows == 5
    with pg_schema.connect() as db:
        runs = db.execute(
            "SELECT run_id, strategy, mode, format_version, tradeloom "  # type: ignore[arg-type]
            f'FROM "{pg_schema.name}".runs ORDER BY run_id'
        ).fetchall()
        kinds = db.execute(
            f'SELECT run_id, kind, count(*) FROM "{pg_schema.name}".events GROUP BY 1, 2 ORDER BY 1'  # type: ignore[arg-type]
        ).fetchall()
    assert runs == [
        ("a", "s", "paper", FORMAT_VERSION, __version__),
        ("b", "s", "paper", FORMAT_VERSION, __version__),
    ]
    assert kinds == [("a", "stale_data", 3), ("b", "stale_data", 5)]


def test_a_reopened_run_appends_after_its_last_row(tmp_path: Path, pg_schema: PgSchema) -> None:
    identity = RunIdentity("s", "r", "paper")
    (tmp_path / "r").mkdir()
    for message in ("before", "after"):
        store = open_store(tmp_path / "r", identity, pg_schema.target)
        store.append(StaleData(bar=1, message=message))
        store.close()
    path = journal_path(tmp_path / "r")
    assert [(r.seq, r.values["message"]) for r in read_rows(path)] == [(1, "before"), (2, "after")]
    assert verify(path).rows == 2


def _count(pg: PgSchema, table: str) -> int:
    with pg.connect() as db:
        found = db.execute("SELECT to_regclass(%s)", (f'"{pg.name}"."{table}"',)).fetchone()
        if found is None or found[0] is None:
            return -1
        row = db.execute(f'SELECT count(*) FROM "{pg.name}"."{table}"').fetchone()  # type: ignore[arg-type]
        return -1 if row is None else int(row[0])


def test_a_run_id_of_another_strategy_is_refused_with_nothing_written(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    _store(pg_schema, "shared", strategy="alpha").close()
    (tmp_path / "shared").mkdir()
    with pytest.raises(
        JournalOwnerError,
        match=re.escape(
            f"PostgreSQL ${{TRADELOOM_TEST_JOURNAL_URL}} schema {pg_schema.name}: run id 'shared' "
            "belongs to a paper run of 'alpha'; it cannot be a paper run of 'beta': give "
            "another run directory (--out); nothing was written"
        )
        + "$",
    ):
        open_store(tmp_path / "shared", RunIdentity("beta", "shared", "paper"), pg_schema.target)
    assert list((tmp_path / "shared").iterdir()) == []
    assert _count(pg_schema, "runs") == 1


def test_a_new_run_directory_never_continues_a_run_id_already_in_the_database(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    (tmp_path / "one" / "r").mkdir(parents=True)
    (tmp_path / "two" / "r").mkdir(parents=True)
    open_store(tmp_path / "one" / "r", RunIdentity("s", "r", "live"), pg_schema.target).close()
    with pytest.raises(
        JournalOwnerError,
        match=r"^PostgreSQL \$\{TRADELOOM_TEST_JOURNAL_URL\} schema t_\w+: run id 'r' exists "
        r"already \(another run directory or machine journals it\): give another run "
        r"directory \(--out\); nothing was written$",
    ):
        open_store(tmp_path / "two" / "r", RunIdentity("s", "r", "live"), pg_schema.target)
    assert list((tmp_path / "two" / "r").iterdir()) == []


def test_a_database_of_another_format_is_refused_with_nothing_written(
    pg_schema: PgSchema,
) -> None:
    with pg_schema.connect() as db:
        db.execute(f'CREATE SCHEMA "{pg_schema.name}"')  # type: ignore[arg-type]
        db.execute(f'CREATE TABLE "{pg_schema.name}".journal_meta (key TEXT, value TEXT)')  # type: ignore[arg-type]
        db.execute(f"INSERT INTO \"{pg_schema.name}\".journal_meta VALUES ('format_version', '99')")  # type: ignore[arg-type]
    with pytest.raises(
        JournalVersionError,
        match=re.escape(
            f"PostgreSQL ${{TRADELOOM_TEST_JOURNAL_URL}} schema {pg_schema.name}: a journal "
            f"database of format 99; this tradeloom ({__version__}) uses format "
            f"{FORMAT_VERSION}: upgrade tradeloom to use it; nothing was written"
        )
        + "$",
    ):
        _store(pg_schema, "r")
    assert _count(pg_schema, "runs") == -1


def test_a_server_that_cannot_be_reached_is_refused_in_one_line(tmp_path: Path) -> None:
    target = PgTarget("postgresql://postgres@127.0.0.1:1/test", "${UNREACHABLE_PG}")
    with pytest.raises(
        JournalUnavailable,
        match=r"^\$\{UNREACHABLE_PG\}: cannot connect to the PostgreSQL journal \(connection to "
        r'server at "127\.0\.0\.1", port 1 failed: Connection refused\); nothing was written$',
    ):
        open_store(tmp_path, RunIdentity("s", "r", "paper"), target)
    assert list(tmp_path.iterdir()) == []


def test_a_password_in_the_url_never_reaches_a_message(tmp_path: Path, pg_schema: PgSchema) -> None:
    from tradeloom.runtime.redaction import register_secret

    url = "postgresql://postgres:hunter2-secret@127.0.0.1:5432/no_such_database_here"
    register_secret(url)
    register_secret("hunter2-secret")
    with pytest.raises(JournalUnavailable) as caught:
        open_store(tmp_path, RunIdentity("s", "r", "paper"), PgTarget(url, "${PG_URL}"))
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith("${PG_URL}: cannot connect to the PostgreSQL journal (")
    assert "postgresql://" not in repr(PgTarget(url, "${PG_URL}"))


def test_a_database_made_before_fill_liquidity_reads_and_gets_the_column(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    t = pd.Timestamp("2024-01-01", tz="UTC")

    def fill(order_id: str, liquidity: str) -> FillEvent:
        return FillEvent(
            order_id=order_id, bar=1, timestamp=t, side=1, quantity=2.0, price=10.0, fee=0.01,
            slippage=0.0, liquidity=liquidity,
        )  # fmt: skip

    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    store = open_store(old, RunIdentity("s", "old", "paper"), pg_schema.target)
    store.append(fill("a", ""))
    store.close()
    head = verify(journal_path(old)).head
    with pg_schema.connect() as db:  # the tables as tradeloom made them before the field
        db.execute(f'ALTER TABLE "{pg_schema.name}"."fill" DROP COLUMN "liquidity"')

    assert verify(journal_path(old)).head == head
    assert [e.liquidity for e in read_events(journal_path(old), ["fill"])] == [""]  # type: ignore[attr-defined]

    store = open_store(new, RunIdentity("s", "new", "paper"), pg_schema.target)
    store.append(fill("b", "taker"))
    store.close()
    assert verify(journal_path(old)).head == head  # the older run's chain holds
    assert [e.liquidity for e in read_events(journal_path(new), ["fill"])] == ["taker"]  # type: ignore[attr-defined]
