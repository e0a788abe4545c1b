"""A canary stage between a challenger's promotion and the full promotion, and its rollback.

A challenger whose gate declares ``canary: {fraction, bars, rollback_when}`` is promoted
through it (`tradeloom.live.lifecycle.promotion`): its model is swapped in by the swap's path
(``model_swapped``) and, in the same commit, ``canary_started`` is journaled and the
engine sizes every entry from the next bar on at ``fraction`` of what the strategy's
``risk.sizing`` gives (`tradeloom.engine.driver.Engine.scale_sizes`: the core's rule,
the same in paper and live). The champion's model keeps deciding in shadow, as a
challenger named `CHAMPION_SHADOW` with its own book (``challenger_bar`` rows; their
``champion_equity`` is then the canary's own equity). One model decides each bar of the
run; the other decides only in shadow.

At each bar's close of the canary the rollback rules are read over the bars since it
started (`canary_figures`): the run's drawdown from its highest close since then, and
the AUC and expected calibration error of the candidate's probabilities over the
predictions whose outcome (the label's direction, ``horizon`` bars on) is known. The
first rule that fires rolls back (`tradeloom.live.lifecycle.watched.roll_back`): the champion's
model file, kept in ``RUN_DIR/swapped/`` when the canary started, is swapped back in by
the same path (``model_swapped``), sizes are full again, and ``canary_rolled_back``
names the rule and its figure, in one commit. After ``bars`` bars with none fired,
``canary_passed`` (`pass_canary`): the candidate is the full champion. An operator may
do either by hand (`tradeloom.live.lifecycle.promotion_stage`).

A restart replays each canary's share of the size at its bars (`tradeloom.live.recovery.replay`),
runs the model of the journal's last ``model_swapped`` row, and, with a canary in
progress, takes it up again (`restore_canary`): its rollback rules from its
``canary_started`` row (the file's entry may have changed or gone while the run was
down), its predictions from the journal's ``live_bar`` rows, the champion's shadow
rebuilt over the live bars, its book journaled after its last row. A rollback whose
swap is refused (the champion's file is gone) halts the run (the kill switch's halt):
the candidate does not trade on unwatched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import structlog

from tradeloom.core import layout as L
from tradeloom.journal import CanaryPassed, CanaryStarted
from tradeloom.live.lifecycle.challengers import (
    ShadowBooks,
    candidate_pipeline,
    drop,
    journaled_book,
    start_shadow,
)
from tradeloom.live.lifecycle.model_swap import (
    ModelSwap,
    SwapRefused,
    build_swap,
    keep_file,
    kept_by,
)
from tradeloom.live.lifecycle.prediction_health import horizon_of, prediction_health
from tradeloom.live.lifecycle.rules import unkept_champion
from tradeloom.live.lifecycle.watched import (
    CHAMPION_SHADOW,
    CanaryFigures,
    Shadowing,
    Watched,
    champion_of,
    restore_watched,
    stage_twin,
)
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.plugins.protocols import SavedModelFile
from tradeloom.schemas.config import Challenger
from tradeloom.schemas.strategy import CanaryWhen, RollbackWhen, WatchWhen

if TYPE_CHECKING:
    from tradeloom.engine.events import Recorder
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.services import RunFiles
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.manager import Plugins


__all__ = [
    "Canary",
    "canary_figures",
    "keep_champion",
    "pass_canary",
    "restore_canary",
    "start_canary",
]

_log = structlog.get_logger("tradeloom.live")


def canary_figures(
    equity: npt.NDArray[np.float64],
    probabilities: npt.NDArray[np.float64],
    closes: npt.NDArray[np.float64],
    horizon: int,
    min_samples: int,
) -> CanaryFigures:
    """Return the figures of a canary over its bars.

    Args:
        equity: The run's equity at each close from the canary's start bar on.
        probabilities: ``[bars, symbols]``: the candidate's probability at each bar
            after the start bar (NaN: the symbol had no bar).
        closes: ``[bars, symbols]``: each symbol's close from the start bar on (one row
            more than ``probabilities``).
        horizon: The label's horizon: a prediction at bar i is resolved by bar i + h.
        min_samples: The resolved predictions the AUC and the calibration wait for.
    """
    peak = float(np.max(equity))
    drawdown = 0.0 if peak <= 0.0 else max(0.0, 1.0 - float(equity[-1]) / peak)
    asked = {k + 1: row for k, row in enumerate(probabilities)}  # closes[0]: the start bar
    health = prediction_health(asked, closes, horizon, min_samples)
    return CanaryFigures(drawdown, health.auc, health.calibration_error, health.samples)


@dataclass
class Canary(Watched[CanaryStarted]):
    """The canary in progress (`Watched`: its ``canary_started`` row, its rules)."""

    WHAT: ClassVar[str] = "canary"
    PREFIX: ClassVar[str] = "canary"
    SCALED: ClassVar[bool] = True


def keep_champion(run_dir: Path, session: LiveSession) -> dict[str, Any] | SwapRefused:
    """Copy the file of the model in force into ``RUN_DIR/swapped/`` (a rollback swaps it
    back in from there); return its ``model`` section, or why it cannot be kept."""
    model = session.p.model
    if (unkept := unkept_champion(model)) is not None or not isinstance(model, SavedModelFile):
        return SwapRefused("the champion's model", (str(unkept),))
    loaded = model.loaded_from
    file = Path(str(loaded["source"]))
    champion = ModelSwap(model, str(file), str(loaded["sha256"]), file, ())
    return keep_file(run_dir, champion)


def start_canary(
    books: ShadowBooks,
    session: LiveSession,
    recorder: Recorder,
    shadowing: Shadowing,
    *,
    name: str,
    when: CanaryWhen,
    champion: Mapping[str, Any],
    champion_model: Any,
    by: str,
    reason: str,
    request: str,
    run_dir: Path,
    watch: WatchWhen | None = None,
) -> Canary:
    """Start the canary of challenger ``name``, whose model was just swapped in: size at
    ``when.fraction`` from the next bar, journal ``canary_started`` (with ``watch``, the
    watch its passing starts), and start the champion's shadow with ``champion_model``
    (its file kept as ``champion``) and, with a ``max_parity_gap`` rule, the run's replay
    from ``run_dir``'s journal. The caller commits."""
    history = session.history
    bar = len(history) - 1
    session.engine.scale_sizes(when.fraction)
    started = CanaryStarted(
        **recorder.at(bar),
        challenger=name,
        fraction=when.fraction,
        bars=when.bars,
        by=by,
        reason=reason,
        request=request,
        champion=dict(champion),
        champion_sha256=str(champion["sha256"]),
        equity=float(session.engine.state.acct[L.A_EQUITY]),
        rollback_when=when.rollback_when.journaled(),
        watch="" if watch is None else watch.model_dump_json(),
    )
    recorder.record(started)
    _log.warning("canary_started", challenger=name, fraction=when.fraction, bars=when.bars)
    canary = Canary(started, when.rollback_when, horizon_of(session.p.model))
    _shadow_champion(books, session, shadowing, champion_model, last_bar=bar)
    canary.twin = stage_twin(session, shadowing, started, when.rollback_when, run_dir)
    return canary


def pass_canary(
    canary: Canary,
    books: ShadowBooks,
    session: LiveSession,
    recorder: Recorder,
    *,
    by: str,
    reason: str,
    request: str = "",
    commit: bool = True,
) -> None:
    """End ``canary`` with its candidate the full champion (``canary_passed``), committed
    (unless not ``commit``: the caller journals the watch it starts and commits)."""
    figures = canary.figures(session)
    session.engine.scale_sizes(1.0)
    bar = len(session.history) - 1
    recorder.record(
        CanaryPassed(
            **recorder.at(bar),
            challenger=canary.name,
            bars=bar - canary.started.bar,
            by=by,
            reason=reason,
            request=request,
            **asdict(figures),  # the evidence: the rules' figures at this close
        )
    )
    books.retire(CHAMPION_SHADOW)
    if commit:
        books.journal.flush()
    _log.warning("canary_passed", challenger=canary.name, by=by)


def restore_canary(
    state: JournalState,
    books: ShadowBooks,
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    shadowing: Shadowing,
) -> Canary | None:
    """Take up the journal's canary in progress after a restart (None: none is): its
    predictions from the ``live_bar`` rows, the champion's shadow over the live bars.

    Raises:
        RestartRefused: The champion's kept file cannot be loaded again.
    """
    started = state.canary
    if started is None:
        return None
    where = kept_by(files.run_dir, started.KIND, started.bar)
    built = build_swap(files.config, plugins, session, champion_of(started, files.run_dir), where)
    if isinstance(built, SwapRefused):
        raise RestartRefused(
            f"{files.run_dir}: the champion's model a canary since bar {started.bar} would "
            f"roll back to ({started.champion.get('path')}) cannot be loaded again: "
            f"{built.errors[0]}; put the file back (the journal's canary_started row names it)"
        )
    canary = Canary(started, _rules(started, files), horizon_of(session.p.model))
    restore_watched(canary, state, session, shadowing, since=state.canary_seq)
    last, fills, dropped = journaled_book(files.run_dir, CHAMPION_SHADOW)
    if not dropped:  # one that raised stays dropped, as a challenger does
        _shadow_champion(
            books, session, shadowing, built.model, last_bar=max(last, started.bar), fills=fills
        )
    return canary


def _rules(started: CanaryStarted, files: RunFiles) -> RollbackWhen:
    """The rollback rules ``started`` journaled; in a journal written before they were,
    the file's entry's (none: no rule fires)."""
    if started.rollback_when:
        return RollbackWhen.model_validate_json(started.rollback_when)
    entry = next((c for c in files.config.challengers if c.name == started.challenger), None)
    gate = None if entry is None else entry.promote_when
    return RollbackWhen() if gate is None or gate.canary is None else gate.canary.rollback_when


def _shadow_champion(
    books: ShadowBooks,
    session: LiveSession,
    shadowing: Shadowing,
    model: Any,
    *,
    last_bar: int,
    fills: frozenset[tuple[str, int]] = frozenset(),
) -> None:
    """Start the champion's shadow (`CHAMPION_SHADOW`) deciding with ``model`` over the
    live bars so far, its book journaled after ``last_bar``; one that raises is dropped
    (journaled), and the canary goes on: its rollback needs only the champion's file."""
    pipeline = session.p
    own = Challenger(CHAMPION_SHADOW, pipeline.config.model)
    history = session.history
    first = len(shadowing.head)  # the run's first live bar
    ticks = [(t, history.time(t), np.array(history.prices(t))) for t in range(first, len(history))]
    try:
        candidate = replace(candidate_pipeline(pipeline, own), model=model)
        shadow = start_shadow(
            CHAMPION_SHADOW,
            candidate,
            session.rec,
            shadowing.head,
            clock=shadowing.clock,
            live_rows=shadowing.live_rows,
        )
        # a restart's bars the kill lost: against the run's equity as its replay had it
        books.join(shadow, ticks, last_bar=last_bar, fills=fills, champion=session.replayed_equity)
    except Exception as exc:  # a shadow never stops the run
        drop(books.journal, CHAMPION_SHADOW, exc, bar=len(history) - 1)
