"""The watch after a full promotion: rollback rules read for some bars, then final.

A challenger whose gate declares ``watch: {bars, rollback_when}`` is watched once it is
the full champion: from the commit of its promotion when it has no canary
(`tradeloom.live.lifecycle.promotion`), or of its ``canary_passed`` row
(`tradeloom.live.lifecycle.canary`; the watch's rules were journaled in its
``canary_started`` row). ``watch_started`` names the previous champion's model file
(kept in ``RUN_DIR/swapped/``; the canary's, when it had one) and the rules, every
field, as JSON.

At each bar's close of the watch the rules are read as a canary's are, from the watch's
start bar (`tradeloom.live.lifecycle.watched.Watched`): the run's drawdown since then, the AUC and
calibration of the promoted model's resolved predictions, and the gap between the run's
return and its replay's (``max_parity_gap``, `tradeloom.live.lifecycle.parity_twin`). The first
that fires rolls the promotion back (`tradeloom.live.lifecycle.watched.roll_back`): the previous
champion's file is swapped back in by the swap's path (``model_swapped``, request
``watch:NAME``) and ``promotion_rolled_back`` names the rule, its figure and its limit,
in one commit. After ``bars`` bars with none fired, ``watch_passed``: the promotion is
final. There is no size to scale and no shadow: the promoted model trades at its full
size, and the previous champion is a file, not a book. An operator may roll the watch
back by hand (``tradeloom rollback``).

A restart takes the watch up again from its ``watch_started`` row (`restore_watch`): its
rules, its predictions from the ``live_bar`` rows, the run's replay over them; and the
last bar's close is read again (a kill -9 between a decision and its commit decides the
same at the same bar). A rollback whose swap is refused halts the run, as a canary's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from tradeloom.core import layout as L
from tradeloom.journal import WatchPassed, WatchStarted
from tradeloom.live.lifecycle.canary import Canary
from tradeloom.live.lifecycle.model_swap import SwapRefused, build_swap
from tradeloom.live.lifecycle.prediction_health import horizon_of
from tradeloom.live.lifecycle.watched import Shadowing, Watched, restore_watched, stage_twin
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.schemas.strategy import RollbackWhen, WatchWhen

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tradeloom.engine.events import Recorder
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.services import RunFiles
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.manager import Plugins

__all__ = [
    "Watch",
    "pass_watch",
    "restore_watch",
    "start_watch",
    "watch_after",
]

_log = structlog.get_logger("tradeloom.live")


@dataclass
class Watch(Watched[WatchStarted]):
    """The watch in progress (`Watched`: its ``watch_started`` row, its rules)."""

    WHAT: ClassVar[str] = "promotion"
    PREFIX: ClassVar[str] = "watch"

    def rolled_back(self, session: LiveSession) -> dict[str, Any]:
        """The run's parity gap at the rollback, read before the swap."""
        return {"parity_gap": self.parity_gap(session)}


def start_watch(
    session: LiveSession,
    recorder: Recorder,
    shadowing: Shadowing,
    *,
    name: str,
    when: WatchWhen,
    champion: Mapping[str, Any],
    by: str,
    reason: str,
    request: str,
    run_dir: Path,
) -> Watch:
    """Start watching challenger ``name``, the full champion from the next bar: journal
    ``watch_started`` (``champion``: the previous champion's kept file) and, with a
    ``max_parity_gap`` rule, start the run's replay from ``run_dir``'s journal. The caller
    commits."""
    bar = len(session.history) - 1
    started = WatchStarted(
        **recorder.at(bar),
        challenger=name,
        bars=when.bars,
        by=by,
        reason=reason,
        request=request,
        champion=dict(champion),
        champion_sha256=str(champion["sha256"]),
        equity=float(session.engine.state.acct[L.A_EQUITY]),
        rollback_when=when.rollback_when.journaled(),
    )
    recorder.record(started)
    _log.warning("watch_started", challenger=name, bars=when.bars)
    watch = Watch(started, when.rollback_when, horizon_of(session.p.model))
    watch.twin = stage_twin(session, shadowing, started, when.rollback_when, run_dir)
    return watch


def watch_after(
    canary: Canary,
    session: LiveSession,
    recorder: Recorder,
    shadowing: Shadowing,
    *,
    by: str,
    run_dir: Path,
) -> Watch | None:
    """Start the watch ``canary``'s ``canary_started`` row declares, now that it passed
    (its champion's kept file the one a rollback swaps back in); None: it declares none.
    The caller commits."""
    if not canary.started.watch:
        return None
    when = WatchWhen.model_validate_json(canary.started.watch)
    return start_watch(
        session,
        recorder,
        shadowing,
        name=canary.name,
        when=when,
        champion=canary.started.champion,
        by=by,
        reason=f"the canary of {canary.name} passed",
        request=canary.started.request,
        run_dir=run_dir,
    )


def pass_watch(watch: Watch, session: LiveSession, recorder: Recorder) -> None:
    """End ``watch`` with its promotion final (``watch_passed``); the caller commits."""
    figures = watch.figures(session)
    bar = len(session.history) - 1
    recorder.record(
        WatchPassed(
            **recorder.at(bar),
            challenger=watch.name,
            bars=bar - watch.started.bar,
            parity_gap=watch.parity_gap(session),
            **asdict(figures),
        )
    )
    _log.warning("watch_passed", challenger=watch.name)


def restore_watch(
    state: JournalState,
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    shadowing: Shadowing,
) -> Watch | None:
    """Take up the journal's watch in progress after a restart (None: none is): its rules
    from its ``watch_started`` row, its predictions from the ``live_bar`` rows, the run's
    replay over them.

    Raises:
        RestartRefused: The previous champion's kept file cannot be loaded again.
    """
    started = state.watch
    if started is None:
        return None
    watch = Watch(
        started,
        RollbackWhen.model_validate_json(started.rollback_when),
        horizon_of(session.p.model),
    )
    where = watch.kept_by(files.run_dir)
    built = build_swap(files.config, plugins, session, watch.champion(files.run_dir), where)
    if isinstance(built, SwapRefused):
        raise RestartRefused(
            f"{files.run_dir}: the champion's model a watch since bar {started.bar} would "
            f"roll back to ({started.champion.get('path')}) cannot be loaded again: "
            f"{built.errors[0]}; put the file back (the journal's watch_started row names it)"
        )
    restore_watched(watch, state, session, shadowing, since=state.watch_seq)
    return watch
