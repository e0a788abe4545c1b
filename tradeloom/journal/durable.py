"""Small files that must survive a crash: written aside, fsync'd, renamed into place."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["replace_durably"]


def replace_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: all of it or none of it, on disk when this returns.

    The bytes go to ``<path>.tmp`` (never through a symlink), which is fsync'd and
    renamed over ``path``; the folder is fsync'd so that the rename itself survives.
    """
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
