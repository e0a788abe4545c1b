"""A portfolio file on paper: its strategies' ticks, one account (`PortfolioSession`).

Each strategy of the file is a member: a `LiveSession` over its own markets, which
steps its features and regimes, asks its model and trains its folds exactly as it does
alone, and journals its bars under its books' names (``STRATEGY:SYMBOL``). None of them
trades: their inputs of a tick are joined book by book (`join_inputs`, the backtest's
join) and one `AccountEngine` (the backtest's account: its allocation, its shared cash,
the portfolio file's ``risk.limits`` and drawdown halt) runs the tick through the
compiled core. So a paper portfolio journals what its backtest journals, bar by bar.

A tick's prices come per market (each market once, however many strategies trade it);
each member reads the columns of its own markets. Live, the account's orders go to each
book's market of the one exchange account (`tradeloom.live.accounts.account_venue`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.domain import ModelTraining
from tradeloom.engine.account import (
    AccountEngine,
    Books,
    account_problems,
    account_spec,
    account_venue,
    allocator,
    join_inputs,
)
from tradeloom.engine.events import Recorder
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import ConfigError
from tradeloom.live.lifecycle.verdict import BarInput, Verdicts
from tradeloom.live.tick.history import MarketHistory
from tradeloom.live.tick.provides import provides
from tradeloom.live.tick.session import FeatureNotStepped, LiveSession, send_decided
from tradeloom.plugins.protocols import MarketLots, Venue
from tradeloom.runtime.lazy import logger
from tradeloom.schemas.portfolio_file import PortfolioConfig

if TYPE_CHECKING:
    from tradeloom.live.recovery.journal_state import LiveBarRow
    from tradeloom.schemas import StrategyConfig

__all__ = ["LivePortfolio", "PortfolioSession", "account_pipeline"]

_log = logger("tradeloom.live")


@dataclass(frozen=True)
class LivePortfolio:
    """A portfolio file to trade on paper or live.

    Attributes:
        config: The validated portfolio file.
        pipelines: Its strategies, built, in file order (their data read live).
    """

    config: PortfolioConfig
    pipelines: tuple[Pipeline, ...]


def account_pipeline(portfolio: PortfolioConfig, pipelines: Sequence[Pipeline]) -> Pipeline:
    """Return the pipeline standing for the account: the first strategy's, with the
    account's venue (the portfolio's cash), no monitor, and the portfolio file's name,
    source and document (the run's identity and ``strategy.yaml``).

    Raises:
        ConfigError: The strategies cannot share one account (`account_problems`).
    """
    problems = account_problems(pipelines)
    if problems:
        raise ConfigError(problems)
    first = pipelines[0]
    config = replace(
        first.config,
        name=portfolio.file.name,
        source=portfolio.source,
        document=portfolio.file.model_dump(mode="json"),
    )
    return replace(first, config=config, venue=account_venue(portfolio, first), monitors=())


class PortfolioSession(LiveSession):
    """Drive a portfolio's members over the ticks of their common clock, on one account.

    Args:
        pipeline: The account's pipeline (`account_pipeline`).
        recorder: Journals and broadcasts.
        portfolio: The portfolio file and its strategies.
        members: Per strategy, its session over its own markets (it never trades).
        history: The books' bars on the clock (no feature column): the account's view.
        books: The account's books.
        markets: Every market the books trade, in order of first appearance: the rows
            of a tick's prices.
        key: The run's key: a book's client order ids start ``STRATEGY-KEY-``.
        clock: The time now (UTC).
        venue: The Python venue orders go to (live: the account's markets, a restart's
            replay: the journal); None trades the account's venue in the compiled core.
        on_delivery: Told ``(bar, phase, call, events, ended)`` when the venue reports
            something (`tradeloom.engine.driver.Engine`).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        recorder: Recorder,
        portfolio: LivePortfolio,
        members: Sequence[LiveSession],
        history: MarketHistory,
        books: Books,
        markets: tuple[str, ...],
        *,
        key: str,
        clock: Callable[[], pd.Timestamp],
        venue: Venue | None = None,
        on_delivery: Callable[[int, str, int, int, list[str]], None] | None = None,
    ) -> None:
        self.p = pipeline
        self.rec = recorder
        self.history = history
        self.clock = clock
        self.stages = None
        self.before_commit = None
        self._cron = None
        self._retrain_reasons: list[str] = []
        self._next_cron: pd.Timestamp | None = None
        self.members = tuple(members)
        self.books = books
        self.names = books.names
        self.owner = ""
        self.markets = markets
        self._columns = [[markets.index(s) for s in m.history.symbols] for m in members]
        self._book_markets = [markets.index(s) for s in books.symbols]
        self._markets = len(markets)
        file = portfolio.config
        pipelines = portfolio.pipelines
        timeframe = history.timeframe_seconds
        spec = account_spec(file, pipelines, pipeline.venue, timeframe, books, live_venue=venue)
        if provides(venue, MarketLots) and venue.dusts:
            # the core's rows are the books: each held to its market's lot and minimum
            dust_of = dict(zip(markets, venue.dusts, strict=True))
            cost_of = dict(zip(markets, venue.min_costs, strict=True))
            spec = replace(
                spec,
                dusts=tuple(dust_of[symbol] for symbol in books.symbols),
                min_costs=tuple(cost_of[symbol] for symbol in books.symbols),
            )
        self.engine = AccountEngine(
            pipelines,
            books,
            allocator(file),
            lambda t: history.prices(t)[:, 3],  # each book's close, as the bars come
            rows=_Rows(self.members),
            row_columns=[m.history.columns for m in self.members],
            prefixes=[f"{books.strategies[k]}-{key}" for k in books.owner],
            trainers={},  # each member journals its own folds
            group_names=tuple(file.file.risk.portfolio.groups),
            pipeline=pipeline,
            recorder=recorder,
            order_id=lambda seq: f"{key}-{seq:06d}",  # unused: each book has its prefix
            times=history.time,
            timeframe_seconds=timeframe,
            calendar=history.calendar,
            features=lambda t: np.empty(0),  # unused: each book reads its strategy's rows
            columns=(),
            symbols=books.names,
            venue=venue,
            on_delivery=on_delivery,
            spec=spec,
        )
        self.strategy_files = tuple(p.config for p in pipelines)
        """Each strategy's file as the run runs it: what a promotion's signal rule and
        sizing are put in force over (`tradeloom.live.lifecycle.promoted_signal`)."""
        for k, member in enumerate(self.members):  # each member's rule: its books' on the account
            member.account_rule = partial(self.engine.reconfigure_member, k)

    def strategy_file(self, member: LiveSession) -> StrategyConfig:
        """Return the strategy file ``member`` runs (`strategy_files`)."""
        return self.strategy_files[self.members.index(member)]

    def held_in(self, market: int) -> tuple[float, int]:
        """Return the position the books in the account's ``market`` hold in all and the
        first of them, whose row's flat band judges it (`LiveSession.held_in`)."""
        book = self.engine.portfolio
        rows = [b for b, m in enumerate(self._book_markets) if m == market]
        return sum(book.position_of(b) for b in rows), rows[0] if rows else market

    def warm_up(self) -> None:
        """Step every member's features and regimes, then the account, through the history.

        Raises:
            FeatureNotStepped: A member's feature's per-bar value differs from its batch
                value (the line names the member's strategy).
        """
        warmed = []
        for member in self.members:
            try:
                warmed.append(member.warm_inputs())
            except FeatureNotStepped as refused:
                raise FeatureNotStepped(f"{member.p.config.name}: {refused}") from None
        inputs = join_inputs(warmed)
        self.engine.run(inputs, len(self.history))

    def train(self, reason: str | None, *, in_effect: bool = False) -> ModelTraining | None:
        """Train each member's fold that predicts from the next clock bar (`LiveSession`)."""
        trained = [m.train(reason, in_effect=in_effect) for m in self.members]
        return next((t for t in trained if t is not None), None)

    def catch_up(self, trainings: Mapping[str, tuple[int, str]]) -> None:
        """Train each member's fold in effect after a restart (`LiveSession.catch_up`)."""
        for member in self.members:
            member.catch_up(trainings)

    def never_trained(self) -> str | None:
        """Return why a member's model never trained, naming its strategy (the first such
        member; `LiveSession.never_trained`); None: every member's trained."""
        for member in self.members:
            why = member.never_trained()
            if why is not None:
                return f"{member.owner}: {why}"
        return None

    def replayed(self, rows: Sequence[LiveBarRow]) -> tuple[npt.NDArray[np.float64], Verdicts]:
        """Return a journaled tick (each book's ``live_bar`` row) as `step` takes it: each
        market's prices and each book's verdict, in the books' order."""
        book = {name: b for b, name in enumerate(self.names)}
        prices = np.full((self._markets, 5), np.nan)
        verdicts: list[BarInput | None] = [None] * len(self.names)
        for row in rows:
            b = book[row.symbol]
            prices[self._book_markets[b]] = row.values
            verdicts[b] = row.verdict
        return prices, verdicts

    def predict_all(
        self, rows: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]
    ) -> list[BarInput | None]:  # pragma: no cover - each member predicts its own
        raise RuntimeError("a portfolio's members predict")

    def step(self, time: pd.Timestamp, values: npt.ArrayLike, given: Verdicts | None = None) -> int:
        """Run one tick: ``values`` = ``[markets, OHLCV]`` (`LivePortfolio.markets`).

        Each member steps its own markets' columns and journals its bars; the account's
        core runs the joined tick; then each member trains the fold due next.

        Args:
            given: Each book's verdict read from the journal (a replay), in the books'
                order; None: each member asks its model and journals its bars.
        """
        prices = np.asarray(values, np.float64)
        parts = []
        first = 0
        for member, columns in zip(self.members, self._columns, strict=True):
            own = None if given is None else list(given[first : first + len(member.names)])
            parts.append(member.advance(time, prices[columns], own))
            first += len(member.names)
        if given is None and self.before_commit is not None:
            self.before_commit()  # what the members' features read, durable before its rows
        t = self.history.append(time, prices[self._book_markets], np.empty((len(self.names), 0)))
        self.engine.run(join_inputs([inputs for _, inputs in parts]), t + 1)
        send_decided(self.engine.venue)  # a batch's orders leave now (orders.batch)
        if given is None:
            for member in self.members:
                member.train(None)
            self.rec.journal.flush(durable=False)  # as `LiveSession.step`'s
        return t


class _Rows(Sequence[npt.NDArray[np.float64]]):
    """Per member, its feature rows on the clock, read when a book's row is asked."""

    def __init__(self, members: Sequence[LiveSession]) -> None:
        self._members = members

    @overload
    def __getitem__(self, k: int) -> npt.NDArray[np.float64]: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[npt.NDArray[np.float64]]: ...

    def __getitem__(
        self, k: int | slice
    ) -> npt.NDArray[np.float64] | Sequence[npt.NDArray[np.float64]]:
        if isinstance(k, slice):
            return [m.history.rows() for m in self._members[k]]
        return self._members[k].history.rows()

    def __len__(self) -> int:
        return len(self._members)
