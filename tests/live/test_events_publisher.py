"""The events publisher's contract, over any sink: each committed row reaches the broker,
in order, through failures, partial acknowledgements and crashes, and copies carry the
same id.

The sink here is an `EventSink` plugin of the test's own, an in-memory broker that keeps
the first message of each id (as JetStream's duplicate window and a Redis stream's ids
do), fails where hypothesis says, and sometimes stores part of a batch before failing (a
connection lost after some acknowledgements). The real brokers are tested in
test_events_publish.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.journal import RunIdentity, SignalEvent, StaleData, open_journal
from tradeloom.journal.outbox import position_path, read_position
from tradeloom.journal.reader import read_sequenced
from tradeloom.live.outputs.events import Publisher, message_of
from tradeloom.plugin import EventMessage, EventSink

TS = pd.Timestamp("2024-01-01", tz="UTC")


class Broker:
    """An in-memory broker: keeps each id's first message, fails by a schedule."""

    def __init__(self, failures: list[int]) -> None:
        self.kept: dict[str, EventMessage] = {}
        self.order: list[str] = []
        self.calls: list[tuple[list[int], int]] = []  # each batch's seqs, how many stored
        self.failures = list(failures)  # per call: 0 ok, 1 fail, 2 store half then fail
        self.lock = threading.Lock()

    def publish(self, messages: Sequence[EventMessage]) -> None:
        with self.lock:
            mode = self.failures.pop(0) if self.failures else 0
            stored = messages if mode == 0 else messages[: len(messages) // 2] if mode == 2 else []
            self.calls.append(([m.seq for m in messages], len(stored)))
            for m in stored:
                if m.id not in self.kept:
                    self.kept[m.id] = m
                    self.order.append(m.id)
            if mode:
                raise ConnectionError("broker down")

    def close(self) -> None:
        return None


def _wait(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


@settings(max_examples=25, deadline=None)
@given(
    chunks=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    failures=st.lists(st.sampled_from([0, 0, 1, 2]), max_size=12),
    rewind=st.integers(0, 40),
)
def test_every_row_reaches_the_broker_once_in_order(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[int], failures: list[int], rewind: int
) -> None:
    run_dir = tmp_path_factory.mktemp("run")
    path = run_dir / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run-1", "paper"))
    broker = Broker(failures)
    assert isinstance(broker, EventSink)
    position = position_path(run_dir, "b")

    def publisher() -> Publisher:
        return Publisher(path, "b", broker, position, poll=0.001, backoff=(0.001,))

    first = publisher()
    first.start()
    bar = 0
    for size in chunks:  # the run commits while the publisher follows
        for _ in range(size):
            bar += 1
            row = (
                StaleData(bar=bar, timestamp=TS, message="late")
                if bar % 3 == 0
                else SignalEvent(
                    bar=bar, timestamp=TS, direction=1, confidence=0.5, probability=0.5
                )
            )
            journal.append(row)
        journal.flush(durable=False)
    total = bar
    _wait(lambda: first.acked == total)
    first.stop()
    # a crash between the broker's acknowledgement and the position's write
    acked = read_position(position)
    assert acked is not None and acked.seq == total
    position.write_text(json.dumps({"run_id": "run-1", "seq": max(total - rewind, 0)}))
    second = publisher()
    second.start()
    _wait(lambda: second.acked == total)
    second.stop()
    journal.close()

    expected = [message_of(s, e, "run-1", "s", "paper") for s, e in read_sequenced(path)]
    assert [broker.kept[i] for i in broker.order] == expected
    # every batch starts at most one past what was stored before it: no row skipped
    stored_through = 0
    for call, stored in broker.calls:
        assert call == list(range(call[0], call[0] + len(call)))
        assert call[0] <= stored_through + 1
        stored_through = max(stored_through, call[0] - 1 + stored)
