"""A backtest held in memory, and the folder it writes when saved.

`tradeloom.backtest.run.hold_strategy` runs a strategy as `run_strategy` does but writes
nothing: its journal is a `HeldJournal`, its tables are kept as the frames their files
are written from, its models' files as bytes, and its metrics as computed (with no
``run_dir``). `HeldRun.save` then writes the folder `run_strategy` writes for the same
run: the same files from the same frames by the same writers, the journal's rows chained
by the store as they would have been, ``metrics.json`` and the report written where
the journal stood when the run wrote them.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.backtest.held_journal import HeldJournal
from tradeloom.engine.control_files import PID_FILE
from tradeloom.engine.run_dir import open_run_dir
from tradeloom.journal import PgTarget, RunIdentity, open_store
from tradeloom.journal.owner import strategy_digest

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.backtest.pipeline import BacktestResult

__all__ = ["HeldRun", "Output"]


@dataclass(frozen=True)
class Output:
    """Files of a held run: their names in its folder, and how to write them there."""

    names: tuple[str, ...]
    write: Callable[[Path], object]


@dataclass(frozen=True)
class HeldRun:
    """A backtest held in memory (`tradeloom.backtest.run.hold_strategy`).

    Attributes:
        name: The strategy's name.
        document: The resolved strategy (``strategy.yaml``; the journal's chain is
            bound to it).
        target: The PostgreSQL database its journal is saved to (None: SQLite).
        journal: Its journal's rows, held.
        metrics: ``metrics.json`` but its ``run_dir`` (None).
        outputs: Its files but ``metrics.json`` and the report, written by `save`.
        results: Writes ``metrics.json`` (given whole) and the report into a folder.
        results_at: The journal's calls made before the run wrote ``results``.
        tables: Each table's rows by its file name, as its file is written from them
            (made when first asked for).
        result: What the backtest computed.
    """

    name: str
    document: Mapping[str, Any]
    target: PgTarget | None
    journal: HeldJournal
    metrics: Mapping[str, Any]
    outputs: tuple[Output, ...]
    results: Callable[[Path, Mapping[str, Any]], None]
    results_at: int
    tables: Mapping[str, Callable[[], pd.DataFrame]]
    result: BacktestResult

    def save(self, out: Path, *, option: str = "--out") -> Path:
        """Write the run's folder into ``out`` (new or empty), as `run_strategy` writes
        it; return the folder (absolute).

        What failed to be written is removed, and a folder ``save`` made with it: the
        run, held, can be saved again.

        Args:
            out: The folder.
            option: How messages name ``out``.

        Raises:
            UserError: ``out`` is a file, holds a run already, or holds other files.
            JournalError: The journal's store refused the run (its PostgreSQL database).
        """
        created = not out.exists()
        run_dir, lock = open_run_dir(self.name, out, option=option)
        run_dir = run_dir.resolve()
        try:
            self._write(run_dir)
        except BaseException:
            lock.release_pid()
            _empty(run_dir, remove=created)
            raise
        finally:
            lock.release_pid()
        return run_dir

    def _write(self, run_dir: Path) -> None:
        identity = RunIdentity(self.name, run_dir.name, "backtest", strategy_digest(self.document))
        store = open_store(run_dir, identity, self.target)
        try:
            # the files are written by two threads while this one writes the journal
            with ThreadPoolExecutor(2, thread_name_prefix="tradeloom-save") as pool:
                jobs = [pool.submit(output.write, run_dir) for output in self.outputs]
                at = self.journal.write_into(store, 0, self.results_at)
                for job in jobs:
                    job.result()
            self.results(run_dir, {**self.metrics, "run_dir": str(run_dir)})
            self.journal.write_into(store, at)
        finally:
            store.close()


def _empty(run_dir: Path, *, remove: bool) -> None:
    """Remove what a failed `HeldRun.save` wrote into ``run_dir`` (all it holds: it was
    new or empty), and the folder itself when ``remove``."""
    for entry in run_dir.iterdir():
        if entry.name == PID_FILE:
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    if remove:
        with contextlib.suppress(OSError):
            run_dir.rmdir()
