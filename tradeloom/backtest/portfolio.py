"""The backtest of a portfolio file: each strategy's own pipeline, one account.

Each strategy loads its data, computes its features and trains its model alone, as
its own backtest would (`tradeloom.backtest.pipeline`): nothing of one strategy is an
input of another's. Their bars must share one clock. The account's core then trades
their books together (`tradeloom.engine.account`): the batch driver hands it every bar
at once, the per-bar driver one bar at a time; both journal the same events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.backtest.pipeline import (
    Driver,
    bar_inputs,
    check_probabilities,
    journal_unscored,
    ruled_on,
    working_orders,
)
from tradeloom.core.columns import BarTimes
from tradeloom.core.state import BarInputs
from tradeloom.domain import ModelTraining, Order, Universe
from tradeloom.engine.account import (
    SEPARATOR,
    AccountEngine,
    Books,
    account_spec,
    account_venue,
    allocator,
    join_inputs,
)
from tradeloom.engine.allocation import GivenWeights
from tradeloom.engine.book import Book
from tradeloom.engine.events import Recorder
from tradeloom.engine.features import universe_features
from tradeloom.engine.portfolio_checks import clock_problem, clock_text, group_problems
from tradeloom.engine.universe import journal_universe, load_universe
from tradeloom.engine.universe_model import fit_universe
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import ConfigError
from tradeloom.journal import OrderExpired
from tradeloom.schemas.portfolio_file import PortfolioConfig

__all__ = ["PortfolioResult", "join_inputs", "run_portfolio_backtest"]


@dataclass(frozen=True)
class PortfolioResult:
    """What a portfolio backtest produced.

    Attributes:
        books: The account's books (the core's rows).
        universes: Each strategy's bars, in file order.
        index: The common clock.
        closes, positions, pnl: ``[bars, books]``: each book's close (NaN: no bar), its
            position, and its P&L at the close (`tradeloom.engine.account.Ledger`).
        cash, equity: The account's, per bar.
        weights: ``[bars, strategies]``: the weights each bar's decisions used.
        portfolio: The account as the core holds it (trades, fees, initial cash).
        recorder: Journals the events and keeps what the outputs read.
        unfilled: The orders still working after the last bar.
        models: Per strategy, what its model trained (``{symbol: model}`` per symbol, or
            ``{"": model}``).
    """

    books: Books
    universes: tuple[Universe, ...]
    index: pd.DatetimeIndex
    closes: npt.NDArray[np.float64]
    positions: npt.NDArray[np.float64]
    pnl: npt.NDArray[np.float64]
    cash: npt.NDArray[np.float64]
    equity: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]
    portfolio: Book
    recorder: Recorder
    unfilled: tuple[Order, ...]
    models: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class _Strategy:
    universe: Universe
    inputs: BarInputs
    features: npt.NDArray[np.float64]
    columns: tuple[str, ...]
    trainings_at: dict[int, list[ModelTraining]]
    models: Mapping[str, Any]


def run_portfolio_backtest(
    portfolio: PortfolioConfig,
    pipelines: Sequence[Pipeline],
    recorder: Recorder,
    key: str,
    *,
    driver: Driver = "auto",
    given_weights: GivenWeights | None = None,
) -> PortfolioResult:
    """Run the strategies of ``portfolio`` on one account over their common clock.

    Args:
        portfolio: The validated portfolio file.
        pipelines: Its strategies, built, in file order.
        recorder: Journals and broadcasts the events.
        key: The run's key: a book's client order ids start ``STRATEGY-KEY-``.
        driver: ``auto`` or ``batch`` (every bar in one call of the core) or ``per_bar``.
        given_weights: The weights between the strategies as a run decided them, at the
            bars it decided them (a parity replay); None: as the file's ``allocation``
            says (`allocator`).

    The strategies must be able to share one account (`account_problems`, checked by
    `tradeloom.backtest.portfolio_run.run_portfolio` before the run starts).

    Raises:
        ConfigError: Their bars are not on one clock, or a group of ``risk.portfolio``
            names a market no strategy trades.
    """
    strategies = [_strategy(pipeline, recorder) for pipeline in pipelines]
    index = _common_clock(portfolio, pipelines, strategies)
    names = tuple(p.config.name for p in pipelines)
    books = Books(
        strategies=names,
        owner=tuple(k for k, s in enumerate(strategies) for _ in s.universe.symbols),
        symbols=tuple(symbol for s in strategies for symbol in s.universe.symbols),
    )
    _check_groups(portfolio, books)
    inputs = join_inputs([s.inputs for s in strategies])
    n = len(index)
    closes = inputs.px[3].copy()
    venue = account_venue(portfolio, pipelines[0])
    timeframe = strategies[0].universe.timeframe_seconds
    trainings_at: dict[int, list[ModelTraining]] = {}
    for strategy in strategies:
        for bar, trainings in strategy.trainings_at.items():
            trainings_at.setdefault(bar, []).extend(trainings)
    engine = AccountEngine(
        pipelines,
        books,
        allocator(portfolio) if given_weights is None else given_weights,
        closes.__getitem__,
        rows=[s.features for s in strategies],
        row_columns=[s.columns for s in strategies],
        prefixes=[f"{books.strategies[k]}-{key}" for k in books.owner],
        trainers={
            id(training): name
            for name, strategy in zip(names, strategies, strict=True)
            for trainings in strategy.trainings_at.values()
            for training in trainings
        },
        pipeline=replace(pipelines[0], venue=venue, monitors=()),
        recorder=recorder,
        order_id=lambda seq: f"{key}-{seq:06d}",  # unused: each book has its prefix
        times=BarTimes(index),
        timeframe_seconds=timeframe,
        calendar=strategies[0].universe.bars[0].calendar,
        features=lambda t: np.empty(0),  # unused: each book reads its strategy's rows
        columns=(),
        symbols=books.names,
        trainings_at=trainings_at,
        spec=account_spec(portfolio, pipelines, venue, timeframe, books),
        group_names=tuple(portfolio.file.risk.portfolio.groups),
    )
    rules = _member_rules(pipelines, inputs)
    if driver == "per_bar":
        for t in range(n):
            engine.run(inputs, t + 1)
            _replay_rules(engine, rules, t)
    else:
        while rules:  # a parity replay's promotions: each change at its bar's close
            bar = rules[0][0]
            engine.run(inputs, bar + 1)
            _replay_rules(engine, rules, bar)
        engine.run(inputs, n)
    engine.finish(inputs.time_ns, books.names[0])
    positions, cash, equity = engine.universe_curve(closes)
    unfilled = tuple(working_orders(engine))
    for order in unfilled:
        recorder.symbol = recorder.order_symbols[order.id]
        recorder.record(
            OrderExpired(
                **recorder.at(order.bar, order.timestamp, market=True),
                order_id=order.id,
                reason="no bar left to fill",
            )
        )
    return PortfolioResult(
        books=books,
        universes=tuple(s.universe for s in strategies),
        index=index,
        closes=closes,
        positions=positions,
        pnl=engine.ledger.pnl,
        cash=cash,
        equity=equity,
        weights=engine.ledger.history,
        portfolio=engine.portfolio,
        recorder=recorder,
        unfilled=unfilled,
        models=tuple(s.models or {"": p.model} for s, p in zip(strategies, pipelines, strict=True)),
    )


def _member_rules(
    pipelines: Sequence[Pipeline], inputs: BarInputs
) -> list[tuple[int, int, Pipeline]]:
    """Each strategy's ``Pipeline.signal_rules`` (a parity replay's: its promotions'), by
    the bar of ``inputs`` at whose close each was made: ``(bar, strategy, the pipeline its
    books trade from the next bar on)``, in the order of their bars."""
    changes = [
        (inputs.base + int(np.searchsorted(inputs.time_ns, time, side="right")) - 1, k, ruled)
        for k, pipeline in enumerate(pipelines)
        for time, ruled in ruled_on(pipeline)
    ]
    return sorted(changes, key=lambda change: change[0])


def _replay_rules(engine: AccountEngine, rules: list[tuple[int, int, Pipeline]], bar: int) -> None:
    """Decide and size each strategy's books by each change of ``rules`` made at or
    before ``bar`` from the next bar on, as a run's promotion did
    (`AccountEngine.reconfigure_member`)."""
    while rules and rules[0][0] <= bar:
        _, k, pipeline = rules.pop(0)
        engine.reconfigure_member(k, pipeline)


def _strategy(pipeline: Pipeline, recorder: Recorder) -> _Strategy:
    """Load, compute and fit one strategy alone, as its own backtest does."""
    universe = load_universe(pipeline)
    name = pipeline.config.name
    journal_universe(recorder, universe, [f"{name}{SEPARATOR}{s}" for s in universe.symbols])
    features = universe_features(pipeline, universe)
    journal_unscored(recorder, pipeline, universe, name)  # by its strategy, as paper's
    fitted = fit_universe(pipeline, universe, features)
    trainings_at: dict[int, list[ModelTraining]] = {}
    for training in fitted.trainings:
        trainings_at.setdefault(training.predict_start, []).append(training)
    inputs = bar_inputs(pipeline, universe, fitted.outputs, trainings_at)
    check_probabilities(inputs.px[5])
    rows = features.array()  # [bars, symbols, columns]
    return _Strategy(universe, inputs, rows, features.columns, trainings_at, fitted.models)


def _common_clock(
    portfolio: PortfolioConfig, pipelines: Sequence[Pipeline], strategies: Sequence[_Strategy]
) -> pd.DatetimeIndex:
    """Return the clock every strategy's bars share.

    Raises:
        ConfigError: Strategies' bars are on different clocks (`clock_problem`: validation
            finds it where every data source declares its clock).
    """
    first = strategies[0].universe
    problems = [
        clock_problem(portfolio, pipelines, k, _clock(first), _clock(strategy.universe))
        for k, strategy in enumerate(strategies[1:], start=1)
        if not strategy.universe.index.equals(first.index)
    ]
    if problems:
        raise ConfigError(problems)
    return first.index


def _check_groups(portfolio: PortfolioConfig, books: Books) -> None:
    """Refuse a group of ``risk.portfolio`` naming a market no strategy trades
    (`group_problems`: validation finds it where every strategy lists its symbols)."""
    problems = group_problems(portfolio, books.symbols)
    if problems:
        raise ConfigError(problems)


def _clock(universe: Universe) -> str:
    index = universe.index
    return clock_text(universe.timeframe, index[0], len(index))
