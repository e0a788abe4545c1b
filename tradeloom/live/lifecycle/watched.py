"""What a canary and the watch after a promotion share: a stage watched by rollback rules.

`Watched` is read at each bar's close of its stage (`tradeloom.live.lifecycle.promotion_stage`):
the run's drawdown since its start bar, the AUC and calibration of the promoted
model's resolved predictions (`CanaryFigures`), and the gap between the run's return
and its replay's (``max_parity_gap``: `stage_twin`, `tradeloom.live.lifecycle.parity_twin`). The
first rule that fires (`fired`) rolls the stage back (`roll_back`, written once for
both): the champion's kept file swapped back in by the swap's path (`swap_back`) and
the stage's rollback row (``canary_rolled_back``, ``promotion_rolled_back``) with its
evidence. A restart takes a stage up again (`restore_watched`). `Shadowing` is what a
shadow of the run is built from (a challenger's, the champion's during a canary, a
stage's replay).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from tradeloom.domain import Universe
from tradeloom.journal import (
    CanaryRolledBack,
    CanaryStarted,
    ParityGapLost,
    PromotionRolledBack,
    WatchStarted,
)
from tradeloom.live.lifecycle.model_swap import (
    ModelSwap,
    SwapRefused,
    build_swap,
    journal_refusal,
    journal_swap,
    keep_file,
    kept_by,
)
from tradeloom.live.lifecycle.parity_twin import ParityTwin, open_twin, reload_lost
from tradeloom.live.lifecycle.prediction_health import HealthBook
from tradeloom.live.lifecycle.promoted_signal import rule_in_force
from tradeloom.live.lifecycle.stage_drawdown import Drawdown
from tradeloom.plugins.protocols_steps import LiveRows
from tradeloom.schemas.strategy import RollbackWhen

if TYPE_CHECKING:
    from tradeloom.engine.events import Recorder
    from tradeloom.live.lifecycle.challengers import ShadowBooks
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.services import RunFiles
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.manager import Plugins

__all__ = [
    "CHAMPION_SHADOW",
    "CanaryFigures",
    "Shadowing",
    "Watched",
    "champion_of",
    "fired",
    "journal_lost_twin",
    "restore_watched",
    "roll_back",
    "rollback_evidence",
    "stage_twin",
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


def fired(
    rules: RollbackWhen, figures: CanaryFigures, parity_gap: float = math.nan
) -> tuple[str, float, float] | None:
    """Return the first rule that fires on ``figures`` and ``parity_gap`` (the run's
    return since the stage started minus its replay's, `tradeloom.live.lifecycle.parity_twin`) as
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
    the watch after a full promotion (`tradeloom.live.lifecycle.promotion_watch.Watch`).

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
        drawdown: The run's drawdown since its start bar, kept up to date bar by bar
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
    drawdown: Drawdown | None = field(default=None, repr=False, compare=False)
    lost: str = ""
    unjournaled: tuple[str, str] | None = None

    WHAT: ClassVar[str] = "stage"
    """What a rollback ends: ``canary``, ``promotion`` (its refusal's halt names it)."""
    PREFIX: ClassVar[str] = "stage"
    """The request a rule's rollback is journaled by: ``PREFIX:NAME``."""
    SCALED: ClassVar[bool] = False
    """Whether the stage scales the sizes (a canary) and keeps the champion's shadow."""

    def rolled_back(self, session: LiveSession) -> dict[str, Any]:
        """Return the fields of its rollback row that the stage reads before the swap
        (the watch's parity gap; none for a canary)."""
        return {}

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

    def figures(self, session: LiveSession, *, judged: bool = False) -> CanaryFigures:
        """Return the stage's figures at the last bar's close (`canary_figures`); as its
        rules read them when ``judged`` (`HealthBook.judged`: the ECE on the same side of
        ``max_calibration_error``, not a row's figure)."""
        start = self.started.bar
        closes = np.asarray(session.history.closes(), np.float64)
        engine = session.engine
        if self.drawdown is None:
            self.drawdown = Drawdown(start, engine.portfolio.initial_cash)
        drawdown = self.drawdown.read(engine.fill_marks(), closes)
        if self.health is None:  # the bars after the start bar, as `canary_figures` reads
            self.health = HealthBook(self.horizon, start + 1)
        if judged:
            limit = self.rules.max_calibration_error
            health = self.health.judged(self.probabilities, closes, self.rules.min_samples, limit)
        else:
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
        return champion_of(self.started, run_dir)

    def kept_by(self, run_dir: Path) -> str:
        """Return where the champion's kept file's hash comes from (its start row's)."""
        return kept_by(run_dir, self.started.KIND, self.started.bar)


def champion_of(started: CanaryStarted | WatchStarted, run_dir: Path) -> dict[str, Any]:
    """Return the ``model`` section of the champion's file ``started`` kept (its path
    absolute in ``run_dir``)."""
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


def roll_back(
    stage: Watched[Any],
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    recorder: Recorder,
    *,
    by: str,
    reason: str,
    request: str = "",
    rule: tuple[str, float, float] | None = None,
    books: ShadowBooks | None = None,
) -> bool:
    """Put the champion's model back by the swap's path and end ``stage`` (its rollback
    row with ``rule``: its name, figure and limit; None by hand); return whether it was
    (a refused swap halts the run: `swap_back`).

    A canary (``books``: the run's shadow books) sizes at full again, retires the
    champion's shadow and commits; a watch's caller commits.
    """
    figures = stage.figures(session)
    fields = stage.rolled_back(session)
    bar = len(session.history) - 1
    asked = {"by": by, "reason": reason, "request": request or f"{stage.PREFIX}:{stage.name}"}
    if not swap_back(stage, stage.WHAT, files, plugins, session, recorder, asked):
        return False
    if stage.SCALED:
        session.engine.scale_sizes(1.0)
    evidence = rollback_evidence(stage, bar, figures, rule, by=by, reason=reason, request=request)
    row = CanaryRolledBack if stage.SCALED else PromotionRolledBack
    recorder.record(row(**recorder.at(bar), **fields, **evidence))
    if stage.SCALED:
        assert books is not None, "a canary's rollback retires the champion's shadow"
        books.retire(CHAMPION_SHADOW)
        books.journal.flush()
    rule_said = {key: evidence[key] for key in ("rule", "figure")}
    _log.warning(row.KIND, challenger=stage.name, by=by, **rule_said)
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
    rule_in_force(files.config, plugins, session, "")  # the champion's rule back too
    return True


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
