"""The model swap's stage: an operator's ``swap`` request answered at a bar boundary.

The request names a saved model (`tradeloom.engine.control.request_swap`); the stage
checks it (`tradeloom.live.lifecycle.model_swap`), keeps its file and swaps it in before the next
bar, or journals why not (the run trades on with its model). A canary or a watch in
progress holds the model (`in_progress`, the promotion stage's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tradeloom.live.lifecycle.model_swap import (
    ModelSwap,
    SwapRefused,
    already_in_force,
    build_swap,
    described,
    journal_refusal,
    journal_swap,
    keep_file,
    member_problem,
    saved_section,
)
from tradeloom.live.lifecycle.promoted_signal import rule_in_force
from tradeloom.live.lifecycle.reload import MODEL
from tradeloom.live.tick.services import JournalLink, Markets, RunFiles, Stage

if TYPE_CHECKING:
    from tradeloom.engine.control_files import ControlRequest
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["ModelSwapStage"]


class ModelSwapStage(Stage):
    """Answer ``swap`` requests: the model they name in force from the next bar, or
    ``model_swap_refused``.

    Args:
        files, link, markets: The run's services.
        held: Why the model cannot change now (a canary's or a watch's note; None: it can).
    """

    actions = ("swap",)

    def __init__(
        self,
        files: RunFiles,
        link: JournalLink,
        markets: Markets,
        held: Callable[[], str | None],
    ) -> None:
        self.files, self.link, self.markets = files, link, markets
        self.held = held

    def answer(self, request: ControlRequest, name: str) -> None:
        """Check the model ``request`` names; swap it in before the next bar, or journal
        why not (the run trades on with its model)."""
        target = self._target(request.strategy)
        config = self.files.config if isinstance(target, str) else target[1]
        running = config.document.get(MODEL)
        section = saved_section(request.model, request.fold, running or {})
        outcome: ModelSwap | SwapRefused
        if isinstance(target, str):
            outcome = SwapRefused(described(section), (target,))
        elif (held := self.held()) is not None:
            outcome = SwapRefused(described(section), (held,))
        else:
            outcome = build_swap(config, self.markets.plugins, target[0], section)
            if isinstance(outcome, ModelSwap) and (already := already_in_force(target[0], outcome)):
                outcome = SwapRefused(outcome.source, (already,))
        run_dir = self.files.run_dir
        kept = outcome if isinstance(outcome, SwapRefused) else keep_file(run_dir, outcome)
        recorder = self.link.recorder_or_fail
        member = "" if isinstance(target, str) else target[2]
        asked = {"by": request.by, "reason": request.reason, "request": name}
        if isinstance(kept, SwapRefused):
            bar = self.markets.bar_in_progress() - 1
            at = self.markets.session_or_fail.history.time(bar)  # the row's header: its bar's
            journal_refusal(recorder, bar, kept, strategy=request.strategy or "", time=at, **asked)
        else:
            assert isinstance(outcome, ModelSwap) and not isinstance(target, str)
            journal_swap(recorder, target[0], outcome, kept, strategy=member, **asked)
            # a swap by hand puts the file's signal rule and sizing in force (a member's: its own)
            rule_in_force(config, self.markets.plugins, target[0], "")

    def _target(self, strategy: str | None) -> tuple[LiveSession, StrategyConfig, str] | str:
        """Return the session whose model a swap request for ``strategy`` swaps, its
        strategy in force and its member's name ('' for a strategy run alone); or why the
        request names none (`member_problem`)."""
        session = self.markets.session_or_fail
        if self.markets.portfolio is None:
            if strategy is not None:
                return member_problem(strategy, ())
            return session, self.files.config, ""
        from tradeloom.live.tick.portfolio_session import PortfolioSession

        assert isinstance(session, PortfolioSession)
        members = {member.owner: member for member in session.members}
        if strategy is None or strategy not in members:
            return member_problem(strategy, tuple(members))
        member = members[strategy]
        return member, session.strategy_file(member), strategy
