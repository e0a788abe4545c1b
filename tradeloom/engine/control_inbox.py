"""The control mailbox's running side: the process that runs a directory claims its pid
file, catches the signals that wake it, and reads its requests (`ControlInbox`).

What the mailbox promises, and who sends what, is told in `tradeloom.engine.control`; the
files both sides read are `tradeloom.engine.control_files`'.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from tradeloom.engine.control_files import (
    CONTROL_DIR,
    KILL_FILE,
    PID_FILE,
    ControlRequest,
    _alive,
    _os_error,
    _read_pid,
    _read_request,
    _same_file,
    _write_request,
)
from tradeloom.engine.reasons import escaped
from tradeloom.errors import UserError
from tradeloom.files.reading import UnreadableFile, read_bytes
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["ControlInbox", "RunDirBusy"]

_log = logger("tradeloom.engine.control")

_CLAIM_ATTEMPTS = 100
_CLAIM_RETRY_SECONDS = 0.01
_SignalHandler = Callable[[int, FrameType | None], Any] | int | None


class RunDirBusy(UserError):
    """Another live process holds the run directory."""

    def __init__(self, run_dir: Path, pid: int | None) -> None:
        self.pid = pid
        if pid is None:
            holder = f"another process (it holds the lock on {run_dir / PID_FILE})"
            remedy = ""
        else:
            holder = f"a running process (pid {pid})"
            remedy = f" (if no tradeloom process has that pid, delete {run_dir / PID_FILE})"
        super().__init__(
            f"{run_dir} is in use by {holder}: stop it first or use another run directory" + remedy
        )


class ControlInbox:
    """The running process's side: its pid file, its signals, and its requests.

    Start-up order matters: `install_signal_handlers` before `claim_pid` (once the pid
    file names this process, a SIGUSR2 without a handler would terminate it), then
    `pending` before the first bar, so requests written while nothing ran are acted on.
    Check `pending` when `wake` is set and at every bar close as well (a signal may not
    be permitted). Shut down in the reverse order: `release_pid`, then
    `restore_signal_handlers`.

    Args:
        run_dir: The run directory.

    Attributes:
        run_dir: The run directory.
        wake: Set when a request may be waiting; the caller clears it before reading
            `pending`.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.wake = threading.Event()
        self._control = run_dir / CONTROL_DIR
        self._pid_path = run_dir / PID_FILE
        self._kill_path = run_dir / KILL_FILE
        # as strings, for the two system calls of every tick's look (a Path's
        # conversion is two Python calls each time)
        self._control_name = os.fspath(self._control)
        self._kill_name = os.fspath(self._kill_path)
        self._pid_fd: int | None = None
        self._previous: dict[signal.Signals, _SignalHandler] = {}
        self._unsaved: list[ControlRequest] = []
        self._unreadable: str | None = None
        """Why ``control/`` could not be listed, as last warned (None: it could)."""

    def claim_pid(self) -> None:
        """Write this process's pid to ``RUN_DIR/live.pid`` and lock it until release.

        A pid file left by a process that is gone is replaced, as is one naming this
        process's pid but not locked by it.

        Raises:
            RunDirBusy: The file names another live process, or another process (or
                another inbox of this one) holds its lock.
        """
        if self._pid_fd is not None:
            return
        for _ in range(_CLAIM_ATTEMPTS):
            fd = os.open(self._pid_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                pid = _read_pid(self._pid_path)
                if pid is not None and _alive(pid):
                    raise RunDirBusy(self.run_dir, pid) from None
                # A command probing the lock, or a process between its lock and its write.
                time.sleep(_CLAIM_RETRY_SECONDS)
                continue
            if not _same_file(fd, self._pid_path):  # released and deleted meanwhile
                os.close(fd)
                continue
            pid = _read_pid(self._pid_path)
            # Unlocked yet naming another live process: not ours to take over. Our own
            # pid is stale (a restarted container often gets its predecessor's pid).
            if pid is not None and pid != os.getpid() and _alive(pid):
                os.close(fd)
                raise RunDirBusy(self.run_dir, pid)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.fsync(fd)
            self._pid_fd = fd
            return
        raise RunDirBusy(self.run_dir, None)

    def release_pid(self) -> None:
        """Delete ``RUN_DIR/live.pid`` and drop its lock; nothing when not claimed."""
        fd, self._pid_fd = self._pid_fd, None
        if fd is None:
            return
        if _same_file(fd, self._pid_path):
            self._pid_path.unlink()
        os.close(fd)

    def install_signal_handlers(self) -> None:
        """Handle SIGUSR2 (set `wake`) and SIGUSR1 (a kill request, then `wake`).

        Raises:
            RuntimeError: Not called from the main thread.
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("ControlInbox.install_signal_handlers: call it from the main thread")
        if self._previous:
            return
        for signum in (signal.SIGUSR1, signal.SIGUSR2):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        """Put back the handlers `install_signal_handlers` replaced."""
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()

    def pending(self) -> list[ControlRequest]:
        """Return the requests not yet `done`, in the order they were asked.

        A request file that cannot be read as a request is logged and moved to
        ``control/rejected/``, as is a resume while ``RUN_DIR/KILL`` exists. While that
        file exists, a kill request (``by: "file"``) comes last on every call.
        """
        try:  # `os.path.lexists`, without its frame
            os.lstat(self._kill_name)
        except (OSError, ValueError):
            killed = False
        else:
            killed = True
        ordered: list[tuple[int, ControlRequest]] = (
            [(r.requested_at.value, r) for r in list(self._unsaved)] if self._unsaved else []
        )
        for path in self._request_files():
            try:
                request = _read_request(path)
            except ValueError as exc:
                self._reject(path, str(exc))
                continue
            if killed and request.action == "resume":
                self._reject(path, f"resume refused: {self._kill_path} exists")
                continue
            ordered.append((int(path.name.split("-", 1)[0]), request))
        requests = [r for _, r in sorted(ordered, key=lambda item: item[0])] if ordered else []
        if killed:
            requests.append(self._kill_file_request())
        return requests

    def name_of(self, request: ControlRequest) -> str:
        """Return the name ``request`` is journaled by, which a restart finds it by: its
        file's in ``control/``; '' for the ``RUN_DIR/KILL`` file (asked again at every
        check while it exists) and a signal's request held in memory."""
        if request.path is None or request.path.parent != self._control:
            return ""
        return request.path.name

    def done(self, request: ControlRequest) -> None:
        """Mark a request carried out: move its file to ``control/done/``.

        Call it only after the request is journaled. The ``RUN_DIR/KILL`` file is left
        where it is: it stays the operator's switch.
        """
        if request.path is None:
            with contextlib.suppress(ValueError):
                self._unsaved.remove(request)
            return
        if request.path.parent != self._control:
            return
        target = self._control / "done"
        target.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # already done
            os.replace(request.path, target / request.path.name)

    def _request_files(self) -> list[Path]:
        try:
            names = os.listdir(self._control_name)
        except FileNotFoundError:
            return []
        except OSError as exc:  # not a folder, no permission: a SIGUSR1 kill still works
            why = _os_error(exc)
            if why != self._unreadable:
                self._unreadable = why
                _log.warning("control_unreadable", error=why)
            return []
        self._unreadable = None
        if not names:  # a tick's look: nothing asked
            return []
        return [self._control / n for n in names if n.endswith(".json") and not n.startswith(".")]

    def _reject(self, path: Path, why: str) -> None:
        _log.warning("control_request_rejected", file=str(path), reason=why)
        target = self._control / "rejected"
        try:
            target.mkdir(exist_ok=True)
            os.replace(path, target / path.name)
        except OSError as exc:
            _log.warning("control_request_not_moved", file=str(path), error=str(exc))

    def _kill_file_request(self) -> ControlRequest:
        try:
            data = read_bytes(self._kill_path, "a kill switch file", limit=1 << 16)
            text = data.decode("utf-8", errors="replace").strip()
            mtime = self._kill_path.lstat().st_mtime_ns
        except (OSError, UnreadableFile):
            text, mtime = "", time.time_ns()
        reason = escaped(text.splitlines()[0]) if text else f"{self._kill_path} exists"
        return ControlRequest(
            action="kill",
            reason=reason,
            requested_at=pd.Timestamp(mtime, tz="UTC"),
            by="file",
            path=self._kill_path,
        )

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # A handler runs in the main thread between two bytecodes, maybe while that
        # thread holds `wake`'s lock or a log's lock; taking either here could deadlock
        # it, so the work is done in a thread of its own.
        threading.Thread(
            target=self._handle_signal, args=(signum,), name="tradeloom-control", daemon=True
        ).start()

    def _handle_signal(self, signum: int) -> None:
        if signum == signal.SIGUSR1:
            reason = f"signal {signal.Signals(signum).name}"
            try:
                _write_request(self.run_dir, "kill", reason, by="signal")
            except OSError as exc:
                _log.warning("control_request_not_written", reason=reason, error=str(exc))
                self._unsaved.append(
                    ControlRequest("kill", reason, pd.Timestamp.now(tz="UTC"), "signal", None)
                )
        self.wake.set()
