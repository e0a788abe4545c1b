"""`FrameFollower` keeps a journal's frames as they are committed: after each read they
are the frames `read_frames` gives of the whole file, whether the rows were appended one
by one or written in bulk blocks; a journal replaced or cut is read again from its start,
and the follower says why."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.journal.journal_values import events
from tradeloom.journal import (
    ColumnBatch,
    Event,
    FrameFollower,
    RunIdentity,
    open_journal,
    read_frames,
)

IDENTITY = RunIdentity("strategy", "run-1", "paper")
FOLLOWED = ["order", "fill", "halt"]


def _fresh(folder: Path, name: str = "journal.sqlite") -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm", ".tail"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _same(follower: FrameFollower, path: Path) -> None:
    whole = read_frames(path, FOLLOWED)
    for kind in FOLLOWED:
        pd.testing.assert_frame_equal(follower.frames[kind], whole[kind], check_dtype=False)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_frames_after_each_read_are_the_whole_journals(
    tmp_path: Path, data: st.DataObject
) -> None:
    path = _fresh(tmp_path)
    journal = open_journal(path, IDENTITY)
    follower = FrameFollower(path, FOLLOWED)
    kinds = st.sampled_from([*FOLLOWED, "signal"])
    for _ in range(data.draw(st.integers(1, 4))):
        written = [data.draw(events(k)) for k in data.draw(st.lists(kinds, max_size=5))]
        if data.draw(st.booleans()):  # appended one by one
            for event in written:
                journal.append(event)
            journal.flush()
        elif written:  # a bulk write: one block per kind
            by_kind: dict[type[Event], list[tuple[int, Event]]] = {}
            for position, event in enumerate(written):
                by_kind.setdefault(type(event), []).append((position, event))
            journal.write_columns(
                [ColumnBatch.of([e for _, e in v], [p for p, _ in v]) for v in by_kind.values()]
            )
        grew = follower.read()
        assert grew is any(e.KIND in FOLLOWED for e in written)
        assert follower.restarted is None
        _same(follower, path)
    journal.close()


def _journal(path: Path, rows: list[Event], identity: RunIdentity = IDENTITY) -> None:
    journal = open_journal(path, identity)
    for event in rows:
        journal.append(event)
    journal.flush()
    journal.close()


@settings(
    max_examples=1, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(orders=st.lists(events("order"), min_size=3, max_size=3))
def test_a_journal_replaced_or_cut_is_read_again_from_its_start(
    tmp_path: Path, orders: list[Event]
) -> None:
    path = _fresh(tmp_path)
    _journal(path, orders[:2])
    follower = FrameFollower(path, ["order"])
    assert follower.read() and len(follower.frames["order"]) == 2
    # rotated: another file (another run's) takes its place
    other = _fresh(tmp_path, "other.sqlite")
    _journal(other, orders[2:], RunIdentity("strategy", "run-2", "paper"))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(f"{other}.tail", f"{path}.tail")
    os.replace(other, path)
    assert follower.read()
    assert follower.restarted == f"{path}: its file was replaced (rotated, copied or restored)"
    assert len(follower.frames["order"]) == 1
    assert follower.frames["order"]["seq"].tolist() == [1]
    # cut in place: the last row read is gone
    _journal(path, orders[:1], RunIdentity("strategy", "run-2", "paper"))
    assert follower.read() and follower.restarted is None
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER orders_no_delete")
        db.execute("DELETE FROM orders WHERE seq = 2")
    assert follower.read()
    assert follower.restarted == (
        f"{path}: its row 2 is no longer there as it was read (rows cut or rewritten)"
    )
    assert follower.frames["order"]["seq"].tolist() == [1]
    assert not follower.read() and follower.restarted is None
