"""Run a validated strategy as a backtest and write its run directory."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.backtest.beside import Beside, Piece
from tradeloom.backtest.held_journal import HeldJournal
from tradeloom.backtest.held_run import HeldRun, Output
from tradeloom.backtest.journaled_run import journaled_run
from tradeloom.backtest.pipeline import BacktestResult, Curve, Driver, run_backtest
from tradeloom.domain import Order, Universe
from tradeloom.engine.events import Recorder
from tradeloom.engine.features import feature_plots
from tradeloom.engine.frames import equal_weight, position_rows
from tradeloom.engine.funding import funding_series
from tradeloom.engine.health import action_counts, never_trained, retrains, run_health
from tradeloom.engine.run_dir import open_run_dir, stamped
from tradeloom.engine.wiring import Pipeline
from tradeloom.journal import JournalError, ModelsSaved, RunIdentity, journal_path, open_store
from tradeloom.journal.owner import strategy_digest
from tradeloom.plugins.manager import Plugins
from tradeloom.plugins.model.registry import (
    MODELS_DIR,
    ModelFiles,
    model_files,
    registry_metrics,
)
from tradeloom.plugins.protocols import ModelCalibration
from tradeloom.reporting import charted, exports, outputs
from tradeloom.reporting.account_figures import account_figures
from tradeloom.reporting.attribution import symbol_attribution
from tradeloom.reporting.execution_quality import (
    OTHER_KINDS,
    journal_execution_quality,
    plain_execution_quality,
    terms_of,
)
from tradeloom.reporting.funding import journal_funding
from tradeloom.reporting.metrics import prediction_auc
from tradeloom.reporting.refusals import refusal_metrics, unfilled_orders, warn_refused_exits
from tradeloom.reporting.run_data import as_read
from tradeloom.reporting.run_tables import (
    EQUITY,
    FILLS,
    ORDERS,
    POSITIONS,
    TRADES,
    TableFormat,
    table_format,
    table_name,
    write_table,
)
from tradeloom.reporting.statistics import trade_statistics
from tradeloom.reporting.tearsheet import (
    Rolling,
    run_rolling,
    simple_returns,
    tail_figures,
    tearsheet,
)
from tradeloom.reporting.trades import trade_frame
from tradeloom.reporting.venue_accounts import KINDS as VENUE_KINDS
from tradeloom.reporting.venue_accounts import journal_venue_accounts
from tradeloom.runtime.collection_pace import fewer_collections
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.memory import keep_freed_memory
from tradeloom.runtime.stage_times import WORKER, stage
from tradeloom.schemas.config import StrategyConfig
from tradeloom.schemas.journal import journal_target
from tradeloom.stats import auc
from tradeloom.tables.grouping import positions_by_key
from tradeloom.tables.kept import Kept, column, times
from tradeloom.tables.text_columns import labelled, texts
from tradeloom.time.calendars import CRYPTO

__all__ = [
    "FILL_COLUMNS",
    "ORDER_COLUMNS",
    "RunOutcome",
    "folder_name",
    "hold_strategy",
    "markets",
    "records",
    "run_key",
    "run_strategy",
]


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
    keep_freed_memory()  # the run's arrays reuse the pages of those it dropped
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

                bars: list[_Parquet] = []
                curves: list[tuple[pd.DataFrame, TableFormat]] = []

                deferred: list[Universe] = []

                def loaded(universe: Universe) -> None:
                    if len(universe.symbols) > charted.CHARTED_SYMBOLS:
                        deferred.append(universe)  # its charted symbols', known from trades
                        return
                    with stage(exports.BARS_FILE):
                        table = _bars_table(universe)
                    bars.append(table)
                    write([table.name], _write_parquet_tables, run_dir, [table])

                def curved(curve: Curve) -> None:
                    curves.append(_write_curve(write, run_dir, curve, config.outputs.tables))

                try:
                    result = run_backtest(
                        pipeline, session.recorder, key, driver=driver, loaded=loaded, curved=curved
                    )
                    [(equity, form)] = curves
                    events = _event_tables(result, form)
                    keep = _charted(result.universe.symbols, events[table_name(TRADES, form)])
                    for universe in deferred:
                        with stage(exports.BARS_FILE):
                            table = _bars_table(universe, keep)
                        bars.append(table)
                        write([table.name], _write_parquet_tables, run_dir, [table])
                    parquet = _parquet_tables(pipeline, result, keep)
                    write([t.name for t in parquet], _write_parquet_tables, run_dir, parquet)
                    write(list(events), _write_event_tables, run_dir, events)
                    # what the report draws: made by a worker after the tables (or by
                    # this thread, if none has started it by the time they are written)
                    drawn = (
                        Beside(worker).submit("equity as read", _drawn_equity, equity, form)
                        if config.outputs.report
                        else None
                    )
                    metrics = _results(
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
                                functools.partial(_unwritten, run_dir, names, failure)
                            )
                    raise
        except BaseException:
            if not metrics_file.is_file():  # a failed run's folder: as before it ran
                _unwrite(run_dir, tables)
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
    keep_freed_memory()  # the run's arrays reuse the pages of those it dropped
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
            sheets.append(Beside(ahead).submit("tearsheet", _early_sheet, universes[0], curve))

        result = run_backtest(
            pipeline,
            session.recorder,
            key,
            driver=driver,
            loaded=universes.append,
            curved=curved,
        )
        [universe], [curve], [sheet] = universes, curves, sheets
        equity = curve.equity.reset_index(names="timestamp")
        form = table_format(config.outputs.tables, len(equity), len(curve.symbols))
        trades = _trades_table(result, form)
        models: list[tuple[str, ModelFiles]] = []
        with stage("models saved"):
            registry = _save_models(
                pipeline, result, session.recorder, lambda at, files: models.append((at, files))
            )
        metrics, rolling = _figures(
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
    tables = _HeldTables(
        pipeline, result, universe, curve, equity, form, trades[table_name(TRADES, form)]
    )

    def results(run_dir: Path, metrics: Mapping[str, Any]) -> None:
        drawn = _drawn_equity(equity, form) if config.outputs.report else {}
        _write_results(run_dir, config, metrics, {**drawn, **tables.drawn()}, rolling)

    written = [Output(("strategy.yaml",), functools.partial(_write_strategy, config=config))]
    written += tables.outputs()
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


class _HeldTables:
    """The tables of a held run (`hold_strategy`), each made once, when first read or
    written; ``equity``: the equity table's rows, ``trades``: the trades table's."""

    def __init__(
        self,
        pipeline: Pipeline,
        result: BacktestResult,
        universe: Universe,
        curve: Curve,
        equity: pd.DataFrame,
        form: TableFormat,
        trades: pd.DataFrame,
    ) -> None:
        self._pipeline = pipeline
        self._result = result
        self._universe = universe
        self._curve = curve
        self._equity = equity
        self._form = form
        self._trades = trades

    @functools.cached_property
    def _keep(self) -> frozenset[str] | None:
        return _charted(self._universe.symbols, self._trades)

    @functools.cached_property
    def _bars(self) -> _Parquet:
        return _bars_table(self._universe, self._keep)

    @functools.cached_property
    def _parquet(self) -> list[_Parquet]:
        return _parquet_tables(self._pipeline, self._result, self._keep)

    @functools.cached_property
    def _positions(self) -> pd.DataFrame:
        return _positions(self._curve)

    @functools.cached_property
    def _orders(self) -> pd.DataFrame:
        return _orders_table(self._result)

    @functools.cached_property
    def _fills(self) -> pd.DataFrame:
        return _fills_table(self._result)

    def _events(self) -> dict[str, pd.DataFrame]:
        form = self._form
        return {
            table_name(ORDERS, form): self._orders,
            table_name(FILLS, form): self._fills,
            table_name(TRADES, form): self._trades,
        }

    def frames(self) -> dict[str, Callable[[], pd.DataFrame]]:
        """Return a function of each table's rows, by its file name."""
        made: dict[str, Callable[[], pd.DataFrame]] = {
            exports.BARS_FILE: lambda: self._bars.frame,
            table_name(EQUITY, self._form): lambda: self._equity,
            table_name(POSITIONS, self._form): lambda: self._positions,
        }
        for name in self._parquet_names():
            made[name] = functools.partial(self._parquet_frame, name)
        made[table_name(ORDERS, self._form)] = lambda: self._orders
        made[table_name(FILLS, self._form)] = lambda: self._fills
        made[table_name(TRADES, self._form)] = lambda: self._trades
        return made

    def outputs(self) -> list[Output]:
        """Return the tables' files, each written from its rows as `run_strategy` writes it."""
        form = self._form
        return [
            Output(
                (exports.BARS_FILE,), lambda run_dir: _write_parquet_tables(run_dir, [self._bars])
            ),
            Output(
                (table_name(EQUITY, form),),
                lambda run_dir: _write_equity(run_dir, self._equity.copy(deep=False), form),
            ),
            Output(
                (table_name(POSITIONS, form),),
                lambda run_dir: write_table(run_dir, POSITIONS, self._positions, form),
            ),
            Output(
                tuple(self._parquet_names()),
                lambda run_dir: _write_parquet_tables(run_dir, self._parquet),
            ),
            Output(
                tuple(table_name(t, form) for t in (ORDERS, FILLS, TRADES)),
                lambda run_dir: _write_event_tables(run_dir, self._events()),
            ),
        ]

    def drawn(self) -> dict[str, pd.DataFrame]:
        """Return the tables the report draws from memory, by file name (`run_strategy`'s)."""
        parquet = {t.name: t.frame for t in [self._bars, *self._parquet] if t.drawn}
        return {**parquet, **self._events()}

    def _parquet_names(self) -> list[str]:
        names = []
        if self._pipeline.config.outputs.features:
            names.append(exports.FEATURES_FILE)
        if self._result.recorder.monitor_values:
            names.append(exports.MONITORING_FILE)
        return names

    def _parquet_frame(self, name: str) -> pd.DataFrame:
        return next(t.frame for t in self._parquet if t.name == name)


def _results(
    pipeline: Pipeline,
    run_dir: Path,
    result: BacktestResult,
    recorder: Recorder,
    variant: Mapping[str, Any] | None,
    equity: Piece[Mapping[str, pd.DataFrame]] | None,
    tables: Mapping[str, pd.DataFrame],
    written: Callable[[], object],
    form: TableFormat,
) -> dict[str, Any]:
    """Compute the run's metrics and write its files but the tables; return the metrics.
    ``equity``: the equity table's rows by its file name, as the report draws them
    (`_drawn_equity`, computed beside; None: no report); ``tables``: the tables the
    report draws (`_event_tables`, the Parquet tables), which the workers write:
    ``written`` waits for every table they write, and raises the first error of one,
    before metrics.json is written (and the report may read one); ``form``: the format
    of the per-bar tables, which ``metrics.json``'s ``tables`` names."""
    config = pipeline.config
    with stage("models saved"):
        registry = _save_models(pipeline, result, recorder, run_dir)
    metrics, rolling = _figures(
        pipeline,
        result,
        recorder,
        variant,
        registry,
        tables[table_name(TRADES, form)],
        run_dir,
        lambda: journal_path(run_dir),
        form,
    )
    with stage("tables written"):
        written()  # a table that could not be written fails the run before its metrics
        drawn = {} if equity is None else equity.result()  # (its error: likewise)
    _write_results(run_dir, config, metrics, {**drawn, **tables}, rolling)
    return metrics


def _write_results(
    run_dir: Path,
    config: StrategyConfig,
    metrics: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    rolling: Rolling,
) -> None:
    """Write ``metrics.json`` and (``outputs.report``) the report, drawing ``tables`` (by
    file name, as `tradeloom.reporting.report.write_report`'s ``written``) from memory."""
    with stage("metrics.json"):
        outputs.write_metrics(run_dir, metrics)
    if config.outputs.report:
        with stage("report"):
            from tradeloom.reporting.report import write_report

            write_report(run_dir, written=tables, rolling=rolling)


def _figures(
    pipeline: Pipeline,
    result: BacktestResult,
    recorder: Recorder,
    variant: Mapping[str, Any] | None,
    registry: Any,
    trades: pd.DataFrame,
    run_dir: Path | None,
    journal: Callable[[], Path],
    form: TableFormat,
    sheet_made: Piece[tuple[dict[str, Any], Rolling]] | None = None,
) -> tuple[dict[str, Any], Rolling]:
    """Return the run's metrics and the rolling figures its report draws.

    ``registry``: the models saved (`_save_models`); ``trades``: the trades table;
    ``run_dir``: the run's folder (None: held in memory); ``journal``: the path of the
    run's journal as committed so far, read for what the run did not keep (a router's
    venues, a perpetual's funding, the execution quality of orders that are more than
    their own rows); ``form``: the format of the per-bar tables, which ``metrics.json``'s
    ``tables`` names; ``sheet_made``: the tearsheet, begun before (`_early_sheet`). The
    exits it refused are warned of (`warn_refused_exits`)."""
    config = pipeline.config
    rec = result.recorder
    # the metrics' figures that need no other (the account's, the predictions', the
    # attribution, the execution quality of the orders kept) are computed by a second
    # thread beside the tearsheet (numpy's passes over a million bars release the GIL),
    # queued last needed first: this thread takes back each one it needs that the other
    # has not started (`Beside`). Each is awaited where it was computed before, so an
    # error is raised as it was
    with ThreadPoolExecutor(1, thread_name_prefix="tradeloom-metrics") as executor:
        beside = Beside(executor)
        kept_quality = (
            None
            if rec.journaled_kinds & set(OTHER_KINDS)
            else beside.submit("execution quality", _kept_quality, rec, config.document)
        )
        with stage("metrics"):
            metrics, rolling = _metrics(pipeline, result, run_dir, trades, beside, sheet_made)
        metrics["model_registry"] = registry
        metrics["tables"] = form  # the summary and a script say which files hold the tables
        if variant is not None:  # a sweep's variant: which sweep, which row
            metrics["variant"] = dict(variant)
        with stage("journal written"):
            recorder.journal.flush()  # measured from the journal, as every mode is
        with stage("execution quality"):
            metrics["execution_quality"] = _execution_quality(
                rec, journal, config.document, kept_quality
            )
    with stage("venues and funding"):
        # a router's: what each venue bought, sold, holds and charged (a run that
        # journaled no such row has none, and its journal is not read again for them)
        if rec.journaled_kinds & set(VENUE_KINDS):
            venues = journal_venue_accounts(journal())
            if venues:
                metrics["venues"] = venues
        if funding_series(pipeline.venue) is not None:  # a perpetual: its funding, net
            metrics["funding"] = journal_funding(journal())
    warn_refused_exits(metrics)
    return metrics, rolling


def _execution_quality(
    rec: Recorder,
    journal: Callable[[], Path],
    document: Any,
    kept: Piece[dict[str, Any] | None] | None,
) -> dict[str, Any]:
    """Return the run's execution quality: from the orders and fills it kept, where they
    are every such row of its journal (no router, no slicing: ``kept``, their figures
    being computed, else None); else from the journal."""
    figures = None if kept is None else kept.result()
    return figures if figures is not None else journal_execution_quality(journal(), document)


def _kept_quality(rec: Recorder, document: Any) -> dict[str, Any] | None:
    """Return the execution quality of the orders and fills the run kept, which are
    every such row of its journal (None: not plain orders; the journal is read)."""
    return plain_execution_quality(rec.orders, rec.fills, rec.cancellations, terms_of(document))


ModelsOut = Callable[[str, ModelFiles], None]
"""Where a run's saved models go, by their folder relative to the run: written into the
run's folder, or kept by a run held in memory (`hold_strategy`)."""


def _save_models(
    pipeline: Pipeline, result: BacktestResult, recorder: Recorder, out: Path | ModelsOut
) -> dict[str, Any] | None:
    """Save what was trained: the model, or (``per_symbol``) each symbol's in its folder.

    At the end, so that folds retrained mid-run are saved with the scheduled ones.
    """
    config = pipeline.config
    models = result.models or {"": pipeline.model}
    registry: dict[str, Any] = {}
    for symbol, model in models.items():
        relative = f"{MODELS_DIR}/{folder_name(symbol)}" if symbol else MODELS_DIR
        registry[symbol] = save_trained(
            model, config, out, relative, result.universe.index, recorder, symbol
        )
    if list(registry) == [""]:
        return registry[""]  # type: ignore[no-any-return]
    return registry


def save_trained(
    model: Any,
    config: StrategyConfig,
    out: Path | ModelsOut,
    relative: str,
    timestamps: pd.DatetimeIndex,
    recorder: Recorder,
    symbol: str,
) -> Any:
    """Save a trained model's folds in ``out / relative`` (``out``: the run's folder, or
    `ModelsOut`); return its registry entry.

    Where folds were saved, they are journaled (``models_saved``, for ``symbol``) and
    the entry's ``dir`` is ``relative``.
    """
    files = model_files(
        model,
        strategy=config.name,
        feature_spec=config.feature_spec(),
        timestamps=timestamps,
    )
    if files is not None:
        if isinstance(out, Path):
            files.write(out / relative)
        else:
            out(relative, files)
        event = ModelsSaved(**files.journal_row())
        recorder.record(replace(event, symbol=symbol, dir=relative))
    entry: Any = registry_metrics(files, model)
    if files is not None:
        entry["dir"] = relative
    return entry


def journal_counts(rec: Recorder, unfilled: Sequence[Order]) -> dict[str, Any]:
    """Return what ``metrics.json`` counts of a backtest's journal, ``unfilled`` the
    orders left working at the end: the refusals (`refusal_metrics`), and the orders
    that ended short of their quantity, cancelled or left working."""
    halt = rec.halt
    cancels = rec.cancellations
    return {
        "signals": rec.signals,
        "orders": len(rec.orders),
        "fills": len(rec.fills),
        "unfilled_orders": unfilled_orders(
            cancels.column("order_id").tolist(),
            cancels.column("remaining").tolist(),
            (o.id for o in unfilled),
        ),
        **refusal_metrics(rec.refusals()),
        "halt": f"{halt.code} at {halt.timestamp:%Y-%m-%d %H:%M}" if halt else None,
        "model_trainings": sum(1 for t in rec.trainings if not t.skipped),
        "model_folds_skipped": sum(1 for t in rec.trainings if t.skipped),
    }


def folder_name(symbol: str) -> str:
    """Return a folder name for ``symbol`` (``BTC/USDT`` -> ``BTC-USDT``)."""
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in symbol)


def _metrics(
    pipeline: Pipeline,
    result: BacktestResult,
    run_dir: Path | None,
    trades: pd.DataFrame,
    beside: Beside,
    sheet_made: Piece[tuple[dict[str, Any], Rolling]] | None = None,
) -> tuple[dict[str, Any], Rolling]:
    """Return the run's metrics and its rolling figures (which its report draws).

    ``beside``: the figures that need no other are handed to it, beside the tearsheet,
    and awaited in the order they were computed in before (the first error is the one
    raised). ``sheet_made``: the tearsheet and its rolling figures, begun before
    (`_early_sheet`), awaited where they would have been computed."""
    bars = result.bars
    rec = result.recorder
    universe = result.universe
    one = len(universe.symbols) == 1
    index = universe.index
    calendar = bars.calendar
    year = calendar.periods_per_year(bars.timeframe_seconds, index[0].value, index[-1].value)
    close = result.closes
    benchmark = bars.frame["close"] if one else equal_weight(close, index)
    initial_cash = result.portfolio.initial_cash
    equity = result.equity["equity"]
    returns = simple_returns(equity.to_numpy(np.float64), initial_cash)  # for every figure

    def figures_of() -> dict[str, Any]:
        return account_figures(
            equity,
            # the bars with a position: any symbol's
            result.equity["position"] if one else pd.Series(np.abs(result.positions).sum(1)),
            benchmark,
            result.portfolio,
            timeframe_seconds=bars.timeframe_seconds,
            fills=rec.fills,
            trade_figures=trade_statistics(trades, bars.timeframe_seconds),
            # None for crypto: the 365-day year, computed exactly as before calendars
            periods_per_year=None if calendar is CRYPTO else year,
            returns=returns,
        )

    def predictions_of() -> dict[str, Any]:
        horizon = max(int(pipeline.model.horizon), 1)
        if one:
            return prediction_auc(result.probability, bars.frame["close"], horizon)
        return _pooled_auc(result, horizon)

    def attribution_of() -> dict[str, Any]:
        return symbol_attribution(
            universe.symbols,
            rec.fills,
            rec.order_symbols,
            result.portfolio.trades,
            result.positions,
            close,
            equity.to_numpy(np.float64),
        )

    attribution_beside = beside.submit("attribution", attribution_of)
    predictions_beside = beside.submit("predictions", predictions_of)
    figures_beside = beside.submit("account figures", figures_of)
    try:
        if sheet_made is None:
            tails_beside = beside.submit("tail figures", tail_figures, returns)
            sheet, rolling = _sheet(
                equity, benchmark, initial_cash, year, one, returns, tails_beside.result
            )
        else:
            sheet, rolling = sheet_made.result()
    except BaseException:
        figures_beside.result()  # (raises the figures' error, computed before these)
        predictions_beside.result()
        raise
    figures = figures_beside.result()
    predictions = predictions_beside.result()
    monitors = {label: m.summary() for label, m in result.monitors.items()}
    statuses = [str(s.get("status")) for s in monitors.values() if "status" in s]
    untrained = never_trained(pipeline.model, rec.trainings, result.features if one else None)
    if untrained is not None:
        _log.warning("model_never_trained", strategy=pipeline.config.name, reason=untrained)
    model = pipeline.model
    calibrated = model.calibration_by_fold if isinstance(model, ModelCalibration) else None
    # model.calibration: each fold before and after its calibrator (`calibration_figures`)
    calibration_keys = {"calibration_by_fold": calibrated} if calibrated else {}
    universe_keys: dict[str, Any] = {}
    if not one:
        universe_keys = {"symbols": list(universe.symbols), "benchmark": "equal_weight"}
    metrics = {
        "strategy": pipeline.config.name,
        "run_dir": None if run_dir is None else str(run_dir),
        "symbol": bars.symbol if one else ",".join(universe.symbols),
        **universe_keys,
        **calibration_keys,
        "timeframe": bars.timeframe,
        "bars": len(bars),
        "calendar": calendar.name,
        "periods_per_year": year,
        **figures,
        "tearsheet": sheet,
        "open_position": float(result.portfolio.position) if one else None,
        "open_position_entry_price": result.portfolio.entry_price if one else None,
        "open_position_entry_time": _entry_time(result) if one else None,
        "open_position_pnl": _open_pnl(result),
        **journal_counts(rec, result.unfilled),
        "auc": predictions["auc"],
        "predictions": predictions["predictions"],
        "monitoring": monitors,
        "health": run_health(statuses, untrained),
        "health_worst": run_health(
            [str(c.status) for c in rec.health_changes] + statuses, untrained
        ),
        # only where it holds: a run whose model trained writes the metrics.json it did
        **({"model_never_trained": untrained} if untrained else {}),
        "retrains": retrains(rec.trainings, index),
        "health_actions": action_counts(pipeline.config.health, rec.health_actions),
        "attribution": attribution_beside.result(),
    }
    return metrics, rolling


def _sheet(
    equity: pd.Series,
    benchmark: pd.Series,
    initial_cash: float,
    year: float,
    one: bool,
    returns: npt.NDArray[np.float64],
    tails: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], Rolling]:
    """Return the tearsheet and the rolling figures it holds (``tails``: the returns'
    tail figures, maybe computed beside)."""
    rolling = run_rolling(equity, initial_cash, year, returns)
    sheet = tearsheet(
        equity,
        benchmark,
        initial_cash=initial_cash,
        periods_per_year=year,
        benchmark="buy and hold" if one else "equal weight",
        rolling=rolling,
        returns=returns,
        tails=tails,
    )
    return sheet, rolling


def _early_sheet(universe: Universe, curve: Curve) -> tuple[dict[str, Any], Rolling]:
    """Return `_metrics`' tearsheet and rolling figures from the curve alone, as soon as
    it is known (a held run's, while its rows are decoded): the same inputs `_metrics`
    takes from the run's result, the same numbers."""
    one = len(universe.symbols) == 1
    bars = universe.bars[0]
    index = universe.index
    year = bars.calendar.periods_per_year(bars.timeframe_seconds, index[0].value, index[-1].value)
    benchmark = bars.frame["close"] if one else equal_weight(curve.closes, index)
    equity = curve.equity["equity"]
    returns = simple_returns(equity.to_numpy(np.float64), curve.initial_cash)
    tails = functools.partial(tail_figures, returns)
    return _sheet(equity, benchmark, curve.initial_cash, year, one, returns, tails)


def _pooled_auc(result: BacktestResult, horizon: int) -> dict[str, Any]:
    """Return the AUC of every symbol's predictions whose outcome is known, pooled.

    Each symbol's outcome is its own close ``horizon`` of its bars later.
    """
    scores, ups = [], []
    for bars, symbol in zip(result.universe.bars, result.universe.symbols, strict=True):
        p = result.probabilities[symbol].reindex(bars.frame.index).to_numpy(np.float64)
        c = bars.frame["close"].to_numpy(np.float64)
        n = len(p) - horizon
        if n > 0:
            known = ~np.isnan(p[:n])
            scores.append(p[:n][known])
            ups.append((c[horizon:] > c[:n])[known])
    if not scores:
        return {"auc": math.nan, "predictions": 0}
    score = np.concatenate(scores)
    return {"auc": auc(score, np.concatenate(ups)), "predictions": len(score)}


def _entry_time(result: BacktestResult) -> str | None:
    bar = result.portfolio.entry_bar
    return None if bar is None else result.bars.frame.index[bar].isoformat()


def _open_pnl(result: BacktestResult) -> float | None:
    """Return the open position's P&L at the last close, before the fees of closing it."""
    portfolio = result.portfolio
    if len(result.universe.symbols) > 1:
        return None  # by symbol: the attribution's open positions
    if portfolio.entry_price is None or portfolio.position == 0.0:
        return None
    last = float(result.bars.frame["close"].iloc[-1])
    return portfolio.position * (last - portfolio.entry_price)


@dataclass(frozen=True)
class _Parquet:
    """A run's Parquet table to write: its file name, rows, where the report draws its
    columns (`tradeloom.reporting.exports.write_parquet`), and whether the report draws
    it from memory."""

    name: str
    frame: pd.DataFrame
    plots: Mapping[str, str] | None = None
    drawn: bool = True


def _parquet_tables(
    pipeline: Pipeline, result: BacktestResult, keep: Collection[str] | None = None
) -> list[_Parquet]:
    """Return the per-bar Parquet tables of the run but its bars (`_bars_table`): its
    features (``keep``'s symbols' alone: `_charted`) and monitors."""
    rec = result.recorder
    tables = []
    if pipeline.config.outputs.features:
        with stage(exports.FEATURES_FILE):
            features = _features_table(result, keep)
        tables.append(_Parquet(exports.FEATURES_FILE, features, feature_plots(pipeline)))
    if rec.monitor_values:
        with stage(exports.MONITORING_FILE):
            frame = exports.monitoring_frame(rec.monitor_values, result.bars.frame.index)
        tables.append(_Parquet(exports.MONITORING_FILE, frame, drawn=False))
    return tables


def _bars_table(universe: Universe, keep: Collection[str] | None = None) -> _Parquet:
    """Return ``bars.parquet``: the bars of each symbol (``keep``'s alone: `_charted`)
    as they were read."""
    pairs = [
        (b.frame, s)
        for b, s in zip(universe.bars, universe.symbols, strict=True)
        if keep is None or s in keep
    ]
    frames, symbols = [f for f, _ in pairs], tuple(s for _, s in pairs)
    return _Parquet(exports.BARS_FILE, exports.bars_frame(frames, symbols))


def _charted(symbols: Sequence[str], trades: pd.DataFrame) -> frozenset[str] | None:
    """Return the symbols whose bars and features the run folder of a universe of more
    than `tradeloom.reporting.charted.CHARTED_SYMBOLS` keeps: those its report charts,
    the most traded (`tradeloom.reporting.charted.most_traded`); None (every symbol) up
    to that count. Each symbol's figures are in the other tables whatever its count; its
    bars are the data's."""
    if len(symbols) <= charted.CHARTED_SYMBOLS:
        return None
    return frozenset(charted.most_traded(trades, symbols))


def _drawn_equity(equity: pd.DataFrame, form: TableFormat) -> Mapping[str, pd.DataFrame]:
    """Return the equity table's rows the report draws, by its file name: as either form
    reads back (times to the second: `as_read`), or as written (None: the report reads
    the file)."""
    read_back = as_read(equity, csv=True)
    return {table_name(EQUITY, form): equity if read_back is None else read_back}


def _unwritten(
    run_dir: Path, names: Sequence[str], failure: BaseException, job: Future[None]
) -> None:
    """Remove the tables of a failed run's ``job`` once it ended (a done callback); the
    job's own error, where the run raised another (``failure``), is logged, not lost."""
    error = None if job.cancelled() else job.exception()
    if error is not None and error is not failure:
        _log.warning(
            "table_not_written",
            run_dir=str(run_dir),
            tables=list(names),
            error=f"{type(error).__name__}: {error}",
        )
    _unwrite(run_dir, names)


def _unwrite(run_dir: Path, names: Sequence[str]) -> None:
    """Remove the tables a failed run's workers wrote (once they stopped)."""
    for name in names:
        with contextlib.suppress(OSError):  # not written: its job failed or never started
            (run_dir / name).unlink()


def _write_parquet_tables(run_dir: Path, tables: list[_Parquet]) -> None:
    """Write the run's Parquet tables (in a worker thread)."""
    for table in tables:
        with stage(f"{WORKER}{table.name}"):
            exports.write_parquet(run_dir / table.name, table.frame, table.plots)


def _features_table(result: BacktestResult, keep: Collection[str] | None = None) -> pd.DataFrame:
    """Return ``features.parquet``'s rows: per bar, or per bar and symbol (``symbol``
    first; ``keep``'s symbols alone, None: every one)."""
    rec, universe = result.recorder, result.universe
    if len(universe.symbols) == 1:
        return exports.features_frame(result.features, result.probability, rec.signal_events)
    present = universe.present()
    of_symbol = positions_by_key(rec.signal_symbols)  # one pass over the signals
    signals = {c: column(rec.signal_events, c) for c in ("bar", "direction", "confidence")}
    frames = []
    for s, symbol in enumerate(universe.symbols):
        if keep is not None and symbol not in keep:
            continue
        rows = np.asarray(of_symbol.get(symbol, ()), np.int64)
        kept: Kept[Any] = Kept()  # the symbol's signals, by their columns
        kept.add(len(rows), {c: v[rows] for c, v in signals.items()}, _taken(rec, rows))
        frame = exports.features_frame(
            result.symbol_features.clock[s], result.probabilities[symbol], kept
        )
        frame.insert(0, "symbol", symbol)
        frames.append(frame[present[:, s]])
    return pd.concat(frames).sort_index(kind="stable")


def _write_curve(
    write: Callable[..., None], run_dir: Path, curve: Curve, setting: str
) -> tuple[pd.DataFrame, TableFormat]:
    """Hand the tables of a row per bar (equity, positions) to the workers (``write``) as
    soon as the core's curve is known (`run_backtest`'s ``curved``): written while the
    run's rows are journaled. Return the equity table's rows and the tables' format."""
    equity = curve.equity.reset_index(names="timestamp")
    form = table_format(setting, len(equity), len(curve.symbols))
    write([table_name(EQUITY, form)], _write_equity, run_dir, equity.copy(deep=False), form)
    write([table_name(POSITIONS, form)], _write_positions, run_dir, curve, form)
    return equity, form


def _write_equity(run_dir: Path, equity: pd.DataFrame, form: TableFormat) -> None:
    """Write the equity table, as ``form``, in a worker thread."""
    with stage(f"{WORKER}{table_name(EQUITY, form)}"):
        write_table(run_dir, EQUITY, equity, form)


def _write_positions(run_dir: Path, curve: Curve, form: TableFormat) -> None:
    """Write the table of every bar's positions, as ``form``, in a worker thread."""
    with stage(f"{WORKER}{table_name(POSITIONS, form)}"):
        write_table(run_dir, POSITIONS, _positions(curve), form)


def _taken(rec: Recorder, rows: npt.NDArray[np.int64]) -> Callable[[], list[Any]]:
    return lambda: [rec.signal_events[i] for i in rows.tolist()]


def _event_tables(result: BacktestResult, form: TableFormat) -> dict[str, pd.DataFrame]:
    """Return the tables of events by file name: ``orders``, ``fills`` and ``trades``, as
    ``form`` names them (the per-bar tables' format; the report reads them)."""
    orders, fills = _orders_table(result), _fills_table(result)
    named = {table_name(ORDERS, form): orders, table_name(FILLS, form): fills}
    return {**named, **_trades_table(result, form)}


def _trades_table(result: BacktestResult, form: TableFormat) -> dict[str, pd.DataFrame]:
    """Return the trades table's rows by its file name (``trades.csv`` or ``.parquet``)."""
    rec = result.recorder
    with stage("trades"):
        trades = trade_frame(result.portfolio.trades, rec.orders, rec.fills, rec.order_symbols)
    return {table_name(TRADES, form): trades}


def _orders_table(result: BacktestResult) -> pd.DataFrame:
    """Return ``orders.csv``'s rows."""
    rec = result.recorder
    with stage("orders"):
        orders = records(rec.orders, ORDER_COLUMNS)
        orders.insert(0, "symbol", _market_column(rec.orders, "id", rec.order_symbols))
    return orders


def _fills_table(result: BacktestResult) -> pd.DataFrame:
    """Return ``fills.csv``'s rows."""
    rec = result.recorder
    with stage("fills"):
        fills = records(rec.fills, FILL_COLUMNS)
        fills.insert(0, "symbol", _market_column(rec.fills, "order_id", rec.order_symbols))
    return fills


def _write_event_tables(run_dir: Path, tables: Mapping[str, pd.DataFrame]) -> None:
    """Write the tables of events (`_event_tables`), CSV or Parquet as each one's file
    name says, in a worker thread."""
    for name, frame in tables.items():
        with stage(f"{WORKER}{name}"):
            stem, _, form = name.rpartition(".")
            write_table(run_dir, stem, frame, "parquet" if form == "parquet" else "csv")


def _positions(curve: Curve) -> pd.DataFrame:
    """Return every bar's non-zero position of each symbol, marked at its last close."""
    return position_rows(curve.equity.index, curve.closes, curve.positions, curve.symbols)


ORDER_COLUMNS = ("id", "bar", "timestamp", "side", "quantity", "reason", "reference_price")
FILL_COLUMNS = ("order_id", "bar", "timestamp", "side", "quantity", "price", "fee", "slippage")


def records(items: Sequence[Any], columns: tuple[str, ...]) -> pd.DataFrame:
    """Return one row per item of ``columns``, read as its attributes (a `Kept`'s from
    its columns, without an object per row)."""
    if not len(items):
        return pd.DataFrame([], columns=list(columns))
    data: dict[str, Any] = {}
    for c in columns:
        values = times(items, c) if c == "timestamp" else column(items, c)
        # texts (ids, reasons) as pandas infers them, without its inference
        data[c] = texts(values) if values.dtype == object else values
    return pd.DataFrame(data)


def markets(items: Sequence[Any], key: str, order_symbols: Mapping[str, str]) -> list[str]:
    """Return the market of each of ``items`` (orders, fills), by its order id ``key``."""
    return list(map(order_symbols.__getitem__, column(items, key).tolist()))


def _market_column(items: Sequence[Any], key: str, order_symbols: Mapping[str, str]) -> Any:
    """Return `markets` as a table's column (`tradeloom.tables.text_columns`): one market's
    without looking each row's up."""
    named = set(order_symbols.values())
    if len(named) == 1 and len(items):
        return labelled(np.zeros(len(items), np.int8), sorted(named))
    return texts(markets(items, key, order_symbols))
