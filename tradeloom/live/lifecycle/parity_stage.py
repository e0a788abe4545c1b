"""The live parity monitor's stage (``live.parity``): a check handed off after each
tick's commit, its result journaled at a later tick, and the last one waited for when
the run stops (`tradeloom.live.lifecycle.parity_monitor.ParityMonitor`)."""

from __future__ import annotations

from collections.abc import Callable

from tradeloom.live.lifecycle.parity_monitor import Check, ParityMonitor
from tradeloom.live.tick.services import JournalLink, Markets, RunFiles, Stage

__all__ = ["ParityStage"]


class ParityStage(Stage):
    """Check the run against its replay every ``live.parity.every_bars`` bars.

    Args:
        files, link, markets: The run's services.
        check: The comparison (the diagnostics layer's, handed down by the command that
            starts the run: `tradeloom.diagnostics.live_parity.check_apart`).
        ready: Blocks until the run's files reach the last bar handed over (None: none).
        wake: Wakes the runner to read its mailbox (a breach's request).
        held: What a rollback would end: a canary's or a watch's note (None: neither).
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
    ) -> None:
        params = files.config.live.parity
        assert params is not None
        self.link, self.markets = link, markets
        self.monitor = ParityMonitor(
            files.run_dir,
            params,
            ready=ready,
            check=check,
            wake=wake,
            in_progress=held,
            killed=lambda: markets.session_or_fail.killed,
        )
        """The monitor (its thread, its checks journaled)."""

    def after_tick(self, processed: int) -> bool:
        """Journal a check that ended; start one when it is due (after the files'
        hand-over: a check reads them)."""
        last = len(self.markets.session_or_fail.history) - 1
        return self.monitor.after_tick(processed, last, self.link.recorder_or_fail)

    def close(self) -> None:
        """Wait for a running check and journal it (and one that came due meanwhile)."""
        self.monitor.close(self.link.recorder_or_fail)
