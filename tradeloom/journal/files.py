"""Every file-level access to a SQLite journal: one descriptor per file, never closed early.

SQLite keeps its locks on a database as POSIX (``fcntl``) record locks, and POSIX drops
*all* of a process's locks on a file when the process closes *any* descriptor on it. In
WAL mode each connection holds a SHARED lock on the journal file for its whole life: it
tells every other process "someone still has this open". A process that opened the
journal file with ``os.open`` (to fsync it, to read its header, to hash or copy it) and
closed that descriptor while one of its connections was open dropped that lock, silently.
The next reader in another process that closed (the ``sqlite3`` shell, pandas, a
console) then found itself the last one, checkpointed the write-ahead log, and deleted
``-wal`` and ``-shm``; the writer went on appending to a log no one could see, and every
row after that read was lost at the writer's end.

So this module holds, per journal file (its device and inode), one descriptor opened
before or with the first connection this process makes to it and closed only after the
last of them is closed (`JournalConnection.close`). Reading the file's header and
fsyncing it (and its write-ahead log) go through that descriptor (``os.pread``,
``os.fsync``); nothing here closes a descriptor on a journal file while a connection of
this process may be open on it. Code elsewhere never opens a journal file itself: it
calls `hold` and `connect` (`tradeloom.journal.sqlite.connect`), or reads through SQLite.

The ``-wal`` and ``-shm`` files: SQLite keeps the WAL's locks in ``-shm``, which nothing
here opens; the ``-wal`` file is fsync'd through a descriptor held the same way.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

from tradeloom.files.reading import NotAFile, UnreadableFile, file_kind

__all__ = ["HeldFile", "JournalConnection", "connect", "held_count", "hold"]

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)

_HELD: dict[tuple[int, int], HeldFile] = {}
"""The journal files this process holds a descriptor on, by (device, inode)."""

_GUARD = threading.Lock()


class HeldFile:
    """A descriptor on a journal file, shared by every connection this process has on it.

    Attributes:
        path: The file, as it was first held.
        users: Connections (and other holders) not yet released.
    """

    def __init__(self, path: Path, fd: int, key: tuple[int, int]) -> None:
        self.path = path
        self.users = 1
        self._key = key
        self._fds = [fd]
        self._wal: int | None = None
        self._wal_key: tuple[int, int] | None = None

    @property
    def fd(self) -> int:
        """The descriptor reads and fsyncs go through."""
        return self._fds[0]

    def head(self, size: int) -> bytes:
        """Return the file's first ``size`` bytes (fewer when it is shorter)."""
        try:
            return os.pread(self.fd, size, 0)
        except OSError as exc:
            raise UnreadableFile(f"{self.path}: cannot read: {exc.strerror or exc}") from None

    def sync(self) -> None:
        """fsync the journal's write-ahead log (when it has one), then the file itself."""
        wal = self._wal_fd()
        if wal is not None:
            os.fsync(wal)
        os.fsync(self.fd)

    def _wal_fd(self) -> int | None:
        name = self.path.with_name(self.path.name + "-wal")
        try:
            info = os.stat(name)
        except FileNotFoundError:
            return None
        key = (info.st_dev, info.st_ino)
        with _GUARD:
            if self._wal is not None and self._wal_key == key:
                return self._wal
            try:
                fd = os.open(name, _FLAGS)
            except FileNotFoundError:
                return None
            found = os.fstat(fd)
            # a log made anew is fsync'd through its own descriptor; the older one stays
            # open with the others until the file is released (closing none early)
            self._fds.append(fd)
            self._wal, self._wal_key = fd, (found.st_dev, found.st_ino)
            return fd

    def release(self) -> None:
        """Drop one user; the last one closes the descriptors (its connection is closed)."""
        with _GUARD:
            self.users -= 1
            if self.users > 0:
                return
            if _HELD.get(self._key) is self:
                del _HELD[self._key]
            fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)


def hold(path: Path, what: str = "a journal file") -> HeldFile:
    """Return this process's descriptor on the journal file ``path``, one more user counted.

    A file this process holds already (by device and inode) is not opened again. Only
    a regular file is held (a FIFO or a device is refused before anything blocks).

    Raises:
        NotAFile: ``path`` is missing or not a regular file.
        UnreadableFile: It cannot be opened.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise NotAFile(f"{path}: no such file ({what})") from None
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read: {exc.strerror or exc}") from None
    with _GUARD:
        held = _live(_HELD.get((info.st_dev, info.st_ino)))
        if held is not None:
            held.users += 1
            return held
    if not stat.S_ISREG(info.st_mode):
        raise NotAFile(
            f"{path}: is {file_kind(info.st_mode)}, not a regular file ({what})", info.st_mode
        )
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise NotAFile(f"{path}: no such file ({what})") from None
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read: {exc.strerror or exc}") from None
    opened = os.fstat(fd)
    key = (opened.st_dev, opened.st_ino)
    with _GUARD:
        held = _live(_HELD.get(key))
        if held is not None:  # held by another thread meanwhile: keep this one open too
            held.users += 1
            held._fds.append(fd)
            return held
        if stat.S_ISREG(opened.st_mode):
            held = _HELD[key] = HeldFile(path, fd, key)
            return held
    os.close(fd)  # replaced by a FIFO or a device since the stat: never a held file
    raise NotAFile(
        f"{path}: is {file_kind(opened.st_mode)}, not a regular file ({what})", opened.st_mode
    )


def _live(held: HeldFile | None) -> HeldFile | None:
    """``held`` unless its file was deleted (a connection never closed held it: its inode
    may now be another file's); a deleted one is forgotten, its descriptors left open."""
    if held is None:
        return None
    if os.fstat(held.fd).st_nlink > 0:
        return held
    del _HELD[held._key]
    return None


def held_count() -> int:
    """Return how many journal files this process holds a descriptor on (for tests)."""
    with _GUARD:
        return len(_HELD)


class JournalConnection(sqlite3.Connection):
    """A SQLite connection to a journal that releases its `HeldFile` after it closes."""

    held: HeldFile | None = None

    def close(self) -> None:
        """Close the connection, then release the journal file's descriptor."""
        try:
            super().close()
        finally:
            held, self.held = self.held, None
            if held is not None:
                held.release()


def connect(uri: str, held: HeldFile) -> JournalConnection:
    """Open ``uri`` (the journal ``held`` is on) as a `JournalConnection` that owns one of
    ``held``'s users (released when it closes; here when opening fails).

    Raises:
        sqlite3.Error: SQLite could not open it.
    """
    try:
        db: Any = sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            factory=JournalConnection,
        )
    except BaseException:
        held.release()
        raise
    db.held = held
    return db  # type: ignore[no-any-return]
