"""Small files that must survive a crash: written aside, fsync'd, renamed into place,
and read back as JSON records that refuse damage."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tradeloom.journal.errors import JournalDamaged

__all__ = ["make_folder", "read_record", "replace_durably", "sync_folder"]

_MAX_BYTES = 4096
"""Largest record read back: a record holds a few short values."""

_T = TypeVar("_T")


def replace_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: all of it or none of it, on disk when this returns.

    The bytes go to ``<path>.tmp`` (never through a symlink), which is fsync'd and
    renamed over ``path``; the folder is fsync'd so that the rename itself survives.
    """
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    sync_folder(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``: `os.write` may write fewer than it was
    given (a signal, a full pipe, some file systems), and says how many it wrote."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def sync_folder(folder: Path) -> None:
    """fsync ``folder``: the names made, renamed or removed in it survive a crash of the
    machine (a file's own fsync keeps its bytes, not its name)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folder(folder: Path) -> None:
    """Make ``folder`` (and its parents), each new one's name fsync'd in its parent: a
    file made in it and fsync'd is found after a power loss."""
    if folder.is_dir():
        return
    make_folder(folder.parent)
    folder.mkdir(exist_ok=True)
    sync_folder(folder.parent)


def read_record(path: Path, what: str, parse: Callable[[Any], _T]) -> _T | None:
    """Return ``parse`` of the JSON record at ``path``; None when there is none.

    Args:
        path: The record.
        what: What it is, as the message names it ("the sent-id mark").
        parse: Makes the value from the decoded JSON (raising KeyError, TypeError or
            ValueError on a value that is not one).

    Raises:
        JournalDamaged: It is not a regular file, or is too large, not JSON or not a
            value ``parse`` takes.
    """
    if not os.path.lexists(path):
        return None
    if not path.is_file() or path.is_symlink():
        raise JournalDamaged(f"{path}: {what} is not a regular file")
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
        if len(data) > _MAX_BYTES:
            raise ValueError("too large")
        return parse(json.loads(data.decode("utf-8")))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise JournalDamaged(f"{path}: {what} is damaged") from None
