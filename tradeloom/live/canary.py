"""A canary stage between a challenger's promotion and the full promotion, and its rollback.

A challenger whose gate declares ``canary: {fraction, bars, rollback_when}`` is promoted
through it (`tradeloom.live.promotion`): its model is swapped in by the swap's path
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
first rule that fires rolls back (`roll_back`): the champion's model file, kept in
``RUN_DIR/swapped/`` when the canary started, is swapped back in by the same path
(``model_swapped``), sizes are full again, and ``canary_rolled_back`` names the rule and
its figure, in one commit. After ``bars`` bars with none fired, ``canary_passed``
(`pass_canary`): the candidate is the full champion. An operator may do either by hand
(`tradeloom.live.promotion_stage`).

A restart replays each canary's share of the size at its bars (`tradeloom.live.replay`),
runs the model of the journal's last ``model_swapped`` row, and, with a canary in
progress, takes it up again (`restore_canary`): its rollback rules from its
``canary_started`` row (the file's entry may have changed or gone while the run was
down), its predictions from the journal's ``live_bar`` rows, the champion's shadow
rebuilt over the live bars, its book journaled after its last row. A rollback whose
swap is refused (the champion's file is gone) halts the run (the kill switch's halt):
the candidate does not trade on unwatched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from tradeloom.core import layout as L
from tradeloom.domain import Universe
from tradeloom.journal import (
    CanaryPassed,
    CanaryRolledBack,
    CanaryStarted,
    ParityGapLost,
    WatchStarted,
)
from tradeloom.live.challengers import (
    ShadowBooks,
    candidate_pipeline,
    drop,
    journaled_book,
    start_shadow,
)
from tradeloom.live.lifecycle_rules import unkept_champion
from tradeloom.live.model_swap import (
    ModelSwap,
    SwapRefused,
    build_swap,
    journal_refusal,
    journal_swap,
    keep_file,
    kept_by,
)
from tradeloom.live.parity_twin import ParityTwin, open_twin, reload_lost
from tradeloom.live.prediction_health import HealthBook, horizon_of, prediction_health
from tradeloom.live.reconcile import RestartRefused
from tradeloom.plugins.protocols import SavedModelFile
from tradeloom.plugins.protocols_steps import LiveRows
from tradeloom.schemas.config import Challenger
from tradeloom.schemas.strategy import CanaryWhen, RollbackWhen, WatchWhen

if TYPE_CHECKING:
    from tradeloom.engine.events import Recorder
    from tradeloom.live.journal_state import JournalState
    from tradeloom.live.services import RunFiles
    from tradeloom.live.session import LiveSession
    from tradeloom.plugins.manager import Plugins

__all__ = [
    "CHAMPION_SHADOW",
    "Canary",
    "CanaryFigures",
    "Shadowing",
    "Watched",
    "canary_figures",
    "fired",
    "journal_lost_twin",
    "keep_champion",
    "pass_canary",
    "restore_canary",
    "restore_watched",
    "roll_back",
    "stage_twin",
    "start_canary",
    "swap_back",
]

CHAMPION_SHADOW = "(champion)"
"""The name of the champion's shadow book during a canary (no challenger's name: a name
holds letters, digits, ``_ . -`` only)."""

_log = structlog.get_logger("tradeloom.live")


@dataclass(frozen=True)
class CanaryFigures:
    """What the rollback rules read at one bar's close of a canary.

    Attributes:
        drawdown: The run's equity below its highest close since the canary started, as
            a fraction of that close (0: at a high).
        auc: The AUC of the candidate's probabilities against the label's direction over
            the resolved predictions (NaN: fewer than ``min_samples``, or one class).
        calibration_error: Their expected calibration error (NaN: fewer than
            ``min_samples``).
        samples: The resolved predictions (bars and symbols whose outcome is known).
    """

    drawdown: float
    auc: float
    calibration_error: float
    samples: int


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


def fired(
    rules: RollbackWhen, figures: CanaryFigures, parity_gap: float = math.nan
) -> tuple[str, float, float] | None:
    """Return the first rule that fires on ``figures`` and ``parity_gap`` (the run's
    return since the stage started minus its replay's, `tradeloom.live.parity_twin`) as
    ``(rule, figure, limit)`` (in the order max_drawdown, min_auc, max_calibration_error,
    max_parity_gap, whose figure is the gap's size); None: none does."""
    if rules.max_drawdown is not None and figures.drawdown > rules.max_drawdown:
        return "max_drawdown", figures.drawdown, rules.max_drawdown
    if rules.min_auc is not None and figures.auc < rules.min_auc:  # NaN: not yet
        return "min_auc", figures.auc, rules.min_auc
    error = figures.calibration_error
    if rules.max_calibration_error is not None and error > rules.max_calibration_error:
        return "max_calibration_error", error, rules.max_calibration_error
    gap = abs(parity_gap)  # NaN: no twin, never fires
    if rules.max_parity_gap is not None and gap > rules.max_parity_gap:
        return "max_parity_gap", gap, rules.max_parity_gap
    return None


@dataclass(frozen=True)
class Shadowing:
    """What a shadow of the run is built from (the runner's, `start_shadow`).

    Attributes:
        head: The history the run started from (before its first live bar).
        clock: The run's clock.
        live_rows: Per symbol, its extra columns as each bar closes.
    """

    head: Universe
    clock: Callable[[], pd.Timestamp]
    live_rows: Mapping[str, LiveRows] | None = None


Started = TypeVar("Started", CanaryStarted, WatchStarted)
"""The row a stage watched by rollback rules started with."""


@dataclass
class Watched(Generic[Started]):
    """A stage whose rollback rules are read at each bar's close: a canary (`Canary`) or
    the watch after a full promotion (`tradeloom.live.promotion_watch.Watch`).

    Attributes:
        started: Its start row.
        rules: Its rollback rules (its start row's).
        horizon: The promoted model's label horizon (bars).
        probabilities: The promoted model's probabilities per symbol at each bar it decided.
        stuck: A rollback was refused: the run is halted, nothing is tried again until
            a restart.
        twin: The run's replay the ``max_parity_gap`` rule reads (None: no such rule;
            `stage_twin`).
        health: Its figures over the resolved predictions, kept up to date bar by bar
            (made at the first reading).
        lost: Why its ``max_parity_gap`` rule reads no gap any more (``reload`` or
            ``kill``: `tradeloom.journal.ParityGapLost`); '': it does.
        unjournaled: The ``(cause, message)`` of a loss a restart found (a hot reload
            during the stage) that no ``parity_gap_lost`` row holds yet.
    """

    started: Started
    rules: RollbackWhen
    horizon: int
    probabilities: dict[int, npt.NDArray[np.float64]] = field(default_factory=dict)
    stuck: bool = False
    twin: ParityTwin | None = None
    health: HealthBook | None = field(default=None, repr=False, compare=False)
    lost: str = ""
    unjournaled: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        """Return the challenger's name."""
        return self.started.challenger

    def observe(self, session: LiveSession) -> None:
        """Take the model's probabilities of the bar ``session`` just ran (and step the
        twin on it)."""
        self.probabilities[len(session.history) - 1] = np.array(
            [np.nan if v is None else v.probability for v in session.verdicts]
        )
        if self.twin is not None:
            self.twin.follow(session)

    def lose_twin(self, session: LiveSession) -> tuple[str, str] | None:
        """Drop the twin when it cannot follow the bar ``session`` just ran (a hot reload,
        the kill switch: `ParityTwin.lost`); return the ``(cause, message)`` of the
        ``parity_gap_lost`` row to journal, None: none."""
        pending, self.unjournaled = self.unjournaled, None
        if pending is not None or self.twin is None:
            return pending
        lost = self.twin.lost(session)
        if lost is not None:
            self.twin, self.lost = None, lost[0]
        return lost

    def figures(self, session: LiveSession) -> CanaryFigures:
        """Return the stage's figures at the last bar's close (`canary_figures`)."""
        start = self.started.bar
        closes = np.asarray(session.history.closes(), np.float64)
        equity = session.engine.universe_curve(closes)[2][start:]
        peak = float(np.max(equity))
        drawdown = 0.0 if peak <= 0.0 else max(0.0, 1.0 - float(equity[-1]) / peak)
        if self.health is None:  # the bars after the start bar, as `canary_figures` reads
            self.health = HealthBook(self.horizon, start + 1)
        health = self.health.health(self.probabilities, closes, self.rules.min_samples)
        return CanaryFigures(drawdown, health.auc, health.calibration_error, health.samples)

    def parity_gap(self, session: LiveSession) -> float:
        """Return the run's return since the start minus its replay's (`ParityTwin.gap`);
        NaN: no ``max_parity_gap`` rule.

        Raises:
            RuntimeError: The stage has the rule and no replay (`stage_twin` starts
                every stage's): its NaN gap would never fire.
        """
        if self.twin is not None:
            return self.twin.gap(session)
        if self.rules.max_parity_gap is not None and not self.lost:
            raise RuntimeError(
                f"the stage of {self.name} since bar {self.started.bar} has a "
                "max_parity_gap rule and no replay of the run to read it from"
            )
        return math.nan

    def champion(self, run_dir: Path) -> dict[str, Any]:
        """Return the ``model`` section of the champion's kept file (its path absolute)."""
        return _champion(self.started, run_dir)

    def kept_by(self, run_dir: Path) -> str:
        """Return where the champion's kept file's hash comes from (its start row's)."""
        return kept_by(run_dir, self.started.KIND, self.started.bar)


@dataclass
class Canary(Watched[CanaryStarted]):
    """The canary in progress (`Watched`: its ``canary_started`` row, its rules)."""


def _champion(started: CanaryStarted | WatchStarted, run_dir: Path) -> dict[str, Any]:
    section = dict(started.champion)
    return {**section, "path": str(run_dir / section["path"])}


def journal_lost_twin(stage: Watched[Any], session: LiveSession, recorder: Recorder) -> None:
    """Journal ``parity_gap_lost`` when the replay of ``stage`` cannot follow the bar
    ``session`` just ran (`Watched.lose_twin`); the caller commits."""
    lost = stage.lose_twin(session)
    if lost is None:
        return
    cause, message = lost
    at = recorder.at(len(session.history) - 1)
    recorder.record(ParityGapLost(**at, challenger=stage.name, cause=cause, message=message))
    _log.warning("parity_gap_lost", challenger=stage.name, cause=cause, message=message)


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


def stage_twin(
    session: LiveSession,
    shadowing: Shadowing,
    started: CanaryStarted | WatchStarted,
    rules: RollbackWhen,
    journaled: Path | JournalState,
) -> ParityTwin | None:
    """Return the run's replay the ``max_parity_gap`` rule of a stage that ``started``
    at its bar reads (None: ``rules`` have no such rule), over the live bars of the
    ``journaled`` run: a restart's journal read (`JournalState`), or the run directory
    whose journal holds them (a stage starts after its bar's commit). Every stage's twin
    starts here: a rule with no twin would read a NaN gap and never fire."""
    if rules.max_parity_gap is None:
        return None
    run_dir, state = (journaled, None) if isinstance(journaled, Path) else (None, journaled)
    return open_twin(
        session,
        shadowing.head,
        start=started.bar,
        run_equity=started.equity,
        rows=None if state is None else state.bars,
        scales=() if state is None else state.scales,
        run_dir=run_dir,
        clock=shadowing.clock,
        live_rows=shadowing.live_rows,
    )


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


def roll_back(
    canary: Canary,
    books: ShadowBooks,
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    recorder: Recorder,
    *,
    by: str,
    reason: str,
    request: str = "",
    rule: tuple[str, float, float] | None = None,
) -> bool:
    """Put the champion's model back by the swap's path and end ``canary``
    (``canary_rolled_back`` with ``rule``: its name, figure and limit; None by hand),
    committed; return whether it was.

    A swap refused (the kept file is gone or changed) is journaled and halts the run.
    """
    figures = canary.figures(session)
    bar = len(session.history) - 1
    asked = {"by": by, "reason": reason, "request": request or f"canary:{canary.name}"}
    if not swap_back(canary, "canary", files, plugins, session, recorder, asked):
        return False
    session.engine.scale_sizes(1.0)
    evidence = rollback_evidence(canary, bar, figures, rule, by=by, reason=reason, request=request)
    recorder.record(CanaryRolledBack(**recorder.at(bar), **evidence))
    books.retire(CHAMPION_SHADOW)
    books.journal.flush()
    rule_said = {key: evidence[key] for key in ("rule", "figure")}
    _log.warning("canary_rolled_back", challenger=canary.name, by=by, **rule_said)
    return True


def rollback_evidence(
    stage: Watched[Any],
    bar: int,
    figures: CanaryFigures,
    rule: tuple[str, float, float] | None,
    *,
    by: str,
    reason: str,
    request: str,
) -> dict[str, Any]:
    """Return the fields a rollback's row shares (``canary_rolled_back``,
    ``promotion_rolled_back``): who and why, ``rule``'s name, figure and limit (None, by
    hand: '' and NaN), and the rules' figures at this close (the evidence)."""
    name, figure, limit = rule if rule is not None else ("", math.nan, math.nan)
    return {
        "challenger": stage.name,
        "bars": bar - stage.started.bar,
        "by": by,
        "rule": name,
        "figure": figure,
        "limit": limit,
        "reason": reason,
        "request": request,
        **asdict(figures),
    }


def swap_back(
    stage: Watched[Any],
    what: str,
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    recorder: Recorder,
    asked: Mapping[str, str],
) -> bool:
    """Swap the champion's kept file of ``stage`` (a ``what``: canary, promotion) back in
    by the swap's path (``model_swapped``, ``asked``: by, reason, request); return whether
    it was. A swap refused (the kept file is gone or changed) is journaled, marks the
    stage stuck and halts the run (the kill switch's halt): the promoted model does not
    trade on unwatched. The caller journals the stage's end and commits."""
    bar = len(session.history) - 1
    swap = build_swap(
        files.config, plugins, session, stage.champion(files.run_dir), stage.kept_by(files.run_dir)
    )
    kept = swap if isinstance(swap, SwapRefused) else keep_file(files.run_dir, swap)
    if isinstance(kept, SwapRefused):
        journal_refusal(recorder, bar, kept, time=session.history.time(bar), **asked)
        stage.stuck = True
        session.kill(f"the rollback of the {what} of {stage.name} was refused: {kept.describe()}")
        return False
    assert isinstance(swap, ModelSwap)
    journal_swap(recorder, session, swap, kept, **asked)
    return True


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
    built = build_swap(files.config, plugins, session, _champion(started, files.run_dir), where)
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


def restore_watched(
    stage: Watched[Any],
    state: JournalState,
    session: LiveSession,
    shadowing: Shadowing,
    *,
    since: int,
) -> None:
    """Take up ``stage`` after a restart: its model's probabilities from the journal's
    ``live_bar`` rows after its start, and with a ``max_parity_gap`` rule the run's
    replay over them, unless a hot reload was journaled after its start row (sequence
    number ``since``).

    A reload and a stage's start may share a bar (each at the last bar closed, from two
    wake ticks); the journal's order says which came first, as the live run's did: a
    reload before the start is the strategy its replay was opened with.
    """
    names = {name: s for s, name in enumerate(session.names)}
    for row in state.bars:
        if row.index > stage.started.bar:
            probabilities = stage.probabilities.setdefault(
                row.index, np.full(len(session.names), np.nan)
            )
            probabilities[names.get(row.symbol, 0)] = row.verdict.probability
    if stage.rules.max_parity_gap is not None:
        lost = [r for seq, r in state.parity_lost if seq > since and r.challenger == stage.name]
        reloads = [r.bar for r in state.reloads if r.seq > since]
        if lost:  # journaled: the rule reads no gap again
            stage.lost = lost[-1].cause
            return
        if reloads:  # kill -9 before the row's commit: the restart trades the reloaded file
            stage.lost, stage.unjournaled = "reload", reload_lost(reloads[0])
            return
    stage.twin = stage_twin(session, shadowing, stage.started, stage.rules, state)


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
