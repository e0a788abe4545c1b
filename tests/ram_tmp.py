"""Folders in memory (tmpfs) for tests whose runs commit their journal over and over.

A run's journal is durable: its start, each order's intent, a reopened journal, its
tail record are ``fsync``'d (`tradeloom.journal.sqlite`, `tradeloom.journal.durable`).
On a disk shared by a busy machine each ``fsync`` waits for it, and a test that commits a
few hundred times spends most of its time waiting. What these tests assert is what the
journal holds, not that it survived a power cut, so they write it where ``fsync`` costs
nothing: ``/dev/shm`` where the machine has one (Linux), else pytest's own tmp folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RamFolders", "ram_base"]

_TMPFS = Path("/dev/shm")


def ram_base(fallback: Path) -> Path:
    """Return a new folder on tmpfs, or ``fallback`` where there is none to write."""
    if _TMPFS.is_dir() and os.access(_TMPFS, os.W_OK | os.X_OK):
        return Path(tempfile.mkdtemp(prefix="tradeloom-tests-", dir=_TMPFS))
    return fallback


class RamFolders:
    """New folders under one base folder (`ram_base`), removed together by `remove`.

    Memory is scarcer than disk: a folder is removed when its test or example is done
    (`folder`, and the ``ram_tmp_path`` fixture), not kept as pytest keeps its own.
    """

    def __init__(self, base: Path, owned: bool) -> None:
        self.base = base
        self.owned = owned

    def mktemp(self, name: str) -> Path:
        """Return a new empty folder whose name starts with ``name``."""
        prefix = re.sub(r"[^\w.-]", "_", name)[:40]
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.base))

    @contextlib.contextmanager
    def folder(self, name: str) -> Iterator[Path]:
        """Give a new empty folder (`mktemp`) and remove it after the block."""
        path = self.mktemp(name)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def remove(self) -> None:
        """Delete the base folder if this object made it."""
        if self.owned:
            shutil.rmtree(self.base, ignore_errors=True)
