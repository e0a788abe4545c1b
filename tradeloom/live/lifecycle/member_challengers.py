"""Challengers of a portfolio file's strategies: each strategy's candidates in shadow.

A strategy of a portfolio file may declare ``challengers:`` as a strategy run alone does
(`tradeloom.live.lifecycle.challengers`). A challenger of strategy S shadows S alone: it is S with
another model (and optionally its own signal rule and sizing), stepped on S's markets'
bars, filling through S's simulated venue (the run's paper fill model: its prices, fees
and slippage), starting flat with **S's capital at the bar it starts**: S's weight in
force then (the portfolio file's weight, normalised; a moving allocation's weights as
last booked) times the account's equity then (its initial cash at a run's start: the
warm-up trades nothing). Its book is what a paper run of that candidate alone, over the
same bars, with that initial cash, would hold, fill for fill.

Its name is ``S/NAME`` in every row and every view, its rows carry ``strategy: S``, and
its start is journaled once as ``challenger_started`` (its capital and first bar), which a
restart reads. It is compared with **S's own equity** (`MemberEquity`): its capital at
the challenger's start plus the P&L of S's books since (the cash S's fills moved, net of
fees, plus S's positions at their last close: the account's `Ledger`, the same rule that
gives S's returns to the allocation), journaled in each of its ``challenger_bar`` rows as
``champion_equity``; status, the console and the report read S's champion book there.

A gate promotes by swapping S's model (`tradeloom.live.lifecycle.promotion.promote`
with the member: the path of ``tradeloom swap --strategy S``, ``model_swapped`` with
``strategy`` S), and puts the challenger's own signal rule and sizing in force for S's
books (`tradeloom.live.lifecycle.promoted_signal`); the other strategies keep theirs. A
restart after a stop or ``kill -9`` rebuilds each challenger from its
``challenger_started`` row and the journal's ticks, journals only what the journal
lacks, and neither starts a dropped or promoted one again nor promotes twice; it
refuses an entry changed since its ``challenger_started`` row or a removed one's name,
as for a strategy run alone (`tradeloom.live.lifecycle.member_roster`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tradeloom.core import layout as L
from tradeloom.engine.account import AccountEngine, Ledger
from tradeloom.engine.allocation import FixedWeights
from tradeloom.journal import ChallengerStarted, journal_path, read_frames
from tradeloom.live.lifecycle.challengers import (
    ShadowBooks,
    candidate_pipeline,
    drop,
    journaled,
    scoped,
    start_shadow,
    unfit,
)
from tradeloom.live.lifecycle.member_roster import member_roster
from tradeloom.live.lifecycle.promotion import Member
from tradeloom.live.lifecycle.promotion_stage import PromotionStage, refuse_request
from tradeloom.live.lifecycle.reload import CHALLENGERS
from tradeloom.live.lifecycle.rules import (
    DROPPED,
    PROMOTED,
    InForce,
    Lifecycle,
    promotion_refusal,
    rollback_refusal,
)
from tradeloom.live.lifecycle.watched import Shadowing
from tradeloom.live.tick.portfolio_start import member_live_rows
from tradeloom.plugins.component import BuildContext

if TYPE_CHECKING:
    from pathlib import Path

    from tradeloom.engine.control_files import ControlRequest
    from tradeloom.engine.events import Recorder
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.live.recovery.journal_state import JournalState, LiveBarRow
    from tradeloom.live.tick.portfolio_session import PortfolioSession
    from tradeloom.live.tick.services import RunFiles
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.manager import Plugins

__all__ = ["MemberEquity", "MemberShadows", "open_member_shadows", "with_cash"]


def with_cash(pipeline: Pipeline, cash: float) -> Pipeline:
    """Return ``pipeline`` with its venue built again with ``cash`` as its initial cash
    (its execution section's other keys as they are)."""
    config = pipeline.config
    item = config.execution
    params = item.params.model_copy(update={"initial_cash": cash})
    ctx = BuildContext(
        strategy_name=config.name, strategy_dir=config.source.parent, seed=config.seed
    )
    return replace(pipeline, venue=item.registered.component.factory(params, ctx))


class MemberEquity:
    """Each strategy's P&L at each close, from the account's fills (see the module).

    A `Ledger` of its own over the account's books and fills (the engine's is booked
    when its sizing asks, and journals its allocation's decisions): reading it changes
    nothing of the run.
    """

    def __init__(self, session: PortfolioSession) -> None:
        engine = session.engine
        assert isinstance(engine, AccountEngine)
        history = session.history
        self._marks = engine.fill_marks
        self._ledger = Ledger(
            session.books,
            lambda t: history.prices(t)[:, 3],
            engine.portfolio.initial_cash,
            FixedWeights(engine.ledger.weights.tolist()),
        )

    def pnl(self, strategy: int, bar: int) -> float:
        """Return strategy ``strategy``'s P&L at bar ``bar``'s close (0 before bar 0)."""
        if bar < 0:
            return 0.0
        self._ledger.advance(bar, self._marks())
        return float(self._ledger.strategy_pnl(bar)[strategy])


@dataclass
class _Member:
    """One strategy's challengers: their books, their promotions, where each started."""

    strategy: str
    index: int
    session: LiveSession
    columns: list[int]
    books: ShadowBooks
    stage: PromotionStage
    starts: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Per challenger, the capital it started with and its first bar."""


class MemberShadows:
    """The challengers of a portfolio file's strategies, stepped on each tick.

    Args:
        session: The portfolio's session.
        members: Each strategy's challengers (those with any).
        recorder: The run's recorder.
    """

    def __init__(
        self, session: PortfolioSession, members: Sequence[_Member], recorder: Recorder
    ) -> None:
        self.session = session
        self.members = list(members)
        self.recorder = recorder
        self.equity = MemberEquity(session)

    def step(
        self,
        time: pd.Timestamp,
        prices: object,
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """Step every strategy's challengers on the tick the account just closed (each
        market's OHLCV), then promote one whose gate passed (one per strategy and bar);
        ``before_commit`` makes what the challengers read durable before a promotion
        commits (`tradeloom.live.tick.services.JournalLink.prepare_commit`)."""
        self.shadow(time, prices, len(self.session.history) - 1)
        if before_commit is not None:
            before_commit()
        for member in self.members:
            member.stage.after_bar(member.session)

    def shadow(self, time: pd.Timestamp, prices: object, bar: int) -> None:
        """Step every strategy's challengers on clock bar ``bar`` (opening at ``time``),
        each against its strategy's own equity then."""
        values = np.asarray(prices, np.float64)
        for member in self.members:
            member.books.step(time, values[member.columns], self.champion(member, bar))

    def champion(self, member: _Member, bar: int) -> dict[str, float]:
        """Return, per challenger of ``member``, its strategy's equity at bar ``bar``'s
        close: the challenger's capital plus the strategy's P&L since it started."""
        now = self.equity.pnl(member.index, bar)
        return {
            name: capital + now - self.equity.pnl(member.index, first - 1)
            for name, (capital, first) in member.starts.items()
        }

    def lifecycle(self) -> Lifecycle:
        """Return what the lifecycle's refusals read now: every strategy's challengers
        and model in force (`tradeloom.live.lifecycle.promotion_stage.PromotionStage.lifecycle`)."""
        challengers: dict[str, str] = {}
        in_force: dict[str, InForce] = {}
        for member in self.members:
            own = member.stage.lifecycle(member.session)
            challengers.update(own.challengers)
            in_force.update(own.in_force)
        return Lifecycle(None, None, in_force, challengers, portfolio=True)

    def asked(self, request: ControlRequest) -> None:
        """Carry out an operator's ``promote STRATEGY/NAME`` (or ``rollback``) by that
        strategy's promotions, or journal why not (`tradeloom.live.lifecycle.rules`, over
        every strategy's challengers); the caller commits."""
        name = request.challenger or ""
        lifecycle = self.lifecycle()
        for member in sorted(self.members, key=lambda m: -len(m.strategy)):
            if name.startswith(f"{member.strategy}/"):
                member.stage.asked(request, member.session, lifecycle)
                return
        if request.action == "rollback":
            why = rollback_refusal(lifecycle) or ""
        else:
            why = promotion_refusal(lifecycle, name) or f"no challenger {name} in shadow"
        refuse_request(self.recorder, self.session, request, why)

    def replay(self, rows: Sequence[LiveBarRow]) -> None:
        """Step the challengers over the journal's ticks (a restart's), journaling only the
        bars after each one's last journaled book."""
        ticks: dict[int, list[LiveBarRow]] = {}
        for row in rows:
            ticks.setdefault(row.index, []).append(row)
        for t in sorted(ticks):
            prices, _ = self.session.replayed(ticks[t])
            self.shadow(ticks[t][0].time, prices, t)


def open_member_shadows(
    session: PortfolioSession,
    state: JournalState | None,
    *,
    files: RunFiles,
    plugins: Plugins,
    recorder: Recorder,
    clock: Callable[[], pd.Timestamp],
) -> MemberShadows | None:
    """Start the challengers of the portfolio's strategies (None: none has any), or
    rebuild them from the journal after a restart (``state``), their last bar's
    promotion decided again.

    A challenger the journal has not started yet (a new run's, or one added to a
    strategy's file while the run was down) starts at the next bar, journaled as
    ``challenger_started`` with its entry; one the journal dropped or promoted is not
    started again; one whose entry left the file is removed (``challenger_removed``,
    `tradeloom.live.lifecycle.member_roster`: a restart refused a changed entry or a removed one's
    name before).
    """
    journal = recorder.journal
    run_dir = files.run_dir
    record = journaled(run_dir) if state is not None else None
    started = _started(run_dir) if state is not None else {}
    swapped = _last_swaps(run_dir) if state is not None else {}
    n = len(session.history)
    live = 0 if state is None else len({row.index for row in state.bars})
    engine = session.engine
    assert isinstance(engine, AccountEngine)
    weights = engine.ledger.weights
    account = float(session.engine.state.acct[L.A_EQUITY])
    roster = member_roster(run_dir) if state is not None else None
    removed = False
    members = []
    for k, member in enumerate(session.members):
        config = session.strategy_file(member)  # its file's (a replayed promotion's rule aside)
        if roster is not None:
            removed |= roster.remove_gone(config, journal, recorder, n - 1)
        if not config.challengers:
            continue
        strategy = member.owner
        rows = member_live_rows(member.p, member.history.symbols)
        shadowing = Shadowing(member.history.universe(n - live), clock=clock, live_rows=rows)
        books = ShadowBooks(journal, [])
        own = _Member(
            strategy,
            k,
            member,
            [session.markets.index(s) for s in member.history.symbols],
            books,
            PromotionStage(
                books, files, plugins, recorder, shadowing, member=Member(strategy, config)
            ),
        )
        for index, challenger in enumerate(config.challengers):
            name = scoped(strategy, challenger.name)
            if record is not None and (name in record.failed or name in record.promoted):
                # dropped, or promoted, before the restart: it stays so
                books.gone[name] = DROPPED if name in record.failed else PROMOTED
                continue
            if name not in started:
                capital = float(weights[k]) * account
                at = recorder.at(n - 1)
                journal.append(
                    ChallengerStarted(
                        **at,
                        challenger=name,
                        strategy=strategy,
                        capital=capital,
                        first_bar=n,
                        entry=config.document[CHALLENGERS][index],
                    )
                )
                started[name] = (capital, n)
            capital, first = started[name]
            own_file = replace(member.p, config=config)  # its file's rule and sizing
            candidate = candidate_pipeline(with_cash(own_file, capital), challenger)
            refused = unfit(member.p, candidate) if challenger.promote_when is not None else None
            if refused is not None:  # the swap of its promotion would refuse it: said now
                drop(journal, name, ValueError(refused), strategy=strategy)
                books.gone[name] = DROPPED
                continue
            try:
                shadow = start_shadow(
                    name,
                    candidate,
                    recorder,
                    member.history.universe(first),
                    clock=clock,
                    live_rows=rows,
                )
            except Exception as exc:  # a candidate never stops the champion
                drop(journal, name, exc, strategy=strategy)
                books.gone[name] = DROPPED
                continue
            shadow.strategy = strategy
            shadow.gate = challenger.promote_when
            if record is not None:
                shadow.last_bar = record.last.get(name, -1)
                shadow.fills = record.fills.get(name, frozenset())
                shadow.book = record.books.get(name, shadow.book)
            books.shadows.append(shadow)
            own.starts[name] = (capital, first)
        members.append(own)
    if not members:
        if removed:
            journal.flush()
        return None
    shadows = MemberShadows(session, members, recorder)
    if state is not None:
        shadows.replay(state.bars)
        for own in shadows.members:
            if swapped.get(own.strategy) != n - 1:  # one promotion a strategy and bar
                own.stage.decide_again(own.session)
    journal.flush()
    return shadows


def _started(run_dir: Path) -> dict[str, tuple[float, int]]:
    """Per challenger of a strategy, its journaled capital and first bar."""
    rows = read_frames(journal_path(run_dir), ["challenger_started"])["challenger_started"]
    return {
        str(r["challenger"]): (float(r["capital"]), int(r["first_bar"])) for _, r in rows.iterrows()
    }


def _last_swaps(run_dir: Path) -> dict[str, int]:
    """Per strategy, the bar of its last ``model_swapped`` row."""
    rows = read_frames(journal_path(run_dir), ["model_swapped"])["model_swapped"]
    return {str(k): int(v) for k, v in rows.groupby("strategy")["bar"].max().items()}
