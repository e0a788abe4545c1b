"""One account for the strategies of a portfolio file: its books, its core, its engine.

The compiled core trades rows with shared cash; a portfolio file's rows are *books*,
one per (strategy, symbol), named ``STRATEGY:SYMBOL``. Two strategies on the same
market hold separate books. The account is the core's: one cash balance (the
portfolio's ``initial_cash``), one venue, the portfolio file's ``risk.limits`` checked
on every order, its ``risk.portfolio`` over every book (exposures summed over the
books, groups of markets) and its ``risk.max_drawdown`` (with each strategy's own
``drawdown_halt``) on the account's equity.

What is a strategy's own is answered by that strategy's components, in Python, for
the rows of its books: its signal rule (one copy per book), its sizing (scaled by its
allocation weight: a strategy sizes against its share of the account's equity), its
Python risk rules. Its features and model never see another strategy's.

The engine's own exits (``stop_loss``, ``take_profit``, ``max_holding_bars``), the
regime filter and the venue are one per account: the strategies must agree on them
(`account_problems`).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tradeloom.core.columns import RowEvent
from tradeloom.core.kernels.specs import DrawdownKernel
from tradeloom.core.params import CoreSpec
from tradeloom.core.state import BarInputs
from tradeloom.engine.allocation import FixedWeights, SleeveWeights, StrategyWeights
from tradeloom.engine.core_spec import (
    core_spec,
    kernel_spec_of,
    portfolio_limits,
    pre_trade_limits,
)
from tradeloom.engine.driver import Engine
from tradeloom.engine.watch import FeatureRow
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import ConfigError, Problem
from tradeloom.journal import AllocationDecided
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols import RiskRule, Sizer, Venue
from tradeloom.plugins.protocols_allocation import Allocator
from tradeloom.runtime.lazy import numpy as np
from tradeloom.schemas.allocation import weight_constraints
from tradeloom.schemas.building import build_component
from tradeloom.schemas.portfolio_file import PortfolioConfig

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "SEPARATOR",
    "AccountEngine",
    "Books",
    "account_problems",
    "account_spec",
    "account_venue",
    "allocator",
    "join_inputs",
]

SEPARATOR = ":"
"""Between a book's strategy and symbol (strategy names cannot hold it)."""


@dataclass(frozen=True)
class Books:
    """The rows of the account's core: one per (strategy, symbol), strategies in file order.

    Attributes:
        strategies: The strategies' names.
        owner: Each book's strategy index.
        symbols: Each book's market.
    """

    strategies: tuple[str, ...]
    owner: tuple[int, ...]
    symbols: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Each book's name, ``STRATEGY:SYMBOL``."""
        return tuple(
            f"{self.strategies[k]}{SEPARATOR}{s}"
            for k, s in zip(self.owner, self.symbols, strict=True)
        )

    @property
    def markets(self) -> tuple[str, ...]:
        """The distinct markets, in order of first appearance."""
        return tuple(dict.fromkeys(self.symbols))

    def of(self, strategy: int) -> list[int]:
        """Return the books of the ``strategy``-th strategy."""
        return [b for b, k in enumerate(self.owner) if k == strategy]


def account_problems(pipelines: Sequence[Pipeline]) -> list[Problem]:
    """Return what keeps these strategies from sharing one account (empty: nothing).

    The engine's exits, the regime filter, the sides traded and the venue (every key but
    ``initial_cash``) must be the same in every strategy file; health rules, pre-trade
    limits, ``risk.portfolio`` and ``signal.top_k`` belong to the account and are not
    read from a strategy file.
    """
    problems: list[Problem] = []
    first = pipelines[0].config
    for pipeline in pipelines:
        config = pipeline.config

        def refuse(path: str, message: str, config: Any = config) -> None:
            problems.append(Problem(config.locate(path), path, message))

        for key, path in _SHARED:
            mine, theirs = getattr(config, key), getattr(first, key)
            if mine != theirs:
                refuse(
                    path,
                    f"is {_shown(mine)} here and {_shown(theirs)} in {first.source}: strategies "
                    "on one account share the engine's exits and regime filter; make them equal",
                )
        if _venue_keys(config) != _venue_keys(first):
            refuse(
                "execution",
                f"differs from {first.source}'s: strategies on one account trade through one "
                "venue; make the execution sections equal (initial_cash aside: the account's "
                "is the portfolio file's)",
            )
        if config.health:
            refuse("health", "health rules are not run on a portfolio's account yet; remove them")
        if config.risk_limits != type(config.risk_limits)():
            refuse(
                "risk.limits",
                "a portfolio's account checks the portfolio file's risk.limits; move them there",
            )
        if (
            config.signal_top_k is not None
            or config.risk_portfolio != type(config.risk_portfolio)()
        ):
            path = "signal.top_k" if config.signal_top_k is not None else "risk.portfolio"
            refuse(path, "ranking and risk.portfolio are not run on a portfolio's account yet")
        if getattr(config, "journal", None) is not None:
            refuse(
                "journal",
                "a portfolio's run journals to its run directory (journal.sqlite); a strategy "
                "file's journal section is not read there: remove it",
            )
    return problems


_SHARED = (
    ("stop_loss", "risk.stop_loss"),
    ("take_profit", "risk.take_profit"),
    ("max_holding_bars", "risk.max_holding_bars"),
    ("trailing_stop", "risk.trailing_stop"),
    ("break_even", "risk.break_even"),
    ("cooldown_bars", "risk.cooldown_bars"),
    ("exit_time", "risk.exit_time"),
    ("signal_regimes", "signal.regimes"),
    ("signal_sides", "signal.sides"),
    ("regime", "regime"),
)


def _shown(value: object) -> str:
    return "unset" if value in (None, ()) else repr(value)


def _venue_keys(config: Any) -> tuple[str, dict[str, Any]]:
    params = config.execution.params.model_dump()
    params.pop("initial_cash", None)
    return config.execution.kind, params


def account_venue(portfolio: PortfolioConfig, pipeline: Pipeline) -> Venue:
    """Build the account's venue: the strategies' execution section, with the portfolio's cash."""
    config = pipeline.config
    item = config.execution
    params = item.params.model_copy(update={"initial_cash": portfolio.file.initial_cash})
    ctx = BuildContext(
        strategy_name=portfolio.file.name, strategy_dir=portfolio.source.parent, seed=config.seed
    )
    venue = item.registered.component.factory(params, ctx)
    assert isinstance(venue, Venue)  # the same factory built one for the strategy
    return venue


def account_spec(
    portfolio: PortfolioConfig,
    pipelines: Sequence[Pipeline],
    venue: Venue,
    timeframe_seconds: int,
    books: Books,
    *,
    live_venue: Venue | None = None,
) -> CoreSpec:
    """Return the core's parameters for the account.

    The first strategy's (`core_spec`: the shared exits, regime filter and venue), with
    the signal and the sizing answered in Python (each book by its own strategy), the
    portfolio file's ``risk.limits`` and ``risk.portfolio`` (its groups of markets
    mapped onto the books), and as drawdown limits its ``risk.max_drawdown`` then each
    strategy's ``drawdown_halt`` limits, all on the account's equity.

    Args:
        live_venue: The Python venue the orders go to instead (live: the account's
            markets; a restart's replay), as `core_spec`'s ``venue``.
    """
    risk = portfolio.file.risk
    drawdown = [] if risk.max_drawdown is None else [risk.max_drawdown]
    external = False
    for pipeline in pipelines:
        for rule in pipeline.rules:
            kernel = kernel_spec_of(rule)
            if isinstance(kernel, DrawdownKernel):
                drawdown.append(kernel.limit)
            else:
                external = True
    own = core_spec(
        replace(pipelines[0], venue=venue),
        timeframe_seconds,
        periods_per_year=0.0,  # none is read: each book's sizing is its strategy's, in Python
        venue=live_venue,
        monitors=False,
    )
    return replace(
        own,
        signal=None,
        sizing=None,
        drawdown_limits=tuple(drawdown),
        external_rules=external,
        limits=pre_trade_limits(risk.limits),
        portfolio=portfolio_limits(risk.portfolio, None, books.symbols),
    )


class AccountEngine(Engine):
    """The engine over the account's books, each answered by its own strategy.

    Args:
        pipelines: The strategies' pipelines, in file order.
        books: The books (the core's rows).
        allocation: `FixedWeights`, `SleeveWeights` or `GivenWeights` over the
            strategies; each decision is journaled
            (``allocation_decided``, `Ledger`).
        closes: Each book's close at bar ``t`` (NaN: no bar), for the allocation.
        rows: Per strategy, its feature rows ``[bars, its books, columns]``.
        row_columns: Per strategy, its feature columns.
        prefixes: Per book, the start of its orders' client ids (its strategy's name
            first).
        trainers: The strategy whose model trained each fold, by the fold's ``id``
            (journaled as the fold's symbol).
        group_names: The names of the account's ``risk.portfolio.groups`` (refusals
            name them).
        **engine: `Engine`'s arguments (the account's pipeline stands for the strategies
            where one object is needed: its venue, its spec).
    """

    def __init__(
        self,
        pipelines: Sequence[Pipeline],
        books: Books,
        allocation: StrategyWeights,
        closes: Callable[[int], npt.NDArray[np.float64]],
        *,
        rows: Sequence[npt.NDArray[np.float64]],
        row_columns: Sequence[tuple[str, ...]],
        prefixes: Sequence[str],
        trainers: Mapping[int, str],
        group_names: Sequence[str] = (),
        **engine: Any,
    ) -> None:
        super().__init__(**engine)
        self.pipelines = tuple(pipelines)
        self.books = books
        self.allocation = allocation
        self._signals = [copy.deepcopy(pipelines[k].signal) for k in books.owner]
        self._slot = [books.of(books.owner[b]).index(b) for b in range(len(books.owner))]
        self._strategy_rows = rows
        self._strategy_columns = [{c: j for j, c in enumerate(cs)} for cs in row_columns]
        self.ctx.prefixes = tuple(prefixes)
        self.ctx.table.groups = tuple(group_names)
        self._trainers = trainers
        self.ledger = Ledger(
            books,
            closes,
            self.portfolio.initial_cash,
            allocation,
            times=lambda t: int(self.ctx.times(t).value),
            decided=self._decided,
        )

    def reconfigure_member(self, strategy: int, pipeline: Pipeline) -> None:
        """Decide and size the books of the ``strategy``-th strategy with ``pipeline``'s
        signal rule (a fresh copy per book) and sizing from the next bar on, every state
        kept: a promotion of its challenger (`tradeloom.live.lifecycle.promoted_signal`),
        at the bar a run's promotion did it (a parity replay's ``Pipeline.signal_rules``).
        The rule in force (the same object: a sizing changed alone) goes on with each
        book's own copy and state, as `Engine.reconfigure` keeps each symbol's."""
        same_rule = pipeline.signal is self.pipelines[strategy].signal
        pipelines = list(self.pipelines)
        pipelines[strategy] = pipeline
        self.pipelines = tuple(pipelines)
        if same_rule:
            return
        for b in self.books.of(strategy):
            self._signals[b] = copy.deepcopy(pipeline.signal)

    def weights_at(self, t: int) -> npt.NDArray[np.float64]:
        """Return the strategies' weights the decisions at bar ``t`` use."""
        if self.allocation.moves:  # fixed weights: the ledger is booked at the end
            self.ledger.advance(t - 1, self._marks())
        return self.ledger.weights

    def finish(self, times_ns: npt.NDArray[np.int64], symbol: str) -> None:
        """Journal what is left, and book the ledger up to the last bar: a recomputation
        of the weights no sizing read is in the weights table only, not journaled (as a
        paper run, which books no bar no sizing asks for, journals none)."""
        super().finish(times_ns, symbol)
        self.ledger.decided = None
        self.ledger.advance(len(times_ns) - 1, self._marks())

    def _decided(self, tau: int, held: npt.NDArray[np.float64]) -> None:
        """Journal the weights decided at bar ``tau``'s close (``held``: each strategy's
        positions at that close, of the equity), before a decision reads them."""
        allocation = self.allocation
        weights = self.ledger.weights
        inputs = allocation.inputs()
        digest = hashlib.sha256()
        for part in (inputs, held):
            digest.update(np.ascontiguousarray(part).tobytes())
        event = AllocationDecided(
            **self.rec.at(tau, self.ctx.times(tau)),
            allocator=allocation.kind,
            status=allocation.status,
            message=allocation.message,
            weights=[float(w) for w in weights],
            held=[float(w) for w in held],
            symbols=list(self.books.strategies),
            inputs_hash=digest.hexdigest()[:16],
            window=allocation.window,
        )
        self.rec.allocated(event)
        self._journal_event(event, tau)

    def _record_training(self, event: RowEvent) -> None:
        owner = self._trainers[id(event.value)]
        self.rec.training(event.value, self.ctx.times(event.bar), owner)

    def _row(self, t: int, s: int) -> FeatureRow:
        k = self.books.owner[s]
        return FeatureRow(self._strategy_columns[k], self._strategy_rows[k][t, self._slot[s]])

    def _rules_of(self, s: int) -> tuple[RiskRule, ...]:
        return self.pipelines[self.books.owner[s]].rules

    def _sizer_of(self, s: int) -> Sizer:
        return self.pipelines[self.books.owner[s]].sizer

    def _sizing_name(self, s: int) -> str:
        return f"risk.sizing of {self.books.strategies[self.books.owner[s]]}"

    def _share_of(self, t: int, s: int) -> float:
        return float(self.weights_at(t)[self.books.owner[s]])


class Ledger:
    """Each book's P&L bar by bar, each strategy's return, and the weights they give.

    A book's P&L at a bar's close is the cash its fills moved (net of fees) plus its
    position at its last close; a strategy's is the sum of its books'. Its return over
    a bar is the change of its P&L over its capital at the bar before (its weight then
    times the account's equity then); the allocation takes one row of returns per bar.
    It books bar after bar as they come: a backtest's bars known at once, or a paper
    or live run's as each closes.

    Args:
        books: The account's books.
        closes: Each book's close at bar ``t`` (NaN: no bar).
        initial_cash: The account's cash at the start.
        allocation: The weights, fixed or moving with the returns (or given).
        times: Bar ``t``'s open time (UTC ns), for a calendar schedule or given weights
            (None: not read).
        decided: Told ``(bar, held)`` when the allocation decides at a bar's close
            (its answer ``ok`` or not: the allocation's ``status``; ``held``: each
            strategy's positions then, of the equity).
    """

    def __init__(
        self,
        books: Books,
        closes: Callable[[int], npt.NDArray[np.float64]],
        initial_cash: float,
        allocation: StrategyWeights,
        times: Callable[[int], int] | None = None,
        decided: Callable[[int, npt.NDArray[np.float64]], None] | None = None,
    ) -> None:
        m = len(books.owner)
        k = len(books.strategies)
        self.books = books
        self._close = closes
        self._mark = np.zeros(m)
        """Each book's last close so far (0 before its first bar)."""
        self._owner = np.asarray(books.owner)
        self.initial_cash = initial_cash
        self.allocation = allocation
        self._times = times if allocation.calendar else None
        self._pnl: list[npt.NDArray[np.float64]] = []
        self._history: list[npt.NDArray[np.float64]] = []
        self.done = -1
        self._flow = np.zeros(m)
        self._qty = np.zeros(m)
        self._cash = initial_cash
        self._read = 0
        self._last = np.zeros(k)
        self._capital = np.asarray(allocation.weights) * initial_cash
        self.decided = decided

    @property
    def pnl(self) -> npt.NDArray[np.float64]:
        """``[bars, books]``: each book's P&L at each close booked so far."""
        return np.array(self._pnl).reshape(len(self._pnl), len(self._owner))

    @property
    def history(self) -> npt.NDArray[np.float64]:
        """``[bars, strategies]``: the weights each bar's decisions used, booked so far."""
        k = len(self.books.strategies)
        return np.array(self._history).reshape(len(self._history), k)

    @property
    def weights(self) -> npt.NDArray[np.float64]:
        """The weights in force for the next bar."""
        return np.asarray(self.allocation.weights)

    def strategy_pnl(self, bar: int) -> npt.NDArray[np.float64]:
        """Return each strategy's P&L at bar ``bar``'s close (its books' summed), booked."""
        k = len(self.books.strategies)
        return np.bincount(self._owner, self._pnl[bar], minlength=k).astype(np.float64)

    def advance(self, bar: int, marks: npt.NDArray[np.float64]) -> None:
        """Book every bar up to ``bar`` (inclusive) from ``marks`` (`fill_marks` so far)."""
        k = len(self.books.strategies)
        while self.done < bar:
            tau = self.done + 1
            while self._read < len(marks) and marks[self._read, 0] <= tau:
                _, position, cash, book = marks[self._read]
                self._flow[int(book)] += cash - self._cash
                self._cash = cash
                self._qty[int(book)] = position
                self._read += 1
            close = self._close(tau)
            known = ~np.isnan(close)
            self._mark[known] = close[known]
            self._history.append(self.weights.copy())
            held = self._qty != 0.0
            pnl = self._flow + np.where(held, self._qty * self._mark, 0.0)
            self._pnl.append(pnl)
            total = np.bincount(self._owner, pnl, minlength=k).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                returns = np.where(self._capital > 0.0, (total - self._last) / self._capital, 0.0)
            equity = self.initial_cash + total.sum()
            self._capital = self.weights * equity
            self._last = total
            asked = self.allocation.push(
                returns, tau, 0 if self._times is None else self._times(tau)
            )
            self.done = tau
            if asked and self.decided is not None:
                value = np.where(held, self._qty * self._mark, 0.0)
                shares = np.bincount(self._owner, value, minlength=k).astype(np.float64)
                self.decided(tau, shares / equity if equity > 0.0 else np.zeros(k))


def allocator(portfolio: PortfolioConfig) -> FixedWeights | SleeveWeights:
    """Return the allocation of ``portfolio``'s strategies (``allocation``): its fixed
    weights, or its allocator over the strategies' returns (built through the plugin
    manager, as a strategy's)."""
    allocation = portfolio.file.allocation
    item = portfolio.allocator
    if item is None or allocation.window is None:
        return FixedWeights(portfolio.weights)
    ctx = BuildContext(
        strategy_name=portfolio.file.name, strategy_dir=portfolio.source.parent, seed=0
    )
    built, refused = build_component(item, ctx, portfolio.locate)
    if refused or not isinstance(built, Allocator):  # validated by load_portfolio
        raise ConfigError(refused)
    names = [config.name for config in portfolio.strategies]
    return SleeveWeights(
        built,
        kind=item.kind,
        window=allocation.window,
        constraints=weight_constraints(allocation.constraints, names),
        rule=allocation.rebalance,
    )


def join_inputs(inputs: Sequence[BarInputs]) -> BarInputs:
    """Return the core's inputs over every book: the strategies' symbol axes side by side.

    The live portfolio joins each tick's the same way
    (`tradeloom.live.tick.portfolio_session`), from here: the backtest and paper share it.
    """
    first = inputs[0]
    rows = max(i.px.shape[0] for i in inputs)  # a perpetual's funding row: 0 for the others
    return BarInputs(
        np.concatenate([_rows(i.px, rows) for i in inputs], axis=2),
        np.concatenate([i.flags for i in inputs], axis=2),
        np.concatenate([i.score for i in inputs], axis=1),
        first.time_ns,
        np.sum([i.trainings for i in inputs], axis=0).astype(np.int64),
        first.base,
    )


def _rows(px: npt.NDArray[np.float64], rows: int) -> npt.NDArray[np.float64]:
    if px.shape[0] == rows:
        return px
    grown = np.zeros((rows, *px.shape[1:]))
    grown[: px.shape[0]] = px
    return grown
