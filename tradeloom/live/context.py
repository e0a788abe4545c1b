"""What the live runtime's helpers may see of a run: narrow views, never the runner itself.

`tradeloom.live.runner.LiveRunner` owns a paper or live run. The helpers it calls
(start and restart, the venues, reconciliation, outputs, metrics, the loop) each
declare the view they need as a `typing.Protocol` here or beside them, and the runner
satisfies every one structurally: no helper imports the runner, so the runtime's
modules import one way (the runner on top), and each signature says what it reads
and what it may change.

- `RunView`: the run's file, mode, directory, clock and components (read, and the
  clock replaced by a replay).
- `JournaledRun`: a `RunView` with its journal, recorder and session.
- `StartingRun`: a `JournaledRun` that is being started or restarted: the venue, the
  run key, and the runner's steps a start calls back (build the session, apply a
  journaled reload).
- `TickingRun`: a `JournaledRun` a loop drives: its control inbox, the bars it
  processed, and one tick.
- `MeteredRun`: a `JournaledRun` and its trading state, what the metrics read (here, not
  in `tradeloom.live.metrics`, so that a run without ``live.metrics`` never imports
  prometheus_client, an extra).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.engine.control import ControlInbox
    from tradeloom.engine.events import Recorder
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.journal import JournalStore, RunStarted
    from tradeloom.live.history import MarketHistory
    from tradeloom.live.reload import Reload
    from tradeloom.live.sent_mark import SentMark
    from tradeloom.live.session import LiveSession
    from tradeloom.plugins.manager import Plugins
    from tradeloom.plugins.protocols import Venue
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["JournaledRun", "MeteredRun", "Mode", "RunView", "StartingRun", "TickingRun"]

Mode = Literal["paper", "live"]
"""The modes of a live run (the backtest is `tradeloom.backtest`)."""


class RunView(Protocol):
    """A run's file, mode, directory, clock and components."""

    config: StrategyConfig
    mode: Mode
    run_dir: Path
    p: Pipeline
    plugins: Plugins
    symbol: str
    now: Callable[[], pd.Timestamp]


class JournaledRun(RunView, Protocol):
    """A run with its journal (None before the start and after the stop) and session."""

    journal: JournalStore | None
    sent_mark: SentMark | None
    recorder: Recorder | None
    session: LiveSession | None

    @property
    def recorder_or_fail(self) -> Recorder: ...

    @property
    def session_or_fail(self) -> LiveSession: ...

    @property
    def portfolio(self) -> object | None:
        """A portfolio file's strategies (None: one strategy)."""
        ...


class MeteredRun(JournaledRun, Protocol):
    """What the metrics read of a run: a `JournaledRun` and its trading state."""

    @property
    def trading_state(self) -> str: ...


class StartingRun(JournaledRun, Protocol):
    """A run being started or restarted, and the runner's steps a start calls back."""

    run_key: str
    journal_cut: bool

    def started_row(self, capital: float, extra: dict[str, Any]) -> RunStarted: ...

    def build_session(
        self, history: MarketHistory, venue: Venue | None, key: str
    ) -> LiveSession: ...

    def record_delivery(
        self, bar: int, phase: str, call: int, events: int, ended: list[str]
    ) -> None: ...

    def apply_reload(self, reload: Reload, session: LiveSession) -> None: ...


class TickingRun(JournaledRun, Protocol):
    """A run a loop drives: its control inbox, the bars it processed, and one tick."""

    inbox: ControlInbox
    bars_processed: int

    def tick(self) -> int: ...
