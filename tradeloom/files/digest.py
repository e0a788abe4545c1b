"""A file's SHA-256, read in chunks: a model file of gigabytes is held in memory once,
when it is trusted, not twice to be hashed."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_of"]


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``, read a MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
