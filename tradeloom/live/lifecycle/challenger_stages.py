"""The challengers' stages: shadow books, their promotions, a portfolio's members'.

`Challengers` is what the stages of a strategy run alone share (its shadow books, its
promotion stage and what a shadow is built from): `ShadowChallengers` opens the books
and steps them on each bar the champion closed, `Promotions` opens the promotion stage
(with a canary or a watch in progress taken up after a restart) and reads it at each
close, and answers an operator's ``promote`` and ``rollback``; the hot reload changes the
roster (`tradeloom.live.lifecycle.reload_stage`). `MemberChallengers` is a portfolio
file's strategies' challengers, each with its own books and promotions
(`tradeloom.live.lifecycle.member_challengers`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradeloom.core import layout as L
from tradeloom.errors import ConfigError
from tradeloom.live.tick.services import JournalLink, Markets, RunFiles, Stage

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.engine.control_files import ControlRequest
    from tradeloom.live.lifecycle.challengers import ShadowBooks
    from tradeloom.live.lifecycle.member_challengers import MemberShadows
    from tradeloom.live.lifecycle.promotion_stage import PromotionStage
    from tradeloom.live.lifecycle.watched import Shadowing
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.plugins.protocols_steps import LiveRows

__all__ = ["Challengers", "LiveRowsOf", "MemberChallengers", "Promotions", "ShadowChallengers"]

LiveRowsOf = Callable[[tuple[str, ...]], "dict[str, LiveRows]"]
"""Each market's extra columns as its bars close, for these symbols (the runner's)."""


@dataclass
class Challengers:
    """What a strategy run alone's challengers' stages share.

    Attributes:
        books: The challengers deciding in shadow on each bar (None: none).
        promotions: Their promotions and the canary or watch in progress (None: no
            challengers).
        shadowing: What a challenger's session is built from (set with the books).
    """

    books: ShadowBooks | None = None
    promotions: PromotionStage | None = None
    shadowing: Shadowing | None = None

    @property
    def shadowing_or_fail(self) -> Shadowing:
        """What a challenger's session is built from (after the start)."""
        if self.shadowing is None:
            raise RuntimeError("the run has not started")
        return self.shadowing

    def in_progress(self) -> str | None:
        """Why the model cannot be swapped now: a canary, or the watch after a full
        promotion, is in progress (None: neither is; `PromotionStage.in_progress`)."""
        return None if self.promotions is None else self.promotions.in_progress()


class ShadowChallengers(Stage):
    """The challengers of ``challengers:`` deciding on the champion's bars, in shadow.

    Args:
        files, link, markets: The run's services.
        shared: What the challengers' stages share.
        live_rows: Each market's extra columns as its bars close.
    """

    def __init__(
        self,
        files: RunFiles,
        link: JournalLink,
        markets: Markets,
        shared: Challengers,
        live_rows: LiveRowsOf,
    ) -> None:
        self.files, self.link, self.markets = files, link, markets
        self.shared = shared
        self.live_rows = live_rows

    @property
    def books(self) -> ShadowBooks | None:
        """The challengers in shadow (None: none)."""
        return self.shared.books

    def restore(self, state: JournalState | None) -> None:
        """Start the challengers, or rebuild them from the journal
        (`tradeloom.live.lifecycle.challengers`), a roster changed while the run was down taken up
        (`tradeloom.live.lifecycle.challenger_roster.restart_roster`)."""
        from tradeloom.live.lifecycle.challengers import ShadowBooks, open_shadow_books
        from tradeloom.live.lifecycle.watched import Shadowing

        files, link = self.files, self.link
        session = self.markets.session_or_fail
        history = session.history
        live = 0 if state is None else len({row.index for row in state.bars})
        heads = None
        if state is not None:
            from tradeloom.live.lifecycle.challenger_roster import restart_roster, started_document

            heads = restart_roster(
                files.run_dir,
                self.markets.p.config,
                started_document(files.run_dir),
                history,
                link.journal_or_fail,
                link.recorder_or_fail,
            )
        shadowing = self.shared.shadowing = Shadowing(
            history.universe(len(history) - live),
            clock=lambda: files.now(),  # the run's clock, after a restart's replay too
            live_rows=self.live_rows(history.symbols),
        )
        books = open_shadow_books(
            self.markets.p,
            link.journal_or_fail,
            link.recorder_or_fail,
            shadowing.head,
            state,
            run_dir=files.run_dir,
            clock=shadowing.clock,
            live_rows=shadowing.live_rows,
            heads=heads,
            replayed=session.replayed_equity,
        )
        if books is None and state is not None and (state.canary or state.watch) is not None:
            # a canary (or a watch) in progress whose challenger left the file: it goes
            # on, the champion's shadow (none in a watch) the only book
            books = ShadowBooks(link.journal_or_fail, [])
        self.shared.books = books

    def at_close(self, when: pd.Timestamp, prices: Any) -> None:
        """Step the challengers on the bar the champion just closed."""
        books = self.shared.books
        if books is not None:
            session = self.markets.session_or_fail
            books.step(when, prices, float(session.engine.state.acct[L.A_EQUITY]))


class Promotions(Stage):
    """The challengers' promotions: a gate that passed, the canary and the watch after
    it read at each close (`tradeloom.live.lifecycle.promotion_stage`); an operator's ``promote``
    and ``rollback``."""

    actions = ("promote", "rollback")

    def __init__(
        self, files: RunFiles, link: JournalLink, markets: Markets, shared: Challengers
    ) -> None:
        self.files, self.link, self.markets = files, link, markets
        self.shared = shared

    @property
    def promotions(self) -> PromotionStage | None:
        """The promotion stage (None: the run has no challengers)."""
        return self.shared.promotions

    def restore(self, state: JournalState | None) -> None:
        """Open the promotions of the books, with a canary or a watch in progress taken up
        again (`tradeloom.live.lifecycle.promotion_stage.open_stage`)."""
        from tradeloom.live.lifecycle.promotion_stage import open_stage

        shared = self.shared
        shared.promotions = open_stage(
            shared.books,
            state,
            self.files,
            self.markets.plugins,
            self.markets.session_or_fail,
            self.link.recorder_or_fail,
            shared.shadowing_or_fail,
        )

    def at_close(self, when: pd.Timestamp, prices: Any) -> None:
        """Read the canary's rules, or promote a challenger whose gate passed."""
        shared = self.shared
        if shared.books is not None and shared.promotions is not None:
            # what the challengers read at this close, durable before a promotion commits
            self.link.prepare_commit()
            shared.promotions.after_bar(self.markets.session_or_fail)

    def answer(self, request: ControlRequest, name: str) -> None:
        """Promote a challenger or roll the canary back, as an operator asked, or journal
        why not."""
        session = self.markets.session_or_fail
        promotions = self.shared.promotions
        if promotions is None:
            from tradeloom.live.lifecycle.promotion_stage import refuse_request

            why = "the strategy has no challengers"
            refuse_request(self.link.recorder_or_fail, session, request, why)
        else:
            promotions.asked(request, session)

    def in_progress(self) -> str | None:
        """A canary's or a watch's note (None: neither is in progress)."""
        return self.shared.in_progress()


class MemberChallengers(Stage):
    """A portfolio file's strategies' challengers, each strategy's books and promotions
    (`tradeloom.live.lifecycle.member_challengers`); an operator's ``promote`` and ``rollback``."""

    actions = ("promote", "rollback")

    def __init__(self, files: RunFiles, link: JournalLink, markets: Markets) -> None:
        self.files, self.link, self.markets = files, link, markets
        self.shadows: MemberShadows | None = None
        """The strategies' challengers (None: none has any)."""

    def check(self, state: JournalState | None) -> None:
        """Refuse a restart whose strategy file changed a challenger's entry the run has
        (its book is one candidate's), or took a removed one's name, as a strategy run
        alone's restart refuses them (`tradeloom.live.lifecycle.member_roster`). A new
        run: nothing to take up."""
        if state is None:
            return
        from tradeloom.live.lifecycle.member_roster import member_roster

        portfolio = self.markets.portfolio
        assert portfolio is not None
        run_dir = self.files.run_dir
        problems = member_roster(run_dir).problems(run_dir, portfolio.config.strategies)
        if problems:
            raise ConfigError(problems)

    def restore(self, state: JournalState | None) -> None:
        """Start the strategies' challengers, or rebuild them from the journal."""
        from tradeloom.live.lifecycle.member_challengers import open_member_shadows
        from tradeloom.live.tick.portfolio_session import PortfolioSession

        session = self.markets.session_or_fail
        assert isinstance(session, PortfolioSession)
        files = self.files
        self.shadows = open_member_shadows(
            session,
            state,
            files=files,
            plugins=self.markets.plugins,
            recorder=self.link.recorder_or_fail,
            clock=lambda: files.now(),  # the run's clock, after a restart's replay too
        )

    def at_close(self, when: pd.Timestamp, prices: Any) -> None:
        """Step each strategy's challengers on the bar just closed."""
        if self.shadows is not None:
            self.shadows.step(when, prices, before_commit=self.link.prepare_commit)

    def answer(self, request: ControlRequest, name: str) -> None:
        """Carry out an operator's ``promote`` or ``rollback``, or journal why not."""
        if self.shadows is not None:
            self.shadows.asked(request)
            return
        from tradeloom.live.lifecycle.promotion_stage import refuse_request

        why = "the portfolio file's strategies have no challengers"
        refuse_request(self.link.recorder_or_fail, self.markets.session_or_fail, request, why)
