"""The control mailbox's files, which its senders and the running process both read.

A request is a file ``RUN_DIR/control/<time_ns>-<action>.json`` (`ACTIONS`), written
atomically (`_write_request`) and read back as a `ControlRequest` (`_read_request`, which
refuses a file that is not one); the process running the directory holds
``RUN_DIR/live.pid`` locked, which `running_pid` tests. What the mailbox promises, and
who sends what, is told in `tradeloom.engine.control`; the running process's side is
`tradeloom.engine.control_inbox.ControlInbox`.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from tradeloom.engine.reasons import reason_problem
from tradeloom.files.reading import UnreadableFile, read_json, read_text
from tradeloom.journal.durable import sync_folder
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "ACTIONS",
    "CONTROL_DIR",
    "KILL_FILE",
    "PID_FILE",
    "SESSION_ACTIONS",
    "Action",
    "ControlRequest",
    "running_pid",
]

CONTROL_DIR = "control"
"""The folder of request files; ``done/`` and ``rejected/`` below it."""
PID_FILE = "live.pid"
"""The pid of the process running the directory, locked while it runs."""
KILL_FILE = "KILL"
"""The operator's kill switch: halted while it exists, whatever its content."""

Action = Literal["kill", "flatten", "resume", "swap", "promote", "rollback", "refused"]
ACTIONS: tuple[Action, ...] = get_args(Action)
"""Every action a request may carry: its file's name ends in ``-<action>.json``."""
SESSION_ACTIONS: tuple[Action, ...] = ("kill", "flatten", "resume", "refused")
"""The kill switch's actions, which the running session answers itself, and ``refused``
(a command refused to a sender, journaled for audit, `request_refused`); each other
action is answered by the stage of the run that declares it
(`tradeloom.live.tick.services.Stage`)."""

_REQUEST_NAME = re.compile(rf"^(\d+)-({'|'.join(ACTIONS)})\.json$")


@dataclass(frozen=True)
class ControlRequest:
    """One request to a running run.

    Attributes:
        action: ``kill`` (cancel every open order and halt), ``flatten`` (kill, then
            close every position with market orders), ``resume``, ``swap`` (decide
            with the saved model `model` names from the next bar on), ``promote``
            (challenger `challenger`'s model in the champion's place, through its
            canary when it declares one; a canary's candidate: at once) or ``rollback``
            (the canary in progress ends, the champion's model back).
        reason: Why, as the operator gave it.
        requested_at: When it was asked (UTC).
        by: Who asked: ``cli``, ``console``, ``api`` (`Origin`), ``signal`` (SIGUSR1),
            ``file`` (``RUN_DIR/KILL``) or ``parity`` (the run's parity monitor on a
            breach, `latch_request`).
        path: The file behind the request; None for a SIGUSR1 kill that could not be
            written to disk (held in memory by the process that received it).
        model: A swap's model: a run directory whose ``models/index.json`` lists its
            folds (absolute), or '' for the other actions.
        fold: A swap's fold of that run (None: its latest).
        challenger: A promotion's challenger ('' for the other actions).
        strategy: A swap's portfolio file's strategy whose model to swap (None: the
            run's one strategy).
        key: The sender's idempotency key ('' for none): a chat's command is asked again
            under the same key after a crash, and the run carries out and journals one
            request of a key once (``control_request`` or ``control_refused``'s ``key``).
        command: A refusal's command text, as the sender wrote it (escaped, cut to
            `REASON_LIMIT` characters); '' for the other actions.
        dropped: A refusal's count of the sender's refusals not asked to journal since its
            previous one (the chat's flood bound); 0 for the other actions.
    """

    action: Action
    reason: str
    requested_at: pd.Timestamp
    by: str
    path: Path | None
    model: str = ""
    fold: int | None = None
    challenger: str = ""
    strategy: str | None = None
    key: str = ""
    command: str = ""
    dropped: int = 0


def _write_request(
    run_dir: Path, action: Action, reason: str, *, by: str, extra: dict[str, Any] | None = None
) -> Path:
    folder = run_dir / CONTROL_DIR
    folder.mkdir(exist_ok=True)
    ns = time.time_ns()
    while (folder / f"{ns}-{action}.json").exists():
        ns += 1
    path = folder / f"{ns}-{action}.json"
    payload = {
        "action": action,
        "reason": reason,
        "requested_at": _iso_ns(ns),
        "by": by,
        "pid": os.getpid(),
        "user": _user(),
        **(extra or {}),
    }
    temporary = folder / f".{path.name}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    sync_folder(folder)  # the rename itself survives a crash of the machine
    return path


def _iso_ns(ns: int) -> str:
    """Return the UTC time ``ns`` (ns since the epoch) as ``pd.Timestamp(ns, tz="UTC").
    isoformat()`` writes it, without importing pandas (`tradeloom kill` asks in a
    fraction of a second): the fraction's 9 digits, 6 when whole microseconds, none when
    whole seconds."""
    seconds, rest = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if rest:
        text += f".{rest // 1000:06d}" if rest % 1000 == 0 else f".{rest:09d}"
    return text + "+00:00"


def _read_request(path: Path) -> ControlRequest:
    match = _REQUEST_NAME.match(path.name)
    if match is None:
        names = [f"<time_ns>-{action}.json" for action in ACTIONS]
        raise ValueError(f"the name is not {', '.join(names[:-1])} or {names[-1]}")
    try:
        data = read_json(path, "a control request", limit=1 << 16)
    except UnreadableFile as exc:
        raise ValueError(f"not readable as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, was {type(data).__name__}")
    action = _text(data, "action")
    if action != match.group(2):
        raise ValueError(f"action: expected {match.group(2)!r} as the name says, was {action!r}")
    try:
        requested_at = pd.Timestamp(_text(data, "requested_at"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"requested_at: expected an ISO time, {exc}") from None
    if pd.isna(requested_at):
        raise ValueError("requested_at: expected an ISO time, was empty")
    requested_at = (
        requested_at.tz_localize("UTC")
        if requested_at.tzinfo is None
        else requested_at.tz_convert("UTC")
    )
    reason = _text(data, "reason")
    problem = reason_problem(reason)
    if problem is not None:
        raise ValueError(f"reason: {problem}")
    model, fold, strategy = "", None, None
    if action == "swap":
        model = _text(data, "model")
        fold = data.get("fold")
        if fold is not None and (isinstance(fold, bool) or not isinstance(fold, int) or fold < 0):
            raise ValueError(f"fold: expected a fold number or null, was {fold!r}")
        strategy = data.get("strategy")
        if strategy is not None and not isinstance(strategy, str):
            raise ValueError(f"strategy: expected a strategy's name or null, was {strategy!r}")
    challenger = _text(data, "challenger") if action == "promote" else ""
    key = data.get("key", "")
    if not isinstance(key, str):
        raise ValueError(f"key: expected a string, was {key!r}")
    command, dropped = "", 0
    if action == "refused":
        command = _text(data, "command")
        problem = reason_problem(command)
        if problem is not None:
            raise ValueError(f"command: {problem}")
        dropped = data.get("dropped", 0)
        if isinstance(dropped, bool) or not isinstance(dropped, int) or dropped < 0:
            raise ValueError(f"dropped: expected a count, was {dropped!r}")
    return ControlRequest(
        action=cast(Action, action),
        reason=reason,
        requested_at=requested_at,
        by=_text(data, "by"),
        path=path,
        model=model,
        fold=fold,
        challenger=challenger,
        strategy=strategy,
        key=key,
        command=command,
        dropped=dropped,
    )


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, was {value!r}")
    return value


def _os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return exc.strerror or str(exc)


def running_pid(run_dir: Path) -> int | None:
    """Return the pid of the process running ``run_dir`` (None: none is).

    A pid counts when it is alive and holds ``live.pid``'s lock; the lock is only
    tested (a shared lock tried and dropped at once), never kept.
    """
    path = run_dir / PID_FILE
    pid = _read_pid(path)
    if pid is None or not _alive(pid) or not _locked(path):
        return None
    return pid


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(read_text(path, "a pid file", limit=64).strip())
    except (UnreadableFile, ValueError):
        return None
    return pid if pid > 0 else None  # os.kill(0 or -n) would signal a process group


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except PermissionError:  # cannot tell: assume its owner holds it
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, named = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino)


def _user() -> str:
    try:
        return getpass.getuser() or ""
    except (KeyError, OSError):
        return ""
