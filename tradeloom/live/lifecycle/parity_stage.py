"""The live parity monitor's stage (``live.parity``): a check handed off after each
tick's commit, its result journaled at a later tick, and the last one waited for when
the run stops (`tradeloom.live.lifecycle.parity_monitor.ParityMonitor`). The check
follows the run with its replay, bar by bar, and runs the whole replay only when it
must (`tradeloom.live.lifecycle.parity_follow.ParityFollower`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tradeloom.live.lifecycle.parity_follow import ParityFollower
from tradeloom.live.lifecycle.parity_monitor import Check, ParityMonitor
from tradeloom.live.tick.services import JournalLink, Markets, RunFiles, Stage

if TYPE_CHECKING:
    from tradeloom.live.lifecycle.challenger_stages import LiveRowsOf
    from tradeloom.live.recovery.journal_state import JournalState

__all__ = ["ParityStage"]


class ParityStage(Stage):
    """Check the run against its replay every ``live.parity.every_bars`` bars.

    Args:
        files, link, markets: The run's services.
        check: The whole comparison (the diagnostics layer's, handed down by the command
            that starts the run: `tradeloom.diagnostics.live_parity.check_apart`).
        ready: Blocks until the run's files reach the last bar handed over (None: none).
        wake: Wakes the runner to read its mailbox (a breach's request).
        held: What a rollback would end: a canary's or a watch's note (None: neither).
        live_rows: Each market's extra columns as its bars close (the replay's too;
            None: none).
    """

    def __init__(
        self,
        files: RunFiles,
        link: JournalLink,
        markets: Markets,
        *,
        check: Check,
        ready: Callable[[], None] | None,
        wake: Callable[[], None],
        held: Callable[[], str | None],
        live_rows: LiveRowsOf | None = None,
    ) -> None:
        params = files.config.live.parity
        assert params is not None
        self.files, self.link, self.markets = files, link, markets
        self.live_rows = live_rows
        self.follower = ParityFollower(files.run_dir, check)
        """The check: the run followed by its replay, the whole one when it must."""
        self.monitor = ParityMonitor(
            files.run_dir,
            params,
            ready=ready,
            check=self.follower.check,
            wake=wake,
            in_progress=held,
            killed=lambda: markets.session_or_fail.killed,
        )
        """The monitor (its thread, its checks journaled)."""

    def restore(self, state: JournalState | None) -> None:
        """Start the replay the checks follow the run with, before its first live bar
        (its live bars so far are replayed at the first check); a portfolio file's run
        is checked whole."""
        from tradeloom.live.lifecycle.parity_twin import open_twin

        self.monitor.wait()  # a check under way reads the follower
        if self.markets.portfolio is not None:
            self.follower.start(None, ())
            return
        session = self.markets.session_or_fail
        history = session.history
        live = 0 if state is None else len({row.index for row in state.bars})
        head = history.universe(len(history) - live)
        files = self.files
        try:
            twin = open_twin(
                session,
                head,
                start=len(history) - live - 1,
                run_equity=float("nan"),
                rows=[],
                clock=lambda: files.now(),
                live_rows=None if self.live_rows is None else self.live_rows(history.symbols),
            )
        except Exception as exc:  # a shape the replay cannot follow: every check whole
            self.follower.start(None, ())
            self.follower.drop(f"no replay beside the run: {type(exc).__name__}: {exc}")
            return
        self.follower.start(twin, session.names)

    def after_tick(self, processed: int) -> bool:
        """Journal a check that ended; start one when it is due (after the files'
        hand-over: a check reads them)."""
        last = len(self.markets.session_or_fail.history) - 1
        return self.monitor.after_tick(processed, last, self.link.recorder_or_fail)

    def close(self) -> None:
        """Wait for a running check and journal it (and one that came due meanwhile)."""
        self.monitor.close(self.link.recorder_or_fail)
