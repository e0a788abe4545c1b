"""A backtest's journal from its start to its end: what every backtest run does around its work.

`journaled_run` opens the run's journal, journals ``run_started`` and tells the
observers, hands the caller a `Recorder`, and then journals ``run_finished`` (with the
seconds it took) or, if the work raised, ``run_failed`` with the error, and closes the
journal either way: nothing already journaled is lost. After a success the observers
hear ``run_finished`` with the metrics the caller set. A strategy file's run and a
portfolio file's run both go through it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tradeloom.domain import RunInfo
from tradeloom.engine.events import Recorder
from tradeloom.errors import leave_folder
from tradeloom.journal import (
    JournalStore,
    PgTarget,
    RunFailed,
    RunFinished,
    RunIdentity,
    RunStarted,
    open_store,
)
from tradeloom.journal.owner import strategy_digest
from tradeloom.plugins.manager import Plugins
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.stage_times import stage
from tradeloom.version import __version__

__all__ = ["JournaledRun", "journaled_run", "now_utc"]

_log = logger("tradeloom.run")


def now_utc() -> pd.Timestamp:
    """Return the wall-clock time, UTC."""
    return pd.Timestamp(datetime.now(UTC))


@dataclass
class JournaledRun:
    """A backtest being journaled.

    Attributes:
        run: Who the run is (its id is the run directory's name).
        recorder: Journals and broadcasts its events.
        metrics: Set by the caller once known; the observers get them at the end.
    """

    run: RunInfo
    recorder: Recorder
    metrics: dict[str, Any] = field(default_factory=dict)


@contextmanager
def journaled_run(
    run_dir: Path | None,
    name: str,
    source: Path,
    plugins: Plugins,
    target: PgTarget | None = None,
    *,
    document: Mapping[str, Any],
    store: JournalStore | None = None,
) -> Iterator[JournaledRun]:
    """Journal a backtest named ``name`` (from the file ``source``) in ``run_dir``.

    The journal is ``run_dir``'s journal.sqlite, or run ``run_dir.name`` of the
    PostgreSQL database ``target`` (`tradeloom.journal.open_store`); its chain is
    bound to ``document``, the resolved strategy the run writes as ``strategy.yaml``.
    With ``store`` (a run held in memory: `tradeloom.backtest.held_journal.HeldJournal`),
    the run journals into it instead, and has no folder (``run_dir`` None); its id is
    the store's.

    Yields:
        The run; its work records through ``recorder`` and sets ``metrics``.
    """
    if store is None:
        assert run_dir is not None
        run = RunInfo(run_id=run_dir.name, strategy=name, mode="backtest", run_dir=str(run_dir))
        identity = RunIdentity(name, run.run_id, "backtest", strategy_digest(document))
        with stage("journal opened"):
            journal = open_store(run_dir, identity, target)
    else:
        run = RunInfo(run_id=store.identity.run_id, strategy=name, mode="backtest", run_dir="")
        journal = store
    log = _log.bind(run_id=run.run_id, strategy=name)
    started = time.perf_counter()
    try:
        journal.append(
            RunStarted(
                mode="backtest",
                strategy=name,
                source=str(source),
                tradeloom=__version__,
                wall_time=now_utc(),
            )
        )
        plugins.hook.tradeloom_run_started(run=run)
        log.info("run_started", run_dir=run.run_dir or None)
        session = JournaledRun(run, Recorder(journal, plugins.hook, run))
        yield session
        journal.append(
            RunFinished(wall_time=now_utc(), seconds=round(time.perf_counter() - started, 3))
        )
    except BaseException as exc:
        journal.append(RunFailed(error=f"{type(exc).__name__}: {exc}", wall_time=now_utc()))
        if run.run_dir:
            leave_folder(exc, run.run_dir)  # the error's line names the folder it leaves
        raise
    finally:
        with stage("journal closed"):
            journal.close()
    log.info("run_finished", seconds=round(time.perf_counter() - started, 2))
    plugins.hook.tradeloom_run_finished(run=run, metrics=session.metrics)
