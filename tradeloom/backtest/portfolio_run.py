"""Run a validated portfolio file as a backtest and write its run directory.

The run directory holds what a strategy's does (the journal, ``metrics.json``,
``equity.csv``, ``orders.csv``, ``fills.csv``, ``trades.csv``, ``positions.csv``,
``models/``; the per-bar tables and those of events as its strategies'
``outputs.tables`` says), with the
portfolio's names: the book (``STRATEGY:SYMBOL``) is the journal's symbol on every
market event, and a book's client order ids start with its strategy's name.
``strategy.yaml`` is the resolved portfolio file, and ``strategies/NAME.yaml`` each
resolved strategy file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.backtest.journaled_run import journaled_run
from tradeloom.backtest.pipeline import Driver
from tradeloom.backtest.portfolio import PortfolioResult, run_portfolio_backtest
from tradeloom.backtest.results import journal_counts
from tradeloom.backtest.run import run_key
from tradeloom.backtest.saved_models import folder_name, save_trained
from tradeloom.backtest.tables import FILL_COLUMNS, ORDER_COLUMNS, markets, records
from tradeloom.engine.account import account_problems
from tradeloom.engine.allocation import GivenWeights
from tradeloom.engine.capabilities import calibration_metric
from tradeloom.engine.frames import equal_weight, position_rows
from tradeloom.engine.portfolio_checks import portfolio_problems
from tradeloom.engine.run_dir import open_run_dir
from tradeloom.engine.sides import sides_metric
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import ConfigError
from tradeloom.plugins.manager import Plugins
from tradeloom.plugins.model.registry import MODELS_DIR
from tradeloom.reporting import exports, outputs
from tradeloom.reporting.account_figures import account_figures
from tradeloom.reporting.attribution import group_attribution, symbol_attribution
from tradeloom.reporting.drawdowns import drawdown_curve
from tradeloom.reporting.refusals import warn_refused_exits
from tradeloom.reporting.run_tables import (
    EQUITY,
    FILLS,
    ORDERS,
    POSITIONS,
    TRADES,
    table_format,
    write_table,
)
from tradeloom.reporting.statistics import trade_statistics
from tradeloom.reporting.tearsheet import tearsheet
from tradeloom.reporting.trades import trade_frame
from tradeloom.runtime.memory import keep_freed_memory
from tradeloom.schemas.portfolio_file import PortfolioConfig
from tradeloom.text.run_files import answer_caches, write_run_answers
from tradeloom.time.calendars import CRYPTO

__all__ = ["PortfolioOutcome", "run_portfolio"]


STRATEGIES_DIR = "strategies"


class PortfolioOutcome:
    """Where a portfolio run wrote its files, its metrics, and the in-memory result."""

    def __init__(self, run_dir: Path, metrics: dict[str, Any], result: PortfolioResult) -> None:
        self.run_dir = run_dir
        self.metrics = metrics
        self.result = result


def run_portfolio(
    portfolio: PortfolioConfig,
    pipelines: list[Pipeline],
    plugins: Plugins,
    *,
    out: Path | None = None,
    driver: Driver = "auto",
    given_weights: GivenWeights | None = None,
) -> PortfolioOutcome:
    """Backtest the strategies of ``portfolio`` on one account and write the run directory.

    Args:
        portfolio: The validated portfolio file.
        pipelines: Its strategies, built, in file order.
        plugins: The plugin manager whose observers are told about the run.
        out: The run directory to use instead of ``runs/<name>-<time>``.
        driver: Which driver runs the account's core (`run_portfolio_backtest`).
        given_weights: The weights between the strategies, as a run decided them (a
            parity replay), instead of the file's allocation (`run_portfolio_backtest`).

    Raises:
        ConfigError: The strategies cannot share one account (`account_problems`,
            `portfolio_problems`), before the run directory is made.
    """
    problems = account_problems(pipelines)
    problems += portfolio_problems(portfolio, pipelines)  # validation's, too
    if problems:
        raise ConfigError(problems)
    keep_freed_memory()  # the run's arrays reuse the pages of those it dropped
    top = portfolio.file
    run_dir, lock = open_run_dir(top.name, out)
    run_dir = run_dir.resolve()
    try:
        return _run(portfolio, pipelines, plugins, run_dir, driver, given_weights)
    finally:
        lock.release_pid()


def _run(
    portfolio: PortfolioConfig,
    pipelines: list[Pipeline],
    plugins: Plugins,
    run_dir: Path,
    driver: Driver,
    given_weights: GivenWeights | None,
) -> PortfolioOutcome:
    top = portfolio.file
    document = top.model_dump(mode="json")
    outputs.write_strategy(run_dir, document)
    (run_dir / STRATEGIES_DIR).mkdir()
    for pipeline in pipelines:
        config = pipeline.config
        outputs.write_strategy(run_dir / STRATEGIES_DIR, config.document, f"{config.name}.yaml")
    with journaled_run(run_dir, top.name, portfolio.source, plugins, document=document) as session:
        key = run_key([document, *(p.config.document for p in pipelines)])
        result = run_portfolio_backtest(
            portfolio, pipelines, session.recorder, key, driver=driver, given_weights=given_weights
        )
        registry = _save_models(pipelines, result, run_dir)
        rec = result.recorder
        trades = trade_frame(result.portfolio.trades, rec.orders, rec.fills, rec.order_symbols)
        metrics = portfolio_metrics(portfolio, pipelines, result, run_dir, trades)
        metrics["model_registry"] = registry
        _write(run_dir, result, metrics, trades, _tables(pipelines))
        caches = answer_caches(f for pipeline in pipelines for f in pipeline.features)
        if caches:  # the LLM answers every strategy's text features read, as one's
            write_run_answers(run_dir, caches)
        from tradeloom.reporting.report import write_report  # plotly: only when a run ends

        write_report(run_dir)
        session.metrics = metrics
    return PortfolioOutcome(run_dir, metrics, result)


def _save_models(
    pipelines: list[Pipeline], result: PortfolioResult, run_dir: Path
) -> dict[str, Any]:
    """Save each strategy's models under ``models/STRATEGY/`` (``/SYMBOL`` per symbol)."""
    registry: dict[str, Any] = {}
    for pipeline, models in zip(pipelines, result.models, strict=True):
        config = pipeline.config
        own: dict[str, Any] = {}
        for symbol, model in models.items():
            relative = f"{MODELS_DIR}/{config.name}"
            if symbol:
                relative += f"/{folder_name(symbol)}"
            own[symbol] = save_trained(
                model, config, run_dir, relative, result.index, result.recorder, symbol
            )
        registry[config.name] = own[""] if list(own) == [""] else own
    return registry


def portfolio_metrics(
    portfolio: PortfolioConfig,
    pipelines: list[Pipeline],
    result: PortfolioResult,
    run_dir: Path,
    trades: pd.DataFrame,
) -> dict[str, Any]:
    """Return ``metrics.json``: the account's figures, and attribution by strategy,
    by symbol and by book (`tradeloom.reporting.attribution`)."""
    rec = result.recorder
    books = result.books
    index = result.index
    first = result.universes[0].bars[0]
    calendar = first.calendar
    timeframe = first.timeframe_seconds
    year = calendar.periods_per_year(timeframe, index[0].value, index[-1].value)
    equity = pd.Series(result.equity, index=index)
    initial = result.portfolio.initial_cash
    figures = account_figures(
        equity,
        pd.Series(np.abs(result.positions).sum(1), index=index),
        equal_weight(result.closes, index),
        result.portfolio,
        timeframe_seconds=timeframe,
        fills=rec.fills,
        trade_figures=trade_statistics(trades, timeframe),
        periods_per_year=None if calendar is CRYPTO else year,
    )
    by_book = symbol_attribution(
        books.names,
        rec.fills,
        rec.order_symbols,
        result.portfolio.trades,
        result.positions,
        result.closes,
        result.equity,
    )
    by_strategy = group_attribution(by_book, [books.strategies[k] for k in books.owner])
    for k, name in enumerate(books.strategies):
        by_strategy[name]["weight"] = float(result.weights[-1, k])
    by_symbol = group_attribution(by_book, list(books.symbols))
    allocation = portfolio.file.allocation
    return {
        "strategy": portfolio.file.name,
        "run_dir": str(run_dir),
        "portfolio": {
            "strategies": list(books.strategies),
            "allocation": allocation.kind,
            "window": allocation.window,
            # only where it is set: other portfolios' metrics are as they were
            **(
                {"rebalance": allocation.rebalance.model_dump(exclude_none=True)}
                if allocation.rebalance is not None
                else {}
            ),
            "weights": dict(zip(books.strategies, portfolio.weights, strict=True)),
        },
        "symbol": ",".join(books.markets),
        "symbols": list(books.markets),
        "books": list(books.names),
        "benchmark": "equal_weight",
        "timeframe": first.timeframe,
        "bars": len(index),
        "calendar": calendar.name,
        "periods_per_year": year,
        **figures,
        "tearsheet": tearsheet(
            equity,
            equal_weight(result.closes, index),
            initial_cash=initial,
            periods_per_year=year,
            benchmark="equal weight",
        ),
        "open_position": None,
        "open_position_entry_price": None,
        "open_position_entry_time": None,
        "open_position_pnl": None,
        **journal_counts(rec, result.unfilled),
        "monitoring": {},
        "health": None,
        "health_worst": None,
        "attribution": by_symbol,
        "attribution_by_strategy": by_strategy,
        "attribution_by_book": by_book,
        **_calibration_warnings(pipelines),
        **_sides_warnings(pipelines),
    }


def _calibration_warnings(pipelines: Sequence[Pipeline]) -> dict[str, str]:
    """``calibration_warning`` of each strategy it holds for, named, in one line."""
    said = [calibration_metric(p.config, p.sizer, p.model, member=p.config.name) for p in pipelines]
    lines = [entry["calibration_warning"] for entry in said if entry]
    return {"calibration_warning": "; ".join(lines)} if lines else {}


def _sides_warnings(pipelines: Sequence[Pipeline]) -> dict[str, str]:
    """``sides_warning`` of each strategy it holds for, named, in one line."""
    said = [sides_metric(p.config, p.venue, member=p.config.name) for p in pipelines]
    lines = [entry["sides_warning"] for entry in said if entry]
    return {"sides_warning": "; ".join(lines)} if lines else {}


def _tables(pipelines: list[Pipeline]) -> str:
    """Return the ``outputs.tables`` of a portfolio's run: its strategies' where they all
    say the same, else ``auto``."""
    settings = {p.config.outputs.tables for p in pipelines}
    return settings.pop() if len(settings) == 1 else "auto"


def _write(
    run_dir: Path,
    result: PortfolioResult,
    metrics: dict[str, Any],
    trades: pd.DataFrame,
    tables: str,
) -> None:
    form = table_format(tables, len(result.index))
    metrics["tables"] = form  # the summary and a script say which files hold the tables
    outputs.write_metrics(run_dir, metrics)
    warn_refused_exits(metrics)
    write_table(run_dir, EQUITY, equity_frame(result).reset_index(names="timestamp"), form)
    rec = result.recorder
    strategy_of = _strategy_of(result)
    orders = records(rec.orders, ORDER_COLUMNS)
    _label(orders, markets(rec.orders, "id", rec.order_symbols), strategy_of)
    write_table(run_dir, ORDERS, orders, form)
    fills = records(rec.fills, FILL_COLUMNS)
    _label(fills, markets(rec.fills, "order_id", rec.order_symbols), strategy_of)
    write_table(run_dir, FILLS, fills, form)
    trades = trades.copy()
    if "symbol" in trades:
        books = trades.pop("symbol").tolist()
        _label(trades, books, strategy_of)
    write_table(run_dir, TRADES, trades, form)
    write_table(run_dir, POSITIONS, _positions(result), form)
    bars: dict[
        str, pd.DataFrame
    ] = {}  # each market's bars, as the first strategy that trades it read them
    for universe in result.universes:
        for symbol, own in zip(universe.symbols, universe.bars, strict=True):
            bars.setdefault(symbol, own.frame)
    frame = exports.bars_frame(list(bars.values()), list(bars))
    exports.write_parquet(run_dir / exports.BARS_FILE, frame)


def _strategy_of(result: PortfolioResult) -> dict[str, tuple[str, str]]:
    books = result.books
    return {
        name: (books.strategies[k], symbol)
        for name, k, symbol in zip(books.names, books.owner, books.symbols, strict=True)
    }


def _label(frame: pd.DataFrame, books: list[str], strategy_of: dict[str, tuple[str, str]]) -> None:
    """Put the strategy and the symbol of each row's book first (in place)."""
    frame.insert(0, "symbol", [strategy_of[b][1] for b in books])
    frame.insert(0, "strategy", [strategy_of[b][0] for b in books])


def equity_frame(result: PortfolioResult) -> pd.DataFrame:
    """Return the equity table: the account, then per strategy, per symbol and per book.

    Columns: ``cash equity drawdown``; per strategy ``weight[S]`` (its weight at the
    bar), ``pnl[S]`` (its books' P&L) and ``equity[S]`` (its weight at the first bar
    times the initial cash, plus its P&L); per symbol ``close[M]`` and ``value[M]`` (its
    books' positions at its last close); per book ``position[B]`` and ``value[B]``.
    """
    books = result.books
    index = result.index
    initial = result.portfolio.initial_cash
    frame = pd.DataFrame({"cash": result.cash, "equity": result.equity}, index=index)
    frame["drawdown"] = drawdown_curve(result.equity, initial)
    marks = pd.DataFrame(result.closes).ffill().to_numpy()
    values = np.where(result.positions != 0.0, result.positions * marks, 0.0)
    owner = np.asarray(books.owner)
    columns: dict[str, np.ndarray] = {}
    for k, name in enumerate(books.strategies):
        pnl = result.pnl[:, owner == k].sum(axis=1)
        columns[f"weight[{name}]"] = result.weights[:, k]
        columns[f"pnl[{name}]"] = pnl
        columns[f"equity[{name}]"] = result.weights[0, k] * initial + pnl
    symbols = np.asarray(books.symbols)
    for market in books.markets:
        mine = symbols == market
        columns[f"close[{market}]"] = result.closes[:, np.flatnonzero(mine)[0]]
        columns[f"value[{market}]"] = values[:, mine].sum(axis=1)
    for b, name in enumerate(books.names):
        columns[f"position[{name}]"] = result.positions[:, b]
        columns[f"value[{name}]"] = values[:, b]
    return pd.concat([frame, pd.DataFrame(columns, index=index)], axis=1)


def _positions(result: PortfolioResult) -> pd.DataFrame:
    """Return every bar's non-zero position of each book, marked at its last close."""
    books = result.books
    strategy = [books.strategies[k] for k in books.owner]
    return position_rows(
        result.index, result.closes, result.positions, books.symbols, {"strategy": strategy}
    )
