"""The live parity monitor (``live.parity``): the run against its replay, while it trades.

Every ``every_bars`` bars played live, the trading thread hands the bar it reached to a
thread of the monitor and goes on. That thread waits for the run's files to reach the
bar (`LiveOutputs.wait`: parity reads ``equity.csv``), then runs its `Check`: the
diagnostics layer's `tradeloom.diagnostics.live_parity.check_apart`, which runs the
comparison in a process of its own (a replay is a backtest: drawn here, it would hold
the interpreter's lock and the run's memory) and writes ``parity/live.json``. At the
next tick after the check ended, the trading thread journals its result as one
``parity_checked`` row (`tradeloom.journal.ParityChecked`): the journal has one writer.
The row goes through the run's observers like any live event, so a ``diverged`` verdict
alerts (event ``parity``); ``tradeloom status`` shows the last. A check still running
when the next is due is not doubled: the next starts at the first tick after it was
journaled. When the run stops, a running check is waited for and journaled, and one that
came due meanwhile is run and journaled.

A ``diverged`` check acts as ``on_breach`` says, through the kill switch's mailbox
(`tradeloom.engine.control.latch_request`), as an operator would: ``halt`` writes a
``kill`` request, ``flatten`` a ``flatten``, and every action but ``alert`` a
``rollback`` while a canary (or the watch after a promotion) is in progress, the kill
first. Each request is on disk before the ``parity_checked`` row is journaled, and the
runner carries it out at its next tick before any bar, journaled as a
``control_request`` ``by: parity`` naming the request: a process killed after the breach
was journaled and before the halt was taken finds the request at its restart and halts
then, once (the journal's answered requests are never carried out again). A breach while
the kill switch holds the run halted, or while an earlier breach's requests wait for
the runner, asks for nothing more (a later window may hold the same divergence); it
alerts. A breach journaled as the run stops is carried out when it next starts, as a
kill asked then would be.

The comparison is a replay, which the diagnostics layer owns (it sits above live): the
monitor never names it. The command that starts the run (`tradeloom.cli.launch`, on top
of both) hands it down to the runner (`tradeloom.live.lifecycle.stages.StageOptions`), a
`Check`; the import graph sees every arrow, and none runs up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.engine.control import latch_request
from tradeloom.engine.reasons import REASON_LIMIT
from tradeloom.journal import ParityChecked
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.engine.control_files import Action
    from tradeloom.engine.events import Recorder
    from tradeloom.schemas.live import ParitySection

__all__ = ["Check", "ParityMonitor"]

Check = Callable[[Path, int, int, float], dict[str, Any]]
"""Compare a run up to a bar, over a window, against a threshold: the fields of a
``parity_checked`` row but its bar (`tradeloom.diagnostics.live_parity.check_apart`, in
a process of its own; `window_parity` in this one)."""

_log = logger("tradeloom.live")


class ParityMonitor:
    """Check parity every ``params.every_bars`` bars off the bar's path; journal each
    result, and act on a breach as ``params.on_breach`` says.

    Args:
        run_dir: The run folder.
        params: The ``live.parity`` keys.
        ready: Blocks until the run's files reach the last bar handed over (None: none).
        check: Does the comparison (`Check`).
        wake: Wakes the runner to read its mailbox (a breach's request; None: its next
            tick reads it).
        in_progress: What stage a rollback would end: a canary's or a watch's note, None
            when neither is in progress (None: the run has no challengers).
        killed: Whether the kill switch holds the run halted (a breach then asks for no
            halt again; None: never).
    """

    def __init__(
        self,
        run_dir: Path,
        params: ParitySection,
        *,
        check: Check,
        ready: Callable[[], None] | None = None,
        wake: Callable[[], None] | None = None,
        in_progress: Callable[[], str | None] | None = None,
        killed: Callable[[], bool] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.params = params
        self.ready = ready
        self.check = check
        self.wake = wake
        self.in_progress = in_progress
        self.killed = killed
        self._asked: list[Path] = []
        """The requests the last breach wrote (each moved to ``control/done/`` once carried
        out): a breach while one waits asks nothing more."""
        self._since = 0
        self._thread: threading.Thread | None = None
        self._done: tuple[int, dict[str, Any]] | None = None
        self._last_bar = -1
        self.checks = 0
        """Checks journaled."""

    def after_tick(self, processed: int, last_bar: int, recorder: Recorder) -> bool:
        """Journal a check that ended; start one when ``every_bars`` bars were played
        since the last (``processed``: this tick's, ``last_bar``: the last bar). Return
        whether a row was journaled."""
        journaled = self._collect(recorder)
        self._since += processed
        self._last_bar = last_bar
        if self._since >= self.params.every_bars and self._thread is None:
            self._start()
        return journaled

    def _start(self) -> None:
        self._since = 0
        self._thread = threading.Thread(
            target=self._run, args=(self._last_bar,), name="tradeloom-parity", daemon=True
        )
        self._thread.start()

    def wait(self) -> None:
        """Block until a running check ended."""
        thread = self._thread
        if thread is not None:
            thread.join()

    def close(self, recorder: Recorder) -> bool:
        """Wait for a running check and journal it, then run and journal one that came
        due meanwhile (the run stops); return whether a row was journaled."""
        self.wait()
        journaled = self._collect(recorder)
        if self._since >= self.params.every_bars:  # due while the last one ran
            self._start()
            self.wait()
            journaled = self._collect(recorder) or journaled
        return journaled

    def _run(self, until_bar: int) -> None:
        p = self.params
        try:
            if self.ready is not None:
                self.ready()
            result = self.check(self.run_dir, until_bar, p.window_bars, p.max_unexplained)
        except Exception as exc:  # a failed check is journaled; the run trades on
            message = " ".join(f"{type(exc).__name__}: {exc}".split())
            _log.error("parity_check_failed", until_bar=until_bar, error=message)
            result = {
                "first_bar": until_bar,
                "last_bar": until_bar,
                "equity_gap": 0.0,
                "window_gap": 0.0,
                "unexplained_pnl": 0.0,
                "max_unexplained": p.max_unexplained,
                "first_divergence": "",
                "verdict": "failed",
                "message": message,
            }
        self._done = (until_bar, result)

    def _collect(self, recorder: Recorder) -> bool:
        thread, done = self._thread, self._done
        if thread is None or done is None or thread.is_alive():
            return False
        thread.join()
        self._thread, self._done = None, None
        until_bar, result = done
        row = ParityChecked(**recorder.at(until_bar), **result)
        if row.verdict == "diverged":
            self._act(row)  # asked before the row is journaled: a crash between, asked still
        recorder.record(row)
        self.checks += 1
        log = _log.warning if row.verdict != "ok" else _log.info
        log("parity_checked", verdict=row.verdict, message=row.message)
        return True

    def _act(self, row: ParityChecked) -> None:
        """Ask the run, through its mailbox, for what ``on_breach`` says of ``row``."""
        action = self.params.on_breach
        if action == "alert":
            return
        if any(path.exists() for path in self._asked):
            return  # an earlier breach's requests wait for the runner's next tick: asked
        reason = f"parity diverged: {row.message}"
        if len(reason) > REASON_LIMIT:
            reason = reason[: REASON_LIMIT - 3] + "..."
        asked: list[Action] = []
        # a run the kill switch holds halted is not halted again by a breach (one that
        # acted, or a later window holding the same divergence): it alerts; after a resume
        # a breach acts again
        if action != "rollback" and not (self.killed is not None and self.killed()):
            asked.append("kill" if action == "halt" else "flatten")
        stage = None if self.in_progress is None else self.in_progress()
        if stage is not None:  # after the kill: a halt is what must survive a crash
            asked.append("rollback")
        self._asked = []
        for each in asked:
            try:
                self._asked.append(latch_request(self.run_dir, each, reason, by="parity"))
            except OSError as exc:  # the alert still goes out; the operator acts
                _log.error("parity_breach_not_asked", action=each, error=str(exc))
        if asked:
            _log.warning("parity_breach_acted", on_breach=action, asked=asked, message=row.message)
            if self.wake is not None:
                self.wake()
