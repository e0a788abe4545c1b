"""Promote a challenger: its model becomes the champion's by a swap, at once or as a canary.

The challenger's ``model`` section (a saved model: ``tradeloom validate`` refuses a gate
on one that trains in the run) goes through the path every swap takes
(`tradeloom.live.lifecycle.model_swap`): built against the strategy in force and checked, its file
kept in ``RUN_DIR/swapped/``, swapped into the session and journaled as
``model_swapped`` (request ``challenger:NAME``, and ``@FILE`` when the mailbox's request
file asked), in one commit, by ``gate`` when its gate passed (in the commit of the gate's
``promote`` row) or by whoever asked by hand. Its shadow then stops. When its gate
declares a ``canary:``, the champion's file is kept too and the canary starts in the
same commit (`tradeloom.live.lifecycle.canary`); when it declares a ``watch:`` and no canary, the
champion's file is kept and the watch starts in the same commit
(`tradeloom.live.lifecycle.promotion_watch`; after a canary, its passing starts it). A swap
refused there (the file changed or went
missing since the run started) is journaled (``model_swap_refused``) and, when its gate
asked, the challenger dropped (``challenger_failed``): the champion trades on.

A restart runs the model of the journal's last ``model_swapped`` row and does not start
the promoted challenger again (`tradeloom.live.lifecycle.challengers`): the journal's rows are the
truth, so a kill -9 at any moment promotes once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradeloom.live.lifecycle.canary import Canary, keep_champion, start_canary
from tradeloom.live.lifecycle.challengers import ShadowBooks, drop, promotion_request
from tradeloom.live.lifecycle.model_swap import (
    SwapRefused,
    already_in_force,
    build_swap,
    journal_refusal,
    journal_swap,
    keep_file,
)
from tradeloom.live.lifecycle.promoted_signal import (
    promoted_signal,
    promoted_sizing,
    rule_in_force,
    signal_text,
)
from tradeloom.live.lifecycle.promotion_watch import Watch, start_watch
from tradeloom.live.lifecycle.rules import DROPPED, PROMOTED
from tradeloom.live.lifecycle.watched import Shadowing

if TYPE_CHECKING:
    from tradeloom.engine.events import Recorder
    from tradeloom.live.tick.services import RunFiles
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.manager import Plugins
    from tradeloom.schemas import StrategyConfig

__all__ = ["Member", "promote", "promote_passed"]


@dataclass(frozen=True)
class Member:
    """The portfolio file's strategy whose challenger is promoted.

    Attributes:
        strategy: Its name (its challengers' are ``STRATEGY/NAME``).
        config: Its strategy file, as the run runs it (its ``challengers:``; what a
            promotion's signal rule and sizing are put in force over).
    """

    strategy: str
    config: StrategyConfig


def promote_passed(
    books: ShadowBooks,
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    recorder: Recorder,
    shadowing: Shadowing,
    member: Member | None = None,
) -> Canary | Watch | None:
    """Promote the first challenger of ``books`` whose gate passed (one per bar: the
    others' gates read the new champion from the next bar); return its canary when its
    gate declares one, or its watch when it declares a watch and no canary
    (``shadowing``: what the champion's shadow and the run's replay are built from;
    ``member``: the portfolio file's strategy ``session`` is, as `promote`'s)."""
    names = books.promotable()
    if not names:
        return None
    name = names[0]
    reason = f"challenger {name} passed its gate"
    return promote(
        books,
        files,
        plugins,
        session,
        recorder,
        shadowing,
        name=name,
        by="gate",
        reason=reason,
        request=promotion_request(name),
        member=member,
    )


def promote(
    books: ShadowBooks,
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    recorder: Recorder,
    shadowing: Shadowing,
    *,
    name: str,
    by: str,
    reason: str,
    request: str,
    member: Member | None = None,
) -> Canary | Watch | None:
    """Swap challenger ``name``'s model in and stop its shadow, through its canary when
    its gate declares one, watched when it declares a watch and no canary (the stage
    returned), committed; a refused swap drops it when its gate asked (an operator's
    refused request leaves it in shadow).

    With ``member`` (a portfolio file's strategy: ``session`` is its member's), ``name``
    is ``STRATEGY/NAME`` and only that strategy's model, signal rule and sizing are
    swapped, by the path of ``tradeloom swap --strategy`` (``model_swapped`` with its
    ``strategy``)."""
    config = files.config if member is None else member.config
    strategy = "" if member is None else member.strategy
    own = name.removeprefix(f"{strategy}/") if strategy else name
    section = _model_section(config.document, own)
    entry = next(c for c in config.challengers if c.name == own)
    when = None if entry.promote_when is None else entry.promote_when.canary
    watch = None if entry.promote_when is None else entry.promote_when.watch
    swap = build_swap(config, plugins, session, section)
    if not isinstance(swap, SwapRefused) and (already := already_in_force(session, swap)):
        swap = SwapRefused(swap.source, (already,))
    champion: dict[str, Any] | SwapRefused = {}
    if not isinstance(swap, SwapRefused) and (when is not None or watch is not None):
        champion = keep_champion(files.run_dir, session)
        if isinstance(champion, SwapRefused):
            swap = champion
    kept = swap if isinstance(swap, SwapRefused) else keep_file(files.run_dir, swap)
    asked = {"by": by, "reason": reason, "request": request}
    bar = len(session.history) - 1
    stage: Canary | Watch | None = None
    gone = PROMOTED
    if isinstance(kept, SwapRefused):
        journal_refusal(
            recorder, bar, kept, strategy=strategy, time=session.history.time(bar), **asked
        )
        if by != "gate":  # an operator's request refused: the challenger shadows on
            books.journal.flush()
            return None
        drop(books.journal, name, RuntimeError(kept.describe()), bar=bar, strategy=strategy)
        gone = DROPPED
    else:
        assert not isinstance(swap, SwapRefused) and not isinstance(champion, SwapRefused)
        previous = session.p.model
        # the challenger's own rule and sizing (a member's: for its strategy's books alone)
        rule = signal_text(promoted_signal(config.document, own))
        size = signal_text(promoted_sizing(config.document, own))
        journal_swap(
            recorder, session, swap, kept, strategy=strategy, signal=rule, sizing=size, **asked
        )
        rule_in_force(config, plugins, session, rule, size)
        assert isinstance(champion, dict)
        if when is not None:
            stage = start_canary(
                books,
                session,
                recorder,
                shadowing,
                name=name,
                when=when,
                champion=champion,
                champion_model=previous,
                watch=watch,
                run_dir=files.run_dir,
                **asked,
            )
        elif watch is not None:
            stage = start_watch(
                session,
                recorder,
                shadowing,
                name=name,
                when=watch,
                champion=champion,
                run_dir=files.run_dir,
                **asked,
            )
    books.retire(name, gone)
    books.journal.flush()
    return stage


def _model_section(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    entry = next(e for e in document.get("challengers") or () if e.get("name") == name)
    section = dict(entry["model"])
    return {k: v for k, v in section.items() if k != "kind" or v != "saved"}  # implied
