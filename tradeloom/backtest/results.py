"""A backtest's results: its metrics (the account's, the predictions', the tearsheet's,
the execution quality, a router's venues and a perpetual's funding), computed beside one
another, and the files they are written to (``metrics.json``, ``report.html``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.backtest.beside import Beside, Piece
from tradeloom.backtest.pipeline import BacktestResult, Curve
from tradeloom.backtest.saved_models import save_models
from tradeloom.domain import Order, Universe
from tradeloom.engine.book_checks import book_of
from tradeloom.engine.capabilities import calibration_metric
from tradeloom.engine.events import Recorder
from tradeloom.engine.frames import equal_weight
from tradeloom.engine.funding import funding_series
from tradeloom.engine.health import (
    action_counts,
    never_trained,
    retrains,
    run_health,
    worst_health_at,
)
from tradeloom.engine.sides import sides_metric
from tradeloom.engine.text_guard import text_metrics
from tradeloom.engine.wiring import Pipeline
from tradeloom.journal import journal_path
from tradeloom.plugins.protocols import ModelCalibration
from tradeloom.reporting import outputs
from tradeloom.reporting.account_figures import account_figures
from tradeloom.reporting.allocation_figures import allocation_block
from tradeloom.reporting.attribution import symbol_attribution
from tradeloom.reporting.execution_quality import (
    OTHER_KINDS,
    journal_execution_quality,
    plain_execution_quality,
    terms_of,
)
from tradeloom.reporting.funding import journal_funding
from tradeloom.reporting.labels import TRADES_NOT_APPLICABLE
from tradeloom.reporting.metrics import prediction_auc
from tradeloom.reporting.refusals import refusal_metrics, unfilled_orders, warn_refused_exits
from tradeloom.reporting.run_tables import TRADES, TableFormat, table_name
from tradeloom.reporting.statistics import trade_statistics
from tradeloom.reporting.tearsheet import (
    Rolling,
    run_rolling,
    tail_figures,
    tearsheet,
)
from tradeloom.reporting.venue_accounts import KINDS as VENUE_KINDS
from tradeloom.reporting.venue_accounts import journal_venue_accounts
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.stage_times import stage
from tradeloom.schemas.config import StrategyConfig
from tradeloom.stats import auc
from tradeloom.time.calendars import CRYPTO

__all__ = [
    "early_sheet",
    "finish_results",
    "journal_counts",
    "run_figures",
    "write_results",
]

_log = logger("tradeloom.run")


def finish_results(
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
    (`drawn_equity`, computed beside; None: no report); ``tables``: the tables the
    report draws (`event_tables`, the Parquet tables), which the workers write:
    ``written`` waits for every table they write, and raises the first error of one,
    before metrics.json is written (and the report may read one); ``form``: the format
    of the per-bar tables, which ``metrics.json``'s ``tables`` names."""
    config = pipeline.config
    with stage("models saved"):
        registry = save_models(pipeline, result, recorder, run_dir)
    metrics, rolling = run_figures(
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
    write_results(run_dir, config, metrics, {**drawn, **tables}, rolling)
    return metrics


def write_results(
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


def run_figures(
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

    ``registry``: the models saved (`save_models`); ``trades``: the trades table;
    ``run_dir``: the run's folder (None: held in memory); ``journal``: the path of the
    run's journal as committed so far, read for what the run did not keep (a router's
    venues, a perpetual's funding, the execution quality of orders that are more than
    their own rows); ``form``: the format of the per-bar tables, which ``metrics.json``'s
    ``tables`` names; ``sheet_made``: the tearsheet, begun before (`early_sheet`). The
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
            # measured from the journal, as every mode is: committed for its readers,
            # without fsync (the run's close commits durably, once)
            recorder.journal.flush(durable=False)
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
    (`early_sheet`), awaited where they would have been computed."""
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
    returns = result.returns  # for every figure

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
        **worst_health_at(rec.health_changes, statuses, untrained),
        **calibration_metric(pipeline.config, pipeline.sizer, pipeline.model),
        **sides_metric(pipeline.config, pipeline.venue),
        # only with text features: other runs' metrics are as they were
        **text_metrics(pipeline.config, pipeline.features, universe),
        "retrains": retrains(rec.trainings, index),
        "health_actions": action_counts(pipeline.config.health, rec.health_actions),
        "attribution": attribution_beside.result(),
    }
    realism = getattr(pipeline.venue, "realism_text", "")
    if realism:  # only with execution.realism: other runs' metrics are as they were
        metrics["realism"] = realism
    book = book_of(pipeline.venue)
    if book is not None:  # only with fill: book: other runs' metrics are as they were
        metrics["fills_from"] = f"the recorded book {book.source} (fill: book)"
    allocation = pipeline.config.allocation
    if allocation is not None:  # only where it holds: other runs' metrics are as they were
        decisions = ((d.status, d.weights, d.held) for d in rec.allocations)
        metrics["allocation"] = allocation_block(allocation.kind, decisions, metrics["refusals"])
        metrics["trade_statistics"] = TRADES_NOT_APPLICABLE
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


def early_sheet(universe: Universe, curve: Curve) -> tuple[dict[str, Any], Rolling]:
    """Return `_metrics`' tearsheet and rolling figures from the curve alone, as soon as
    it is known (a held run's, while its rows are decoded): the same inputs `_metrics`
    takes from the run's result, the same numbers."""
    one = len(universe.symbols) == 1
    bars = universe.bars[0]
    index = universe.index
    year = bars.calendar.periods_per_year(bars.timeframe_seconds, index[0].value, index[-1].value)
    benchmark = bars.frame["close"] if one else equal_weight(curve.closes, index)
    equity = curve.equity["equity"]
    returns = curve.returns
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
