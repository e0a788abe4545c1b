"""A PostgreSQL journal proves its end as a SQLite one does, and keeps a live run's mark.

Against the real server. Each commit writes a ``tails`` row (the run's row count and
chain head) in its own transaction; ``journal verify``, ``status`` and a restart refuse a
run whose last rows were deleted (the superuser with the triggers off), in one line, exit
2. The sent-id mark of a run journaled there is its ``sent_marks`` rows. Another run
folder's ``journal.json`` copied in is refused (the ``runs`` row names that folder's key),
and so is a run missing a middle row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pg_server import PgSchema
from tradeloom.cli.main import main
from tradeloom.journal import JournalDamaged, RunIdentity, StaleData, journal_path, open_store
from tradeloom.journal import verify as verify_journal
from tradeloom.journal.owner import read_folder_key
from tradeloom.journal.postgres import PostgresJournal
from tradeloom.live.orders.sent_mark import PgSentMark, check_sent_mark, open_sent_mark

ROWS = 12


def _run(tmp_path: Path, pg: PgSchema, run_id: str = "r") -> Path:
    run = tmp_path / run_id
    run.mkdir()
    store = open_store(run, RunIdentity("s", run_id, "live"), pg.target)
    for i in range(ROWS):
        store.append(StaleData(bar=i, message=f"m{i}"))
        store.flush()
    store.close()
    return run


def _delete_last(pg: PgSchema, count: int) -> None:
    with pg.connect() as db:
        db.execute("SET session_replication_role = replica")  # the append-only triggers off
        db.execute(
            f'DELETE FROM "{pg.name}".stale_data WHERE seq > %s',  # type: ignore[arg-type]
            (ROWS - count,),
        )


@pytest.mark.parametrize("command", [["journal", "verify"], ["status"]], ids=lambda c: c[-1])
def test_a_cut_postgresql_run_is_refused_in_one_line(
    tmp_path: Path,
    pg_schema: PgSchema,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    run = _run(tmp_path, pg_schema)
    assert main(["journal", "verify", str(run)]) == 0
    assert verify_journal(journal_path(run)).rows == ROWS
    with pg_schema.connect() as db:
        tails = db.execute(
            f'SELECT "rows" FROM "{pg_schema.name}".tails WHERE run_id = %s ORDER BY 1',  # type: ignore[arg-type]
            ("r",),
        ).fetchall()
    assert [t[0] for t in tails] == list(range(1, ROWS + 1))  # one per commit
    _delete_last(pg_schema, 3)
    capsys.readouterr()
    assert main([*command, str(run)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"{run / 'journal.json'}: its tail was cut: it holds {ROWS - 3} rows, its tail record "
        f"says {ROWS} were committed (3 rows lost)\n"
    )


def test_a_run_whose_tail_records_were_deleted_is_refused(
    tmp_path: Path, pg_schema: PgSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows cut and the records deleted with them: the run's row says it kept them."""
    run = _run(tmp_path, pg_schema)
    _delete_last(pg_schema, 2)
    with pg_schema.connect() as db:
        db.execute("SET session_replication_role = replica")
        db.execute(f'DELETE FROM "{pg_schema.name}".tails WHERE run_id = %s', ("r",))  # type: ignore[arg-type]
    for command in (["journal", "verify"], ["status"]):
        capsys.readouterr()
        assert main([*command, str(run)]) == 2
        assert capsys.readouterr().err == (
            f"{run / 'journal.json'}: run r's tail records in {pg_schema.target.where} are "
            "missing (the run was written with them): rows may have been cut with them\n"
        )


def test_a_postgresql_runs_sent_mark_is_kept_in_the_database(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    run = _run(tmp_path, pg_schema)
    store = open_store(run, RunIdentity("s", "r", "live"), pg_schema.target)
    try:
        assert isinstance(store, PostgresJournal)
        mark = open_sent_mark(run, store)
        assert isinstance(mark, PgSentMark) and (mark.sent, mark.written_at) == (0, None)
        for i in range(1, 4):
            mark.advance(f"s-k-{i:06d}")
    finally:
        store.close()
    assert not (run / "sent.mark").exists()
    store = open_store(run, RunIdentity("s", "r", "live"), pg_schema.target)
    try:
        again = open_sent_mark(run, store)
        assert (again.sent, again.last) == (3, "s-k-000003")
        assert again.written_at is not None
        check_sent_mark(again, journal_path(run), 3)
        with pytest.raises(JournalDamaged) as caught:
            check_sent_mark(again, journal_path(run), 2)
        assert str(caught.value) == (
            f"{run / 'journal.json'}: the journal is behind the sent-id mark: it holds 2 sent "
            f"orders, {pg_schema.target.where} run r (its sent_marks) says 3 were sent (the "
            "last s-k-000003); its tail was lost"
        )
        again.rebase(2, "s-k-000002")  # a restart proved the third never left
    finally:
        store.close()
    store = open_store(run, RunIdentity("s", "r", "live"), pg_schema.target)
    try:
        assert open_sent_mark(run, store).sent == 2
    finally:
        store.close()


@pytest.mark.parametrize("command", [["journal", "verify"], ["status"], ["report"]])
def test_another_postgresql_runs_journal_pointed_at_is_refused_in_one_line(
    tmp_path: Path,
    pg_schema: PgSchema,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """Another run folder's ``journal.json`` copied in: the run it names, its rows and its
    tail records all agree; its ``runs`` row names another run folder's key."""
    mine, theirs = _run(tmp_path, pg_schema, "mine"), _run(tmp_path, pg_schema, "theirs")
    (mine / "journal.json").write_bytes((theirs / "journal.json").read_bytes())
    their_key, my_key = read_folder_key(theirs), read_folder_key(mine)
    assert their_key is not None and my_key is not None
    capsys.readouterr()
    assert main([*command, str(mine)]) == 2
    assert capsys.readouterr() == (
        "",
        f"{mine / 'journal.json'}: another run's journal: its first record names run folder "
        f"key {their_key[:12]}, {mine / 'folder.key'} is {my_key[:12]} (a journal and its "
        "tail record copied from another run's folder); put the run's own journal back\n",
    )


def test_a_postgresql_run_missing_a_middle_row_is_refused_by_status(
    tmp_path: Path, pg_schema: PgSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path, pg_schema)
    with pg_schema.connect() as db:
        db.execute("SET session_replication_role = replica")  # the append-only triggers off
        db.execute(f'DELETE FROM "{pg_schema.name}".stale_data WHERE seq = 5')  # type: ignore[arg-type]
    capsys.readouterr()
    assert main(["status", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"{run / 'journal.json'}: the hash chain breaks at sequence 5: the row of sequence 5 "
        "is missing (deleted)\n"
    )
