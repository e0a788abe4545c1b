"""What a live run hands its helpers: small services, never the runner itself.

`tradeloom.live.tick.runner.LiveRunner` owns a paper or live run and one of each service
below; a helper (start and restart, the venues, reconciliation, the outputs, the
metrics, the loop) takes the two or three it uses, so its signature says what it reads
and what it may change, and no helper imports the runner.

- `RunFiles`: the run's strategy file in force, mode, directory, clock, first market's
  symbol and run key.
- `JournalLink`: the journal, the mark of the orders sent, the recorder, and whether the
  journal's tail was cut.
- `Markets`: the strategy's pipeline (its data, venue and router), the plugins, a
  portfolio file's strategies, and the session trading them once it is built.
- `Ticking`: what a clock drives: one tick, the control inbox's wake-up, the bars
  processed, the bar length.

Observers (the metrics, a test's probe) subclass `Observer` and register with
`LiveRunner.observe`; the runner tells them of each timed stage and each tick. They never
change a decision.

What acts at a bar boundary (the lifecycle wing, `tradeloom.live.lifecycle`) subclasses
`Stage`: the runner holds an ordered list of them (`tradeloom.live.lifecycle.stages`
builds it) and calls each, in that order, as it calls its observers: to refuse a
start's or a restart's run folder (`Stage.check`), to take itself up once the session
is built or rebuilt (`Stage.restore`), at the start of a tick before any bar
(`Stage.before_bars`), once a bar's features were stepped before anything of the bar is
committed (`Stage.before_commit`), at each bar's close before the next decision
(`Stage.at_close`), after the tick's commit (`Stage.after_tick`), for each control
request whose action it declares (`Stage.actions`, `Stage.answer`), and when the run
stops (`Stage.close`). A new live feature is a new stage, not an edit of the runner.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from tradeloom.domain import RunInfo
from tradeloom.journal import RunStarted, VenueReported
from tradeloom.version import __version__

if TYPE_CHECKING:
    from tradeloom.engine.control_files import ControlRequest
    from tradeloom.engine.events import Recorder
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.journal import JournalStore
    from tradeloom.live.orders.sent_mark import SentMark
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.portfolio_session import LivePortfolio
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.manager import Plugins
    from tradeloom.schemas.config import StrategyConfig
    from tradeloom.schemas.live import LiveSection

__all__ = [
    "JournalLink",
    "Markets",
    "Mode",
    "Observer",
    "RunFiles",
    "Stage",
    "Ticking",
    "wall_clock",
]

Mode = Literal["paper", "live"]
"""The modes of a live run (the backtest is `tradeloom.backtest`)."""


def wall_clock() -> pd.Timestamp:
    """Return the time now, UTC."""
    return pd.Timestamp.now(tz="UTC")


class RunFiles:
    """A run's strategy file, mode, directory and clock.

    Attributes:
        config: The strategy file in force (a hot reload swaps it).
        mode: ``paper`` or ``live``.
        run_dir: The run directory.
        now: The time now (UTC); a restart's replay pins it to the journaled times.
        symbol: The first market's symbol (the one market's, or a universe's first),
            once the history is loaded.
        run_key: The random key of the run's client order ids (a new run's, once started).
        notes: What a new run's start found to say, one line each, that the file alone
            could not (live: a ``signal.sides`` that may go short on a spot market);
            the command prints them with its own notes.
    """

    def __init__(
        self,
        config: StrategyConfig,
        mode: Mode,
        run_dir: Path,
        clock: Callable[[], pd.Timestamp] = wall_clock,
    ) -> None:
        self.config = config
        self.mode: Mode = mode
        self.run_dir = run_dir
        self.now = clock
        self.symbol = ""
        self.run_key = ""
        self.notes: list[str] = []

    def run_info(self) -> RunInfo:
        """Return who the run is, as the observers hear it."""
        return RunInfo(
            run_id=self.run_dir.name,
            strategy=self.config.name,
            mode=self.mode,
            run_dir=str(self.run_dir),
        )

    def started_row(self, capital: float, extra: dict[str, Any]) -> RunStarted:
        """Return the first journal row of a new run (``extra``: the live venue's values)."""
        return RunStarted(
            mode=self.mode,
            strategy=self.config.name,
            source=str(self.config.source),
            tradeloom=__version__,
            wall_time=pd.Timestamp(datetime.now(UTC)),
            run_key=self.run_key,
            capital=capital,
            document=dict(self.config.document),
            clock="wall" if self.now is wall_clock else "simulated",
            **extra,
        )


class JournalLink:
    """A run's journal and what writes to it (each None before the start and after the
    stop).

    Attributes:
        journal: The journal's store.
        sent_mark: The orders POSTed, kept outside the journal (`tradeloom.live.orders.sent_mark`).
        recorder: Journals and broadcasts the run's events.
        cut: The journal's tail record said it lost rows: a live restart asks the venue.
        before_commit: Makes durable what rows about to be committed rest on (the
            answers a bar's features or a training over the history read: the stages'
            `Stage.before_commit`); None: nothing to.
    """

    def __init__(self) -> None:
        self.journal: JournalStore | None = None
        self.sent_mark: SentMark | None = None
        self.recorder: Recorder | None = None
        self.cut = False
        self.before_commit: Callable[[], None] | None = None

    def prepare_commit(self) -> None:
        """Make durable what the rows about to be committed rest on (`before_commit`)."""
        if self.before_commit is not None:
            self.before_commit()

    @property
    def journal_or_fail(self) -> JournalStore:
        """The journal (after the start)."""
        if self.journal is None:
            raise RuntimeError("the run's journal is not open")
        return self.journal

    @property
    def recorder_or_fail(self) -> Recorder:
        """The recorder (after the start)."""
        if self.recorder is None:
            raise RuntimeError("the runner has not started")
        return self.recorder

    def record_delivery(
        self, bar: int, phase: str, call: int, events: int, ended: list[str]
    ) -> None:
        """Journal what the live venue reported at the ``call``-th ask of ``phase`` of
        ``bar``: ``events`` fills and cancellations, the orders it ``ended``."""
        recorder = self.recorder_or_fail
        recorder.record(
            VenueReported(**recorder.at(bar), phase=phase, call=call, events=events, ended=ended)
        )


class Markets:
    """What a run trades: its pipeline and plugins, and the session trading them.

    Attributes:
        p: The built strategy (a portfolio file's: the account's pipeline).
        plugins: The plugin manager (observers hear of the run's events).
        portfolio: A portfolio file's strategies on ``p``'s account (None: one strategy).
        session: The session trading the markets, once built (a restart sets it before
            it hands the journal's orders over: the venues stamp the bar in progress).
    """

    def __init__(self, p: Pipeline, plugins: Plugins, portfolio: LivePortfolio | None) -> None:
        self.p = p
        self.plugins = plugins
        self.portfolio = portfolio
        self.session: LiveSession | None = None

    @property
    def session_or_fail(self) -> LiveSession:
        """The session (after the start)."""
        if self.session is None:
            raise RuntimeError("the runner has not started")
        return self.session

    def bar_in_progress(self) -> int:
        """Return the index of the bar the session is at (0 before it is built)."""
        session = self.session
        return len(session.history) if session is not None else 0


@dataclass(frozen=True)
class Ticking:
    """What a clock drives (`tradeloom.live.tick.loop`, `tradeloom.live.tick.sim_clock`).

    Attributes:
        tick: One wake-up of the run; returns how many bars it processed.
        wake: Set by a control request (act at once, not at the next bar).
        processed: The bars the run has processed live since it was made.
        live: The strategy's ``live:`` section (its polls and checks).
        timeframe_seconds: The bars' length.
    """

    tick: Callable[[], int]
    wake: threading.Event
    processed: Callable[[], int]
    live: LiveSection
    timeframe_seconds: float


class Observer:
    """Hears a live run's stages and ticks (`LiveRunner.observe`); never changes a decision.

    Attributes:
        times_stages: Whether the run should time its stages for `stage` (timing costs).
    """

    times_stages = False

    def stage(self, stage: str, seconds: float) -> None:
        """Hear that ``stage`` of a tick took ``seconds``."""

    def after_tick(self, processed: int, state: str) -> None:
        """Hear that a tick processed ``processed`` bars and left the run in ``state``."""


class Stage:
    """Acts at a live run's bar boundaries (`LiveRunner`, in the order of its stages).

    A stage takes the services it reads when it is built, restores itself from the
    journal after a restart, acts at a bar's close before the next decision, answers the
    control requests whose action it declares, and closes. Every hook does nothing by
    default: a stage overrides those it needs.

    Attributes:
        actions: The control requests' actions it answers (`answer`); no two stages of a
            run declare one action.
    """

    actions: tuple[str, ...] = ()

    def check(self, state: JournalState | None) -> None:
        """Refuse a restart from ``state`` under the file in force, or a new run's start
        (``state`` None: a run folder with no journal, or one whose first start failed
        before it traded), before the journal opens.

        Raises:
            UserError: The file changed what the stage cannot take up (a `ConfigError`),
                or what the folder holds cannot be read.
        """

    def restore(self, state: JournalState | None) -> None:
        """Start, or take up ``state`` (the journal read; None: a new run), once the
        session is built (again, after a journal's outage)."""

    def before_bars(self) -> None:
        """Act at the tick's bar boundary, after the control requests, before any bar."""

    def before_commit(self) -> None:
        """Make durable what rows about to be committed rest on (a power loss never keeps
        rows without it): called once the session stepped a new bar's features, before
        anything of the bar is committed; before the commit of a start's training and of
        a restart's replay; and before every other commit that may hold what a stage read
        since (`JournalLink.prepare_commit`: the tick's own, which holds a hot reload's
        rows and its added challengers', a promotion's at a close after the challengers
        stepped, a control request's)."""

    def at_close(self, when: pd.Timestamp, prices: Any) -> None:
        """Act at the close of the bar the session just ran (``when``, ``prices``),
        before the next bar's decision."""

    def after_tick(self, processed: int) -> bool:
        """Act after the tick's commit (``processed`` bars); return whether a row was
        journaled (the runner commits it)."""
        return False

    def answer(self, request: ControlRequest, name: str) -> None:
        """Carry out ``request`` (one of `actions`; ``name``: the name it is journaled
        by), or journal why not; the runner commits."""

    def in_progress(self) -> str | None:
        """Why the model cannot change now (None: nothing holds it)."""
        return None

    def close(self) -> None:
        """The run stops: finish what is in flight (journaled; the runner commits)."""
