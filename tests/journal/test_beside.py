"""A journal whose bulk writes run in a thread of their own (`WritesBeside`) journals
what one writing in place does, and tells a failed write at its next call."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.journal import (
    ColumnBatch,
    FillEvent,
    JournalValueError,
    RunIdentity,
    SignalEvent,
    open_journal,
    read_sequenced,
    verify,
)
from tradeloom.journal.beside import WritesBeside
from tradeloom.journal.store import JournalStore

IDENTITY = RunIdentity("strategy", "run-1", "backtest")
TS = pd.Timestamp("2024-01-01", tz="UTC")
SIGNAL = SignalEvent(bar=0, timestamp=TS, direction=1, confidence=0.5, probability=0.6)


def _fills(n: int) -> ColumnBatch:
    fills = [
        FillEvent(
            order_id=f"o-{i}",
            bar=i,
            timestamp=TS,
            side=1,
            quantity=1.0,
            price=2.0 + i,
            fee=0.0,
            slippage=0.0,
        )
        for i in range(n)
    ]
    return ColumnBatch.of(fills, list(range(n)))


def _write(journal: JournalStore) -> None:
    journal.append(SIGNAL)
    journal.write_columns([_fills(1_000)])
    journal.append(SIGNAL)  # after the bulk rows, as in place
    journal.write_columns([_fills(3)])
    journal.write_columns([_fills(2)])  # a write after a write: in their order
    journal.close()


def test_the_journal_is_the_one_written_in_place(ram_tmp_path: Path) -> None:
    _write(open_journal(ram_tmp_path / "here.sqlite", IDENTITY))
    _write(WritesBeside(open_journal(ram_tmp_path / "beside.sqlite", IDENTITY)))
    here = list(read_sequenced(ram_tmp_path / "here.sqlite"))
    beside = list(read_sequenced(ram_tmp_path / "beside.sqlite"))
    assert beside == here
    assert [seq for seq, _ in beside] == list(range(1, 1_008))  # 1 + 1,000 + 1 + 3 + 2 rows
    assert verify(ram_tmp_path / "beside.sqlite") == verify(ram_tmp_path / "here.sqlite")


class _Slow:
    """A journal whose bulk write waits until the test lets it go, and which says in
    which thread each call ran."""

    def __init__(self, store: JournalStore) -> None:
        self.store = store
        self.go = threading.Event()
        self.threads: list[tuple[str, str]] = []

    @property
    def identity(self) -> RunIdentity:
        return self.store.identity

    @property
    def last_seq(self) -> int:
        return self.store.last_seq

    def append(self, event: object) -> int:
        self.threads.append(("append", threading.current_thread().name))
        return self.store.append(event)  # type: ignore[arg-type]

    def flush(self, *, durable: bool = True) -> None:
        self.store.flush(durable=durable)

    def write_columns(self, batches: list[ColumnBatch]) -> None:
        assert self.go.wait(10)
        self.threads.append(("write_columns", threading.current_thread().name))
        self.store.write_columns(batches)

    def close(self) -> None:
        self.store.close()


def test_the_write_runs_beside_the_caller_and_the_next_call_waits_for_it(
    ram_tmp_path: Path,
) -> None:
    slow = _Slow(open_journal(ram_tmp_path / "j.sqlite", IDENTITY))
    journal = WritesBeside(slow)
    journal.write_columns([_fills(5)])  # returns while the write waits
    assert slow.threads == []
    threading.Timer(0.2, slow.go.set).start()
    assert journal.append(SIGNAL) == 6  # waited for the five rows
    journal.close()
    assert [name for name, _ in slow.threads] == ["write_columns", "append"]
    assert slow.threads[0][1].startswith("tradeloom-journal")
    assert slow.threads[1][1] == threading.current_thread().name


@pytest.mark.parametrize("call", ["append", "flush", "last_seq", "close"])
def test_a_failed_write_is_raised_by_the_next_call_and_the_journal_keeps_its_rows(
    ram_tmp_path: Path, call: str
) -> None:
    path = ram_tmp_path / "j.sqlite"
    journal = WritesBeside(open_journal(path, IDENTITY))
    journal.append(SIGNAL)
    journal.flush()
    missing = ColumnBatch(SignalEvent, np.arange(1), {"bar": [0], "timestamp": [0]})
    journal.write_columns([missing])  # refused in the thread
    calls = {
        "append": lambda: journal.append(SIGNAL),
        "flush": journal.flush,
        "last_seq": lambda: journal.last_seq,
        "close": journal.close,
    }
    with pytest.raises(JournalValueError, match=r"^signal: the column 'direction' is missing$"):
        calls[call]()
    if call != "close":
        assert journal.append(SIGNAL) == 2  # told once: the journal goes on
        journal.close()
    assert verify(path).rows == (1 if call == "close" else 2)
