"""Run a validated strategy as a backtest and write its run directory, or hold it in memory.

The run's tables are made and written beside it (`tradeloom.backtest.tables`), its
metrics and report computed at its end (`tradeloom.backtest.results`), its trained
models saved (`tradeloom.backtest.saved_models`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tradeloom.backtest.beside import Beside, Piece
from tradeloom.backtest.held_journal import HeldJournal
from tradeloom.backtest.held_run import HeldRun, Output
from tradeloom.backtest.journaled_run import journaled_run
from tradeloom.backtest.pipeline import BacktestResult, Curve, Driver, run_backtest
from tradeloom.backtest.results import early_sheet, finish_results, run_figures, write_results
from tradeloom.backtest.saved_models import save_models
from tradeloom.backtest.tables import (
    HeldTables,
    ParquetTable,
    bars_table,
    charted_symbols,
    drawn_equity,
    event_tables,
    parquet_tables,
    trades_table,
    unwrite,
    unwritten,
    write_curve,
    write_event_tables,
    write_parquet_tables,
)
from tradeloom.domain import Universe
from tradeloom.engine.run_dir import open_run_dir, stamped
from tradeloom.engine.wiring import Pipeline, traded_symbols
from tradeloom.journal import JournalError, RunIdentity, journal_path, open_store
from tradeloom.journal.owner import strategy_digest
from tradeloom.plugins.manager import Plugins
from tradeloom.plugins.model.registry import ModelFiles
from tradeloom.reporting import charted, exports, outputs
from tradeloom.reporting.run_tables import TRADES, TableFormat, table_format, table_name
from tradeloom.reporting.tearsheet import Rolling
from tradeloom.runtime.collection_pace import fewer_collections
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.memory import keep_freed_memory, return_freed_memory
from tradeloom.runtime.stage_times import stage
from tradeloom.schemas.config import StrategyConfig
from tradeloom.schemas.journal import journal_target
from tradeloom.text.run_files import RUN_FILE, answer_caches, write_run_answers

__all__ = ["RunOutcome", "hold_strategy", "run_key", "run_strategy"]


_log = logger("tradeloom.run")


@dataclass(frozen=True)
class RunOutcome:
    """Where a run wrote its files, its metrics, and the in-memory result."""

    run_dir: Path
    metrics: dict[str, Any]
    result: BacktestResult


def run_key(document: Any) -> str:
    """Return 8 hex digits identifying the resolved strategy (client order ids use it);
    ``document``: a strategy's, or a list of them (a portfolio file's and its strategies').

    Where the run is journaled (``journal:``) is not the strategy: it is left out, so a
    run journaled to PostgreSQL decides the same order ids as one journaled to SQLite.
    Nor is where bars given whole are kept: a file's or a frame's (``data.kind`` csv,
    parquet or frame) are keyed by their settings without ``kind`` and ``path``, so a
    frame handed from Python (`tradeloom.api.Strategy.with_data`) and the same bars in a
    CSV or Parquet file anywhere decide the same order ids.
    """
    keyed = [_keyed(d) for d in document] if isinstance(document, list) else _keyed(document)
    text = json.dumps(keyed, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


_WHOLE_BARS = frozenset({"csv", "parquet", "frame"})
"""The data kinds whose bars are given whole, from wherever they are kept (`run_key`)."""


def _keyed(document: Any) -> Any:
    """Return what `run_key` hashes of one strategy's ``document``."""
    if not isinstance(document, dict):
        return document
    keyed = {k: v for k, v in document.items() if k != "journal"}
    data = keyed.get("data")
    if isinstance(data, dict) and data.get("kind") in _WHOLE_BARS:
        keyed["data"] = {k: v for k, v in data.items() if k not in ("kind", "path")}
    return keyed


def run_strategy(
    pipeline: Pipeline,
    plugins: Plugins,
    *,
    out: Path | None = None,
    driver: Driver = "auto",
    variant: Mapping[str, Any] | None = None,
    option: str = "--out",
) -> RunOutcome:
    """Backtest ``pipeline`` and write its run directory.

    The journal is opened first and closed last: whatever was journaled before a
    failure (bad data, a plugin's exception) stays in it.

    Args:
        pipeline: The built strategy.
        plugins: The plugin manager whose observers are told about the run.
        out: The run directory to use instead of ``runs/<name>-<time>``.
        driver: Which driver runs the sequential layers (`run_backtest`).
        variant: The sweep and row this run is a variant of (``--variant``), recorded
            as ``metrics.json``'s ``variant``.
        option: How messages name ``out`` (the Python API's: ``out``).
    """
    config = pipeline.config
    _allocator(config)
    created = out is None or not out.exists()
    run_dir, lock = open_run_dir(config.name, out, option=option)  # live.pid: this process
    run_dir = run_dir.resolve()
    try:
        # the batch driver decodes the run's events at its end (the per-bar driver as it
        # goes, where a slower pace cost more than it saved)
        pace = fewer_collections() if driver != "per_bar" else contextlib.nullcontext()
        with pace:
            return _run(pipeline, plugins, run_dir, driver, variant)
    except JournalError:
        lock.release_pid()
        if created:
            _remove_if_empty(run_dir)  # the journal refused the run: nothing was written
        raise
    finally:
        lock.release_pid()


def _allocator(config: StrategyConfig) -> None:
    """Set how the allocator keeps what the run frees, before its data is read: a
    universe's many blocks hand it back (kept, they fragment the heaps), one market's
    arrays reuse the pages of those it dropped (`tradeloom.runtime.memory`)."""
    if len(traded_symbols(config)) > 1:
        return_freed_memory()
    else:
        keep_freed_memory()


def _remove_if_empty(run_dir: Path) -> None:
    with contextlib.suppress(OSError):  # something else put a file there: left as it is
        run_dir.rmdir()


def _run(
    pipeline: Pipeline,
    plugins: Plugins,
    run_dir: Path,
    driver: Driver,
    variant: Mapping[str, Any] | None,
) -> RunOutcome:
    config = pipeline.config
    target = journal_target(config.journal)
    with journaled_run(
        run_dir, config.name, config.source, plugins, target, document=config.document
    ) as session:
        # after the journal accepted the run: a refused one leaves its folder empty
        outputs.write_strategy(run_dir, config.document)
        key = f"{config.name}-{run_key(config.document)}"
        # the tables are most of a run's writing: two workers write them while this thread
        # runs: the bars as soon as they are read (beside the features, the model and the
        # core), then the tables of a row per bar as soon as the core's curve is known
        # (beside the journal's bulk write), and the Parquet files and the tables of
        # events as each is made, while this thread computes the metrics (the text kernels
        # and Arrow release the GIL). Every table is written, or the first error of a
        # write raised, before metrics.json; a run that fails before metrics.json is
        # written leaves none of its tables, but its journal (each named before its job
        # is submitted; removed once the workers stopped, or as a job still running ends)
        tables: list[str] = []
        jobs: list[tuple[Future[None], Sequence[str]]] = []
        metrics_file = run_dir / "metrics.json"  # written whole (atomic) or not at all
        try:
            with ThreadPoolExecutor(2, thread_name_prefix="tradeloom-tables") as worker:

                def write(names: Sequence[str], work: Callable[..., None], *args: Any) -> None:
                    tables.extend(names)
                    jobs.append((worker.submit(work, *args), names))

                def written() -> None:
                    for job, _ in jobs:
                        job.result()

                bars: list[ParquetTable] = []
                curves: list[tuple[pd.DataFrame, TableFormat]] = []

                deferred: list[bool] = []

                def loaded(universe: Universe) -> None:
                    if len(universe.symbols) > charted.CHARTED_SYMBOLS:
                        # its charted symbols', known from trades, from the result's
                        # universe (whose bars are the core's inputs, not these copies)
                        deferred.append(True)
                        return
                    with stage(exports.BARS_FILE):
                        table = bars_table(universe)
                    bars.append(table)
                    write([table.name], write_parquet_tables, run_dir, [table])

                def curved(curve: Curve) -> None:
                    curves.append(write_curve(write, run_dir, curve, config.outputs.tables))

                try:
                    result = run_backtest(
                        pipeline, session.recorder, key, driver=driver, loaded=loaded, curved=curved
                    )
                    [(equity, form)] = curves
                    events = event_tables(result, form)
                    keep = charted_symbols(
                        result.universe.symbols, events[table_name(TRADES, form)]
                    )
                    if deferred:
                        with stage(exports.BARS_FILE):
                            table = bars_table(result.universe, keep)
                        bars.append(table)
                        write([table.name], write_parquet_tables, run_dir, [table])
                    parquet = parquet_tables(pipeline, result, keep)
                    write([t.name for t in parquet], write_parquet_tables, run_dir, parquet)
                    caches = answer_caches(pipeline.features)
                    if caches:  # the LLM answers the text features read
                        write([RUN_FILE], write_run_answers, run_dir, caches)
                    write(list(events), write_event_tables, run_dir, events)
                    # what the report draws: made by a worker after the tables (or by
                    # this thread, if none has started it by the time they are written)
                    drawn = (
                        Beside(worker).submit("equity as read", drawn_equity, equity, form)
                        if config.outputs.report
                        else None
                    )
                    metrics = finish_results(
                        pipeline,
                        run_dir,
                        result,
                        session.recorder,
                        variant,
                        drawn,
                        {**{t.name: t.frame for t in [*bars, *parquet] if t.drawn}, **events},
                        written,
                        form,
                    )
                except BaseException as failure:
                    worker.shutdown(wait=False, cancel_futures=True)  # none queued starts
                    if not metrics_file.is_file():  # (a second interrupt ends the wait)
                        for job, names in jobs:
                            job.add_done_callback(
                                functools.partial(unwritten, run_dir, names, failure)
                            )
                    raise
        except BaseException:
            if not metrics_file.is_file():  # a failed run's folder: as before it ran
                unwrite(run_dir, tables)
            raise
        session.metrics = metrics
    return RunOutcome(run_dir=run_dir, metrics=metrics, result=result)


def hold_strategy(
    pipeline: Pipeline,
    plugins: Plugins,
    *,
    driver: Driver = "auto",
    variant: Mapping[str, Any] | None = None,
) -> HeldRun:
    """Backtest ``pipeline`` in memory: what `run_strategy` computes, with nothing written.

    The run journals into a `HeldJournal`, keeps its tables as the frames their files
    are written from (each made when first asked for, or when saved) and its models'
    files as bytes; its metrics are computed, without a ``run_dir``. `HeldRun.save`
    writes the folder `run_strategy` would have written. A run whose metrics read its
    journal (a router's venues, a perpetual's funding, sliced orders) reads it from a
    copy written into a temporary folder, removed when the run ends.

    Args: as `run_strategy`'s, without ``out``.
    """
    config = pipeline.config
    _allocator(config)
    identity = RunIdentity(
        config.name, stamped(config.name), "backtest", strategy_digest(config.document)
    )
    journal = HeldJournal(identity)
    pace = fewer_collections() if driver != "per_bar" else contextlib.nullcontext()
    with pace, _journal_copies(journal) as journal_file:
        return _hold(pipeline, plugins, journal, journal_file, driver, variant)


def _hold(
    pipeline: Pipeline,
    plugins: Plugins,
    journal: HeldJournal,
    journal_file: Callable[[], Path],
    driver: Driver,
    variant: Mapping[str, Any] | None,
) -> HeldRun:
    config = pipeline.config
    with (
        journaled_run(
            None, config.name, config.source, plugins, document=config.document, store=journal
        ) as session,
        ThreadPoolExecutor(1, thread_name_prefix="tradeloom-ahead") as ahead,
    ):
        key = f"{config.name}-{run_key(config.document)}"
        universes: list[Universe] = []
        curves: list[Curve] = []
        sheets: list[Piece[tuple[dict[str, Any], Rolling]]] = []

        def curved(curve: Curve) -> None:
            # the tearsheet needs the curve alone: a thread makes it while the run's rows
            # are decoded (nothing is written, so nothing else is beside them)
            curves.append(curve)
            sheets.append(Beside(ahead).submit("tearsheet", early_sheet, universes[0], curve))

        result = run_backtest(
            pipeline,
            session.recorder,
            key,
            driver=driver,
            loaded=universes.append,
            curved=curved,
        )
        [curve], [sheet] = curves, sheets
        universe = result.universe  # a universe's bars held in the core's inputs, once
        equity = curve.equity.reset_index(names="timestamp")
        form = table_format(config.outputs.tables, len(equity), len(curve.symbols))
        trades = trades_table(result, form)
        models: list[tuple[str, ModelFiles]] = []
        with stage("models saved"):
            registry = save_models(
                pipeline, result, session.recorder, lambda at, files: models.append((at, files))
            )
        metrics, rolling = run_figures(
            pipeline,
            result,
            session.recorder,
            variant,
            registry,
            trades[table_name(TRADES, form)],
            None,
            journal_file,
            form,
            sheet,
        )
        results_at = journal.calls
        session.metrics = metrics
    tables = HeldTables(
        pipeline, result, universe, curve, equity, form, trades[table_name(TRADES, form)]
    )

    def results(run_dir: Path, metrics: Mapping[str, Any]) -> None:
        drawn = drawn_equity(equity, form) if config.outputs.report else {}
        write_results(run_dir, config, metrics, {**drawn, **tables.drawn()}, rolling)

    written = [Output(("strategy.yaml",), functools.partial(_write_strategy, config=config))]
    written += tables.outputs()
    caches = answer_caches(pipeline.features)
    if caches:
        written.append(Output((RUN_FILE,), functools.partial(write_run_answers, caches=caches)))
    for relative, files in models:
        written.append(Output((relative,), functools.partial(_write_models, relative, files)))
    return HeldRun(
        name=config.name,
        document=config.document,
        target=journal_target(config.journal),
        journal=journal,
        metrics=metrics,
        outputs=tuple(written),
        results=results,
        results_at=results_at,
        tables=tables.frames(),
        result=result,
    )


def _write_strategy(run_dir: Path, *, config: StrategyConfig) -> None:
    outputs.write_strategy(run_dir, config.document)


def _write_models(relative: str, files: ModelFiles, run_dir: Path) -> None:
    files.write(run_dir / relative)


@contextlib.contextmanager
def _journal_copies(journal: HeldJournal) -> Iterator[Callable[[], Path]]:
    """Yield a function that returns the path of a copy of ``journal`` as held so far,
    written (once per state) into a temporary folder, removed at the end."""
    folder: tempfile.TemporaryDirectory[str] | None = None
    copied: tuple[int, Path] | None = None

    def copy() -> Path:
        nonlocal folder, copied
        if copied is not None and copied[0] == journal.calls:
            return copied[1]
        if folder is not None:
            folder.cleanup()
        folder = tempfile.TemporaryDirectory(prefix="tradeloom-journal-")
        run_dir = Path(folder.name) / journal.identity.run_id
        run_dir.mkdir()
        store = open_store(run_dir, journal.identity)
        try:
            journal.write_into(store)
        finally:
            store.close()
        copied = (journal.calls, journal_path(run_dir))
        return copied[1]

    try:
        yield copy
    finally:
        if folder is not None:
            folder.cleanup()
