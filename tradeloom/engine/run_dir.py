"""The run directory: made or checked before a run writes anything, and held while it runs.

A run never overwrites a file it did not write. ``--out DIR`` (or the default
``runs/<name>-<mode>`` of a paper or live run) is used only when it is new, empty, or
holds a run: a backtest needs a new or empty folder; a paper or live run continues the
run its journal holds (whose strategy and mode the runner checks). Anything else in the
folder is refused, naming what is there. A backtest holds ``RUN_DIR/live.pid`` locked
while it runs, as a paper or live run does, so a second process on the same folder is
refused naming the first one's pid.
"""

from __future__ import annotations

import errno
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from tradeloom.engine.control_files import PID_FILE
from tradeloom.engine.control_inbox import ControlInbox
from tradeloom.errors import UserError
from tradeloom.files.writing import check_folder
from tradeloom.journal.location import SQLITE_FILE, journal_path
from tradeloom.journal.tail import tail_path
from tradeloom.runtime.retrying import RetriesExhausted

__all__ = ["RUN_OWNED", "check_live_run_dir", "environment_fault", "open_run_dir", "stamped"]

_TABLES = ("equity", "orders", "fills", "trades", "positions")
"""The run's tables, each a CSV or a Parquet file (``outputs.tables``)."""

RUN_OWNED = frozenset(
    {
        *(f"{table}.{kind}" for table in _TABLES for kind in ("csv", "parquet")),
        "strategy.yaml",
        "metrics.json",
        "bars.parquet",
        "features.parquet",
        "monitoring.parquet",
        "book.parquet",
        "sent.mark",
        "parity",
        "swapped",  # tradeloom.live.lifecycle.model_swap.SWAPPED_DIR: the swapped-in models
        "journal.sqlite",
        "journal.sqlite-wal",
        "journal.sqlite-shm",
        "journal.sqlite-journal",
        "journal.json",
        "folder.key",
        "live.pid",
        "KILL",
        "control",
        "models",
        "strategies",
        "report.html",
    }
)
"""What a run writes into its directory; a folder holding only these holds a run."""

_SHOWN = 5
_ENVIRONMENT_ERRNOS = frozenset(
    {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO}
)
_SQLITE_FAULTS = (
    "database or disk is full",
    "attempt to write a readonly database",
    "disk i/o error",
    "unable to open database file",
)


def stamped(name: str) -> str:
    """Return the name of a new run of strategy ``name``: ``<name>-<UTC time>``."""
    return f"{name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def open_run_dir(
    name: str, out: Path | None, *, root: Path = Path("runs"), option: str = "--out"
) -> tuple[Path, ControlInbox]:
    """Create (or check) a backtest's run directory and lock it for this process.

    ``out`` is used as given when it is new or empty; otherwise ``runs/<name>-<UTC
    time>`` is created, with a suffix if that exists. The lock is ``RUN_DIR/live.pid``,
    as a paper or live run holds it: release it with ``release_pid()`` when done.
    ``option`` names ``out`` in messages (the Python API's argument: ``out``).

    Returns:
        The directory and its claimed lock.

    Raises:
        UserError: ``out`` is a file, holds a run already, or holds other files.
        RunDirBusy: Another process holds the directory (naming its pid).
    """
    if out is None:
        base = root / stamped(name)
        path, n = base, 1
        while path.exists():
            n += 1
            path = Path(f"{base}-{n}")
        path.mkdir(parents=True)
        lock = ControlInbox(path)
        lock.claim_pid()
        return path, lock
    check_folder(out, option)  # a file, a device, a dangling link: one line
    held = journal_path(out)
    if held.exists():
        raise UserError(f"{option} {out}: already holds a run ({held.name}); give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    lock = ControlInbox(out)
    lock.claim_pid()  # a second process on this folder is refused here, naming the first
    found = [entry for entry in _entries(out) if entry != PID_FILE]
    if found:
        lock.release_pid()
        raise UserError(
            f"{option} {out}: holds files this run did not write ({_names(found)}); a run "
            "never overwrites them: give an empty or new folder"
        )
    return out, lock


def check_live_run_dir(run_dir: Path, *, given: bool) -> None:
    """Refuse a paper or live run directory that holds anything but a run.

    Args:
        run_dir: The directory (``--out``, or the default one).
        given: Whether the user named it with ``--out`` (the message says so).

    Raises:
        UserError: It is empty-named or a file, or it has no journal and holds files.
    """
    label = f"--out {run_dir}" if given else str(run_dir)
    if given:
        _check_out(run_dir)
    elif run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{label}: is a file; give a folder with --out")
    if journal_path(run_dir).exists():
        return  # a run: the runner checks it is this strategy's, in this mode
    record = tail_path(run_dir / SQLITE_FILE)
    if record.exists():  # a journal ended here: its run sent orders that no journal names
        raise UserError(
            f"{label}: holds {record.name}, the tail record of a journal that is not there "
            f"({SQLITE_FILE} was moved or deleted): what its run sent is unknown without it; "
            "put it back, or give a new folder"
        )
    found = [name for name in _entries(run_dir) if name not in RUN_OWNED]
    if found:
        raise UserError(
            f"{label}: holds files that are not a run's ({_names(found)}); a run never "
            "overwrites them: give an empty or new folder"
        )


def environment_fault(exc: BaseException) -> str | None:
    """Return one line naming an environment fault behind ``exc``, or None.

    A read-only or full filesystem, a missing permission or an I/O error, met while
    writing the run directory or its journal, is the machine's problem, not a bug:
    the CLI reports it in one line (exit 1) and keeps the traceback for the log file.
    So is an exchange that refuses the account's keys, or cannot be reached, at start-up.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RetriesExhausted):
            return None  # says already which read gave up, after how many attempts
        exchange = _exchange_fault(current)
        if exchange is not None:
            return exchange
        if isinstance(current, OSError) and current.errno in _ENVIRONMENT_ERRNOS:
            where = f" {current.filename}" if current.filename else ""
            return f"cannot write{where}: {current.strerror or current}"
        if isinstance(current, sqlite3.OperationalError):
            text = str(current)
            if any(fault in text.lower() for fault in _SQLITE_FAULTS):
                return (
                    f"the journal cannot be written ({text}): nothing was sent that the "
                    "journal had not recorded first; free disk space and run the same command "
                    "to continue"
                )
        current = current.__cause__ or current.__context__
    return None


def _exchange_fault(exc: BaseException) -> str | None:
    # told by ccxt's class names, so that this module needs no ccxt import
    if not type(exc).__module__.startswith("ccxt"):
        return None
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = " ".join(str(exc).split())
    if names & {"AuthenticationError", "PermissionDenied", "AccountSuspended"}:
        return (
            f"the exchange refused the account's API key or secret ({text}); check the "
            "values of the environment variables the strategy file's keys name"
        )
    if "NetworkError" in names:
        return f"the exchange cannot be reached ({type(exc).__name__}: {text}); try again later"
    return None


def _check_out(out: Path) -> None:
    # An empty --out never reaches here: the CLI refuses it (Path("") would be ".").
    check_folder(out, "--out")  # a file, a device, a dangling link: one line


def _entries(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in folder.iterdir())
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return [folder.name]


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
