"""The kill switch's mailbox: how ``tradeloom kill`` and ``resume`` reach a running run.

The running process owns the journal; no other process writes it. A command asks
instead, through files in the run directory, and wakes the process with a signal:

- ``RUN_DIR/control/<time_ns>-kill.json``, ``<time_ns>-flatten.json``,
  ``<time_ns>-resume.json``, ``<time_ns>-swap.json``, ``<time_ns>-promote.json`` and
  ``<time_ns>-rollback.json``: one request each, written atomically (a temporary file,
  then `os.replace`) by `request` (`request_kill`, `request_flatten` and
  `request_resume` name its actions), `request_swap` (a saved model to decide from the
  next bar on, `tradeloom.live.lifecycle.model_swap`) and `request_promote` / `request_rollback`
  (a challenger's promotion, a canary's rollback: `tradeloom.live.lifecycle.canary`);
  ``<time_ns>-refused.json``: a command a chat refused to a stranger, for the run to
  journal (`request_refused`, ``control_refused``). A request written while no process
  runs waits for the next start.
- ``RUN_DIR/live.pid``: the pid of the process running the directory, held under an
  exclusive `fcntl.flock` for its lifetime (`ControlInbox.claim_pid`). A command sends
  SIGUSR2 ("read your control files now") only to a pid that is alive *and* holds that
  lock, so a stale file whose pid the system has given to another program is never
  signalled (SIGUSR2 would terminate most programs).
- ``RUN_DIR/KILL``: the operator's switch (``touch RUN_DIR/KILL``). While it exists,
  every `ControlInbox.pending` call returns a kill request and resume is refused; it is
  never consumed: the run stays halted until the operator deletes it and resumes.
- SIGUSR1 sent to the running process is a kill request too (``by: "signal"``).

Each request names who asked (``by``): ``cli`` (``tradeloom kill``, ``resume``),
``console`` (a browser's session), ``api`` (a token), ``signal`` or ``file``; the
runner journals it so (``control_request``).

The kill switch never depends on the journal: with a process running the directory
(its pid file locked), a request is delivered whether or not the journal can be read
here (damaged, another format, a PostgreSQL journal whose URL's variable is not set
in this shell); and when ``control/`` cannot be written, a kill goes by SIGUSR1. The
journal is read only to answer: a kill of a run the kill switch holds halted says
"already halted at ..." (`Delivery.already`), and so does a resume of an active run.

The runner acts on a request in two phases: it journals and carries out each request of
`ControlInbox.pending`, then calls `ControlInbox.done`, which moves the file to
``control/done/``. A crash in between leaves the file, and the request is carried out
again at the restart. That is harmless by construction: a kill cancels orders that are
no longer open and halts a halted run; a flatten (a kill, then market orders closing
every position at the next bar) closes only what is still held; a resume of an active
run changes nothing; and requests are replayed in time order, so a later request still
wins. A request may carry an idempotency key (`ControlRequest.key`: a chat's
``<kind>:<chat>:<update id>``): the run journals the key with it, a restart folds the
journaled keys, and a request of a key already journaled is done without being carried
out or journaled again, so a sender that writes a request again after a crash (before it
saved that it had written it) acts once.

This module is the senders' side (`request` and the requests named for their actions,
`latch_request`, `request_refused`); the files both sides read are
`tradeloom.engine.control_files`' and the running process's side is
`tradeloom.engine.control_inbox.ControlInbox`. Every name of ``__all__`` is importable
from here.

POSIX only (signals, `fcntl`).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from tradeloom.engine.control_files import (
    _REQUEST_NAME,
    ACTIONS,
    CONTROL_DIR,
    KILL_FILE,
    PID_FILE,
    SESSION_ACTIONS,
    Action,
    ControlRequest,
    _os_error,
    _write_request,
    running_pid,
)
from tradeloom.engine.control_inbox import ControlInbox, RunDirBusy
from tradeloom.engine.reasons import REASON_LIMIT, escaped, reason_problem
from tradeloom.errors import UserError
from tradeloom.journal import (
    JournalError,
    TradingStateChanged,
    journal_path,
    read_events,
    read_info,
)
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "ACTIONS",
    "CONTROL_DIR",
    "KILL_FILE",
    "PID_FILE",
    "SESSION_ACTIONS",
    "Action",
    "ControlInbox",
    "ControlRequest",
    "Delivery",
    "KillFileEngaged",
    "Origin",
    "RunDirBusy",
    "controllable_mode",
    "latch_request",
    "request",
    "request_flatten",
    "request_kill",
    "request_promote",
    "request_refused",
    "request_resume",
    "request_rollback",
    "request_swap",
    "running_pid",
]

Origin = Literal["cli", "console", "api"]
"""Who sends a request through `request`: the command line, a browser's console
session, or the HTTP API with a token; a chat's control names its sender besides
(``telegram:<user id>``, `tradeloom.live.chat_control`)."""

_KILL_CODE = "KILL_SWITCH"
"""The code of the kill switch's halt (`tradeloom.core.codes.KILL_SWITCH`'s name)."""


@dataclass(frozen=True)
class Delivery:
    """What became of a request sent by `request`.

    Attributes:
        action: The request's action.
        run_dir: The run directory.
        path: The request file written; None when ``control/`` could not be written and
            the kill went by SIGUSR1 (`unwritten`).
        pid: The process running the directory, or None when none is.
        signalled: Whether that process was sent SIGUSR2 (SIGUSR1 with `unwritten`);
            False with a pid when the signal was not permitted (another user's
            process), which then reads the request at its next check.
        already: What held already when it was asked, read from the journal: a kill of
            a run the kill switch holds halted (``halted at ... by the kill switch
            (...)``), a resume of an active run (``active``); None: the request changes
            the run (or the journal could not tell).
        note: What else the operator should know (the journal cannot be read here;
            a resume of a run halted by a rule that a resume does not lift).
        unwritten: Why ``control/`` could not be written, when the kill went by SIGUSR1.
    """

    action: Action
    run_dir: Path
    path: Path | None
    pid: int | None
    signalled: bool
    already: str | None = None
    note: str | None = None
    unwritten: str | None = None

    def describe(self) -> str:
        """Return one line for the operator saying what happened."""
        line = self._what()
        return line if self.note is None else f"{line} ({self.note})"

    def _what(self) -> str:
        if self.unwritten is not None:
            line = (
                f"{self.action} could not be written ({self.unwritten}): sent SIGUSR1, a "
                f"kill; the running process (pid {self.pid}) will cancel its orders and halt"
            )
            if self.action == "flatten":
                line += "; it does not flatten: close the positions at the venue"
            return line
        if self.already is not None:
            if self.pid is None:
                then = (
                    f"no process is running in {self.run_dir}: the request is journaled "
                    "when it next starts"
                )
            elif not self.signalled:
                then = f"the running process (pid {self.pid}) reads {self.path} at its next check"
            else:
                then = (
                    f"the running process (pid {self.pid}) journals the request; nothing "
                    "else changes"
                )
            return f"already {self.already}; {then}"
        if self.pid is None:
            when = {"resume": "applied", "kill": "latched", "flatten": "latched"}.get(
                self.action, "checked and applied"
            )
            return (
                f"no process is running in {self.run_dir}: "
                f"the {self.action} is {when} when it next starts"
            )
        if not self.signalled:
            return (
                f"{self.action} requested; the running process (pid {self.pid}) could not be "
                f"signalled (permission denied): it reads {self.path} at its next check"
            )
        if self.action == "kill":
            return (
                f"kill requested; the running process (pid {self.pid}) will cancel its orders "
                "and halt"
            )
        if self.action == "flatten":
            return (
                f"kill and flatten requested; the running process (pid {self.pid}) will cancel "
                "its orders, halt, and close every position with market orders at the next bar"
            )
        if self.action == "swap":
            return (
                f"swap requested; the running process (pid {self.pid}) checks the model and "
                "swaps it in at the next bar boundary (model_swapped or model_swap_refused "
                "in its journal)"
            )
        if self.action in ("promote", "rollback"):
            return (
                f"{self.action} requested; the running process (pid {self.pid}) carries it "
                "out at the next bar boundary (canary_started, model_swapped, canary_passed, "
                "canary_rolled_back or promotion_rolled_back, or model_swap_refused with why, "
                "in its journal)"
            )
        return f"resume requested; the running process (pid {self.pid}) will resume trading"


class KillFileEngaged(UserError):
    """Resume was asked while the operator's ``RUN_DIR/KILL`` file exists."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(
            f"resume refused: {run_dir / KILL_FILE} exists; delete it first "
            "(the run stays halted while it exists)"
        )


def controllable_mode(run_dir: Path) -> Literal["paper", "live"]:
    """Return the mode of a paper or live run directory.

    Args:
        run_dir: The run directory, holding ``journal.sqlite`` (or ``journal.json``).

    Raises:
        UserError: The directory is missing, holds no readable journal, or is a
            backtest run (which has no kill switch).
    """
    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such run directory")
    journal = journal_path(run_dir)
    if not run_dir.is_dir() or not os.path.lexists(journal):
        raise UserError(f"{run_dir}: not a run directory (no journal.sqlite)")
    mode = _started_mode(journal)
    if mode == "backtest":
        raise UserError(f"{run_dir} is a backtest run; only paper and live runs have a kill switch")
    if mode not in ("paper", "live"):
        raise UserError(f"{journal}: the run was started in mode {mode!r}; expected paper or live")
    return mode


def request(
    run_dir: Path, action: Action, reason: str, *, by: Origin | str = "cli", key: str = ""
) -> Delivery:
    """Ask the run in ``run_dir`` to kill, flatten or resume.

    ``kill``: cancel every open order and halt (latched until a resume). ``flatten``:
    kill, then at the next bar send a market order closing each position
    (``EXIT_FLATTEN``), through the run's risk engine and venue as any exit.
    ``resume``: leave the halt the kill switch put the run in.

    The request is written to ``control/`` first, so it is latched even when no
    process runs; a running process is then woken with SIGUSR2. With a process
    running, the journal is not needed: a request is delivered even when the journal
    cannot be read here, and a kill whose file cannot be written goes by SIGUSR1. A
    request that finds done what it asks (a kill of a run the kill switch holds
    halted, a resume of an active run) is delivered and journaled all the same, and
    `Delivery.already` says so.

    Args:
        run_dir: A paper or live run directory.
        action: ``kill``, ``flatten`` or ``resume``.
        reason: Why, for the journal.
        by: Who asks (`Origin`, or ``telegram:<user id>``), for the journal.
        key: The request's idempotency key ('' for none: `ControlRequest.key`); a
            request of a key the run journaled already is done without a second answer.

    Raises:
        ValueError: ``reason`` is not one line of plain text
            (`tradeloom.engine.reasons.reason_problem`).
        UserError: ``run_dir`` is not a paper or live run directory (a backtest's; or
            its journal cannot be read, and no process that takes requests runs it),
            or the request can be neither written nor signalled.
        KillFileEngaged: A resume while ``RUN_DIR/KILL`` exists.
    """
    if action == "swap":
        raise ValueError("a swap names its model: send it with request_swap")
    if action in ("promote", "rollback", "refused"):
        raise ValueError(f"send a {action} with request_{action}")
    problem = reason_problem(reason)
    if problem is not None:
        raise ValueError(f"reason: {problem}")
    pid = running_pid(run_dir) if run_dir.is_dir() else None
    try:
        controllable_mode(run_dir)
        unread = None
    except JournalError as exc:  # what runs the folder does not need the journal
        if pid is None:
            raise JournalError(
                f"{exc}; no process is running in {run_dir}, so nothing trades there: "
                "nothing was latched"
            ) from None
        if not _takes_requests(pid):
            raise JournalError(
                f"{exc}; the process running {run_dir} (pid {pid}) takes no requests (a "
                "backtest?): nothing was sent"
            ) from None
        unread = f"the journal cannot be read here: {exc}"
    if action == "resume" and os.path.lexists(run_dir / KILL_FILE):
        raise KillFileEngaged(run_dir)
    already, note = (None, unread) if unread else _standing(run_dir, action)
    try:
        path = _write_request(run_dir, action, reason, by=by, extra={"key": key} if key else None)
    except OSError as exc:
        why = _os_error(exc)
        if pid is None or action == "resume":
            where = run_dir / CONTROL_DIR
            raise UserError(f"{where}: the request cannot be written ({why})") from None
        return _signal_kill(run_dir, action, pid, why)
    delivery = _deliver(run_dir, path, action)
    return replace(delivery, already=already, note=note)


def request_kill(run_dir: Path, reason: str) -> Delivery:
    """Ask the run in ``run_dir`` to cancel every open order and halt (`request`)."""
    return request(run_dir, "kill", reason)


def request_flatten(run_dir: Path, reason: str) -> Delivery:
    """Ask the run in ``run_dir`` to kill and close every position (`request`)."""
    return request(run_dir, "flatten", reason)


def request_resume(run_dir: Path, reason: str) -> Delivery:
    """Ask the run in ``run_dir`` to leave its kill switch's halt (`request`)."""
    return request(run_dir, "resume", reason)


def request_swap(
    run_dir: Path,
    model: Path,
    fold: int | None,
    reason: str,
    *,
    by: Origin = "cli",
    strategy: str | None = None,
) -> Delivery:
    """Ask the run in ``run_dir`` to decide with another saved model from the next bar on.

    The running process checks the model against its strategy and swaps it in at a bar
    boundary, or refuses it and trades on with its own (`tradeloom.live.lifecycle.model_swap`);
    either is journaled. Written and delivered as `request` writes a kill.

    Args:
        run_dir: A paper or live run directory.
        model: A run directory whose ``models/index.json`` lists the saved folds.
        fold: The fold to take (None: the latest).
        reason: Why, for the journal.
        by: Who asks (`Origin`).
        strategy: A portfolio file's run: the strategy whose model to swap.

    Raises:
        ValueError: ``reason`` is not one line of plain text.
        UserError: ``run_dir`` is not a paper or live run directory, or the request
            cannot be written.
    """
    problem = reason_problem(reason)
    if problem is not None:
        raise ValueError(f"reason: {problem}")
    controllable_mode(run_dir)
    extra: dict[str, Any] = {"model": str(model.absolute()), "fold": fold}
    if strategy is not None:
        extra["strategy"] = strategy
    try:
        path = _write_request(run_dir, "swap", reason, by=by, extra=extra)
    except OSError as exc:
        where = run_dir / CONTROL_DIR
        raise UserError(f"{where}: the request cannot be written ({_os_error(exc)})") from None
    return _deliver(run_dir, path, "swap")


def request_promote(run_dir: Path, challenger: str, reason: str, *, by: Origin = "cli") -> Delivery:
    """Ask the run in ``run_dir`` to promote ``challenger``: its model takes the
    champion's place at the next bar boundary, through its canary when its gate declares
    one (`tradeloom.live.lifecycle.canary`); a canary's own candidate becomes the full champion at
    once. Written and delivered as `request` writes a kill.

    Raises:
        ValueError: ``reason`` is not one line of plain text.
        UserError: ``run_dir`` is not a paper or live run directory, or the request
            cannot be written.
    """
    return _ask(run_dir, "promote", reason, by, {"challenger": challenger})


def request_rollback(run_dir: Path, reason: str, *, by: Origin = "cli") -> Delivery:
    """Ask the run in ``run_dir`` to roll its canary back: the champion's model decides
    again, at its full size, from the next bar boundary (`tradeloom.live.lifecycle.canary`).

    Raises:
        ValueError: ``reason`` is not one line of plain text.
        UserError: ``run_dir`` is not a paper or live run directory, or the request
            cannot be written.
    """
    return _ask(run_dir, "rollback", reason, by, {})


def _ask(run_dir: Path, action: Action, reason: str, by: Origin, extra: dict[str, Any]) -> Delivery:
    problem = reason_problem(reason)
    if problem is not None:
        raise ValueError(f"reason: {problem}")
    controllable_mode(run_dir)
    try:
        path = _write_request(run_dir, action, reason, by=by, extra=extra)
    except OSError as exc:
        where = run_dir / CONTROL_DIR
        raise UserError(f"{where}: the request cannot be written ({_os_error(exc)})") from None
    return _deliver(run_dir, path, action)


def request_refused(
    run_dir: Path, command: str, reason: str, *, by: str, key: str, dropped: int = 0
) -> Path:
    """Ask the run in ``run_dir`` to journal a command it refused to ``by``
    (``control_refused``, for audit); return the request file written.

    Nobody is signalled (the run journals it at its next check, or when it next starts):
    a refusal changes nothing. ``command`` is kept escaped and cut to `REASON_LIMIT`
    characters, so anything a stranger writes is one line of plain text.

    Args:
        run_dir: A paper or live run directory.
        command: What the sender wrote.
        reason: Why it was refused (``not on the allow-list``).
        by: Who sent it (``telegram:<user id>``).
        key: Its idempotency key (`ControlRequest.key`): journaled once however often asked.
        dropped: How many of the sender's refusals were not asked to journal since its
            previous one (a flood bound's).

    Raises:
        ValueError: ``reason`` is not one line of plain text, or ``dropped`` is negative.
        UserError: ``run_dir`` is not a paper or live run directory and no process that
            takes requests runs it, or the request cannot be written.
    """
    problem = reason_problem(reason)
    if problem is not None:
        raise ValueError(f"reason: {problem}")
    if dropped < 0:
        raise ValueError(f"dropped: expected a count, was {dropped}")
    pid = running_pid(run_dir) if run_dir.is_dir() else None
    if pid is None or not _takes_requests(pid):  # a run starting may have no journal yet
        controllable_mode(run_dir)
    extra: dict[str, Any] = {"command": _cut(command), "key": key, "dropped": dropped}
    try:
        return _write_request(run_dir, "refused", reason, by=by, extra=extra)
    except OSError as exc:
        where = run_dir / CONTROL_DIR
        raise UserError(f"{where}: the request cannot be written ({_os_error(exc)})") from None


def _cut(text: str) -> str:
    """Return ``text`` escaped to one line and cut to `REASON_LIMIT` characters."""
    line = escaped(text)
    return line if len(line) <= REASON_LIMIT else line[: REASON_LIMIT - 3] + "..."


def latch_request(run_dir: Path, action: Action, reason: str, *, by: str) -> Path:
    """Write a request of the running process to itself into ``control/``; return its path.

    For a part of the run that acts as an operator would (the live parity monitor on a
    breach, ``live.parity.on_breach``): the request is on disk, fsync'd, before the
    process journals why it asked, and the runner carries it out at its next check as it
    carries out `request`'s (journaled ``control_request`` with ``by``, then done), so a
    process killed in between carries it out when it restarts, once. Nobody is signalled:
    the caller wakes its own runner.

    Raises:
        ValueError: ``reason`` is not one line of plain text.
        OSError: ``control/`` cannot be written.
    """
    problem = reason_problem(reason)
    if problem is not None:
        raise ValueError(f"reason: {problem}")
    return _write_request(run_dir, action, reason, by=by)


def _standing(run_dir: Path, action: Action) -> tuple[str | None, str | None]:
    """Return what holds already for ``action`` (`Delivery.already`) and a note.

    Read from the journal's last trading state change, and only while no earlier
    request waits in ``control/`` (it may change the state before this one is read).
    """
    if action == "flatten" or _waiting(run_dir):
        return None, None
    try:
        changes = list(read_events(journal_path(run_dir), [TradingStateChanged]))
    except JournalError as exc:
        return None, f"the journal cannot be read here: {exc}"
    last = changes[-1] if changes else None
    assert last is None or isinstance(last, TradingStateChanged)
    killed = last is not None and last.state == "HALTED" and last.code == _KILL_CODE
    if action == "kill":
        if not killed:
            return None, None
        assert last is not None
        return f"halted at {_when(last)} by the kill switch ({last.message})", None
    if last is None:
        return "active (the kill switch was never engaged)", None
    if last.state == "ACTIVE":
        return f"active since {_when(last)} ({last.code}: {last.message})", None
    if killed:
        return None, None
    return None, (
        f"the run is {last.state} since {_when(last)} by {last.code} ({last.message}), "
        "which a resume does not lift"
    )


def _waiting(run_dir: Path) -> bool:
    try:
        names = os.listdir(run_dir / CONTROL_DIR)
    except OSError:
        return False
    return any(_REQUEST_NAME.match(name) for name in names)


def _when(change: TradingStateChanged) -> str:
    stamp = change.at if not pd.isna(change.at) else change.timestamp
    return str(pd.Timestamp(stamp).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _signal_kill(run_dir: Path, action: Action, pid: int, why: str) -> Delivery:
    """Send SIGUSR1 (a kill the process journals itself) when no request can be written."""
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        raise UserError(
            f"{run_dir / CONTROL_DIR}: the request cannot be written ({why}), and the "
            f"process (pid {pid}) ended meanwhile"
        ) from None
    except PermissionError:
        raise UserError(
            f"{run_dir / CONTROL_DIR}: the request cannot be written ({why}), and the "
            f"running process (pid {pid}) cannot be signalled (permission denied)"
        ) from None
    return Delivery(action, run_dir, None, pid, True, unwritten=why)


def _takes_requests(pid: int) -> bool:
    """Whether ``pid`` catches SIGUSR2, as a paper or live run does (a backtest holds the
    pid file too, and SIGUSR2 would end it); Linux's ``/proc`` tells, elsewhere yes."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGUSR2 - 1) & 1)
    return True


def _deliver(run_dir: Path, path: Path, action: Action) -> Delivery:
    pid = running_pid(run_dir)
    if pid is None:
        return Delivery(action, run_dir, path, None, False)
    try:
        os.kill(pid, signal.SIGUSR2)
    except ProcessLookupError:
        return Delivery(action, run_dir, path, None, False)
    except PermissionError:
        return Delivery(action, run_dir, path, pid, False)
    return Delivery(action, run_dir, path, pid, True)


def _started_mode(journal: Path) -> object:
    # the journal's meta says which run it is; JournalError is one line, exit 2
    return read_info(journal).identity.mode
