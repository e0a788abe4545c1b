"""A live run's files written off the trading thread: `LatestWriter` (the newest snapshot
wins, nothing pending is lost at the end) and `EquityFile` (rows appended, the file equal
to a whole rewrite after any sequence of frames, failures and edits)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.builders import REPORTED, strategy_text
from tradeloom.cli.main import main
from tradeloom.live.outputs.equity_file import EquityFile
from tradeloom.live.outputs.latest_writer import LatestWriter
from tradeloom.live.outputs.refresh import LiveOutputs
from tradeloom.reporting.outputs import write_frame


def frame(n: int, *, seed: int = 0, nan_at: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    equity = 1000 + np.cumsum(rng.normal(0, 3, n))
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    if nan_at is not None and nan_at < n:
        close[nan_at] = np.nan
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
            "close": close,
            "position": np.round(rng.uniform(-1, 1, n), 3),
            "equity": equity,
        }
    )


def whole(tmp_path: Path, data: pd.DataFrame) -> bytes:
    """The file as one rewrite of ``data`` writes it."""
    folder = tmp_path / "whole"
    folder.mkdir(exist_ok=True)
    write_frame(folder, "equity.csv", data)
    return (folder / "equity.csv").read_bytes()


def test_growing_frames_are_appended_and_the_file_equals_a_rewrite(tmp_path: Path) -> None:
    file = EquityFile(tmp_path)
    full = frame(50, nan_at=7)
    for n in (1, 2, 2, 10, 30, 50):
        file.write(full.iloc[:n])
        assert (tmp_path / "equity.csv").read_bytes() == whole(tmp_path, full.iloc[:n])
    assert (file.rewrites, file.appends) == (1, 4)  # the same frame twice appends nothing
    assert pd.read_csv(tmp_path / "equity.csv")["close"].isna().sum() == 1


def test_a_changed_earlier_row_a_deleted_file_or_new_columns_rewrite_it(tmp_path: Path) -> None:
    file = EquityFile(tmp_path)
    data = frame(20)
    file.write(data.iloc[:10])
    moved = data.copy()
    moved.loc[3, "equity"] += 1.0  # a fill booked late moved an earlier bar
    file.write(moved.iloc[:12])
    assert (tmp_path / "equity.csv").read_bytes() == whole(tmp_path, moved.iloc[:12])
    (tmp_path / "equity.csv").unlink()
    file.write(moved.iloc[:14])
    assert (tmp_path / "equity.csv").read_bytes() == whole(tmp_path, moved.iloc[:14])
    wider = moved.assign(cash=1.0)
    file.write(wider.iloc[:15])
    assert (tmp_path / "equity.csv").read_bytes() == whole(tmp_path, wider.iloc[:15])
    assert file.rewrites == 4 and file.appends == 0


def test_an_append_that_failed_half_way_is_repaired_by_the_next_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = EquityFile(tmp_path)
    data = frame(12)
    file.write(data.iloc[:5])
    real_open = Path.open

    def half_then_full(self: Path, mode: str = "r", *args: object, **kw: object) -> object:
        handle = real_open(self, mode, *args, **kw)  # type: ignore[call-overload]
        if mode == "a":
            handle.write("2024-01-01T05:00:00Z,10")  # half a line, then the disk fills up
            handle.close()
            raise OSError(28, "No space left on device")
        return handle

    monkeypatch.setattr(Path, "open", half_then_full)
    with pytest.raises(OSError, match="No space"):
        file.write(data.iloc[:8])
    monkeypatch.setattr(Path, "open", real_open)
    file.write(data.iloc[:9])
    assert (tmp_path / "equity.csv").read_bytes() == whole(tmp_path, data.iloc[:9])


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 6), st.sampled_from(["grow", "edit", "delete"])),
        min_size=1,
        max_size=8,
    )
)
def test_any_sequence_of_writes_leaves_the_file_a_rewrite_would(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, str]]
) -> None:
    folder = tmp_path_factory.mktemp("equity")
    file = EquityFile(folder)
    data = frame(80, seed=3)
    n = 0
    for grow, what in steps:
        n = min(n + grow, len(data))
        if what == "edit" and n:
            data.loc[n // 2, "equity"] *= 1.001
        elif what == "delete" and (folder / "equity.csv").exists():
            (folder / "equity.csv").unlink()
        file.write(data.iloc[:n])
        assert (folder / "equity.csv").read_bytes() == whole(folder, data.iloc[:n])


def test_the_writer_writes_the_newest_item_and_waits_for_what_is_pending() -> None:
    taken = threading.Event()
    release = threading.Event()
    written: list[int] = []

    def work(item: int) -> None:
        taken.set()
        release.wait()
        written.append(item)

    writer: LatestWriter[int] = LatestWriter(work, "test-writer")
    writer.submit(1)
    assert taken.wait(timeout=10)
    for item in range(2, 6):  # while 1 is being written: only the newest is kept
        writer.submit(item)
    release.set()
    writer.wait()
    assert written == [1, 5]
    assert writer.skipped == 3
    writer.close()
    writer.submit(6)  # after close, a new thread takes it
    writer.close()
    assert written[-1] == 6


def test_a_writer_whose_thread_died_does_not_hang_wait() -> None:
    def work(item: int) -> None:
        raise SystemExit(item)  # escapes the thread's loop

    writer: LatestWriter[int] = LatestWriter(work, "test-writer")
    writer.submit(1)
    writer._thread.join(timeout=5)  # type: ignore[union-attr]
    writer.submit(2)  # a new thread starts, and dies too
    writer._thread.join(timeout=5)  # type: ignore[union-attr]
    writer.wait()  # nothing pending: returns, does not block


def test_a_redraw_of_the_report_runs_in_a_process_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long run's redraws read the whole run back: each is drawn by a child process
    (its memory goes back to the system when it ends), the same page as drawn here; a
    child that fails is logged in one line and the run goes on."""
    monkeypatch.chdir(tmp_path)
    # the paper run of tests/live/test_sim_clock.py's strategy, with the report it redraws
    (tmp_path / "s.yaml").write_text(strategy_text(REPORTED, name="sim_demo"))
    code = main(
        ["run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
         "--max-bars", "4", "-q", "--out", "run"]
    )  # fmt: skip
    assert code == 0
    report = tmp_path / "run" / "report.html"
    drawn_here = report.read_text()
    report.unlink()
    outputs = LiveOutputs(tmp_path / "run")
    outputs.reports = 1  # the first was drawn: the next goes to a process of its own
    try:
        outputs._draw_report()
        assert outputs.reports == 2
        assert report.read_text() == drawn_here

        outputs.run_dir = tmp_path / "gone"  # not a run folder: the child fails
        with capture_logs() as logs:
            outputs._draw_report()
    finally:
        outputs._journal.close()
    assert outputs.reports == 2
    (failed,) = [e for e in logs if e["event"] == "outputs_refresh_failed"]
    assert failed["error"].startswith("RuntimeError: the report's process failed: ")
    assert "gone" in failed["error"]
