"""Fuzz the journal reader with damaged files: every failure must be one JournalError line.

Mutations of a real journal (byte flips, zeroed ranges, truncation, appended junk, a
lost or damaged write-ahead log) are read by every reader; anything but a result or a
`JournalError` with a one-line message is a finding. The suite runs a few examples
(`test_reader_fuzz.py`); a long session runs this file:

    python -m tests.journal.fuzz_reader --minutes 30
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeloom.journal import (
    FillEvent,
    JournalError,
    RejectionEvent,
    RunIdentity,
    RunStarted,
    SignalEvent,
    journal_digest,
    open_journal,
    read_events,
    read_frames,
    read_info,
    verify,
)

TS = pd.Timestamp("2024-01-01", tz="UTC")


def seed_journal(folder: Path) -> Path:
    """Write a small journal of several kinds (closed: no -wal left)."""
    path = folder / "seed.sqlite"
    journal = open_journal(path, RunIdentity("fuzz", "run", "paper"))
    journal.append(RunStarted(mode="paper", strategy="fuzz", source="f.yaml", tradeloom="0",
                              wall_time=TS, document={"name": "fuzz", "x": [1, 2.5]}))  # fmt: skip
    for i in range(40):
        journal.append(
            SignalEvent(bar=i, timestamp=TS, direction=1, confidence=0.5, probability=0.6)
        )
        journal.append(FillEvent(order_id=f"o-{i}", bar=i, timestamp=TS, side=-1, quantity=1.0,
                                 price=1.5, fee=0.0, slippage=0.0, correlation_id=i))  # fmt: skip
    journal.append(RejectionEvent(code="X", message="é", bar=3, timestamp=TS, values={"a": 1.0}))
    journal.close()
    return path


MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 200_000), st.integers(1, 255)),
    st.tuples(st.just("zero"), st.integers(0, 200_000), st.integers(1, 5000)),
    st.tuples(st.just("truncate"), st.integers(0, 200_000), st.just(0)),
    st.tuples(st.just("append"), st.integers(1, 5000), st.integers(0, 255)),
)


def mutate(data: bytearray, mutations: list[tuple[str, int, int]]) -> bytes:
    for kind, where, value in mutations:
        if not data:
            break
        at = where % len(data)
        if kind == "flip":
            data[at] ^= value
        elif kind == "zero":
            data[at : at + value] = bytes(len(data[at : at + value]))
        elif kind == "truncate":
            del data[at:]
        else:
            data.extend(bytes([value]) * where)
    return bytes(data)


def check(path: Path) -> None:
    """Read ``path`` every way; only a JournalError of one line may escape."""
    for read in (
        lambda: read_info(path),
        lambda: list(read_events(path)),
        lambda: read_frames(path),
        lambda: verify(path),
        lambda: journal_digest(path),
    ):
        try:
            read()
        except JournalError as error:
            text = str(error)
            assert text and "\n" not in text, repr(text)


def fuzz_test(seed: Path, work: Path, examples: int, deadline: float | None = None):
    original = seed.read_bytes()

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.lists(MUTATION, min_size=1, max_size=6))
    def run(mutations: list[tuple[str, int, int]]) -> None:
        if deadline is not None and time.monotonic() > deadline:
            return
        path = work / "journal.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.write_bytes(mutate(bytearray(original), mutations))
        check(path)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed = seed_journal(folder)
        work = folder / "work"
        work.mkdir()
        deadline = time.monotonic() + args.minutes * 60
        rounds = 0
        started = time.monotonic()
        while time.monotonic() < deadline:
            fuzz_test(seed, work, 2000, deadline)()
            rounds += 1
            print(f"{rounds * 2000} cases, {time.monotonic() - started:.0f} s: no finding",
                  flush=True)  # fmt: skip
        shutil.rmtree(work)
    print("done: no finding")


if __name__ == "__main__":
    sys.exit(main())
