"""`EventFollower` reads a journal's events as they are committed: each read the rows
since the last, together exactly the events `read_sequenced` gives of the whole file,
whether they were appended one by one or written in bulk blocks."""

from __future__ import annotations

import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.journal.journal_values import events
from tradeloom.journal import (
    ColumnBatch,
    Event,
    EventFollower,
    RunIdentity,
    open_journal,
    read_sequenced,
)

IDENTITY = RunIdentity("strategy", "run-1", "paper")
FOLLOWED = ["order", "fill", "route_decision", "venue_fill"]


def _fresh(folder: Path) -> Path:
    path = folder / "journal.sqlite"
    for suffix in ("", "-wal", "-shm", ".tail"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_reads_together_are_the_whole_journals_events_in_order(
    tmp_path: Path, data: st.DataObject
) -> None:
    path = _fresh(tmp_path)
    journal = open_journal(path, IDENTITY)
    follower = EventFollower(path, FOLLOWED)
    kinds = st.sampled_from([*FOLLOWED, "signal", "halt"])
    read: list[Event] = []
    for _ in range(data.draw(st.integers(1, 5))):
        written = [data.draw(events(k)) for k in data.draw(st.lists(kinds, max_size=6))]
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
        new = follower.read()
        assert [e.KIND for e in new] == [e.KIND for e in written if e.KIND in FOLLOWED]
        read += new
    whole = list(read_sequenced(path, FOLLOWED))
    assert [repr(e) for e in read] == [repr(e) for _, e in whole]
    assert follower.seq == (whole[-1][0] if whole else 0)
    assert follower.read() == []
    follower.close()
    journal.close()


@settings(
    max_examples=1, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=events("order"))
def test_a_read_from_another_thread_opens_the_journal_again_and_goes_on(
    tmp_path: Path, order: Event
) -> None:
    path = _fresh(tmp_path)
    journal = open_journal(path, IDENTITY)
    journal.append(order)
    journal.flush()
    follower = EventFollower(path, ["order"])
    assert len(follower.read()) == 1
    journal.append(order)
    journal.flush()
    found: list[list[Event]] = []
    thread = threading.Thread(target=lambda: found.append(follower.read()))
    thread.start()
    thread.join()
    assert [len(f) for f in found] == [1]  # the new row only
    follower.close()
    journal.close()
