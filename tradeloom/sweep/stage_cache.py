"""A content-addressed cache of a sweep's shared stages, on disk, safe to share and reuse.

Each entry is a set of named numpy arrays and a JSON mapping under a stage name and a
key (a content hash, `stage_key`). An entry is written to a temporary file and moved
into place (a reader never sees half a file; two processes writing the same entry
write the same bytes, the last move wins), and its digest (sha256 of the file) is
kept beside it: an entry whose bytes no longer match is treated as missing, deleted,
and computed again. `MemoryCache` holds the same entries in one process only (a Dask
worker's, which computes a group's stages without its own disk; the client caches the
series it hands back).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloom.reporting.outputs import atomic_bytes
from tradeloom.runtime.lazy import logger

__all__ = ["CacheEntry", "MemoryCache", "StageCache", "stage_key", "versions"]

_log = logger("tradeloom.sweep")


def versions() -> dict[str, str]:
    """Return the versions of the libraries a stage's numbers depend on."""
    import numba
    import pandas
    import sklearn

    from tradeloom.version import __version__

    return {
        "tradeloom": __version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
        "numba": numba.__version__,
    }


def stage_key(*parts: Any) -> str:
    """Return a hash of ``parts`` (plain data: JSON with sorted keys) and the library versions."""
    text = json.dumps([versions(), *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CacheEntry:
    """A cached stage: its arrays and its metadata."""

    arrays: Mapping[str, npt.NDArray[Any]]
    meta: Mapping[str, Any]


class StageCache:
    """Entries under ``root/<stage>/<key>.npz`` with ``<key>.sha256`` beside each."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, stage: str, key: str) -> tuple[Path, Path]:
        folder = self.root / stage
        return folder / f"{key}.npz", folder / f"{key}.sha256"

    def get(self, stage: str, key: str) -> CacheEntry | None:
        """Return the entry, or None when it is missing or its bytes fail their digest."""
        path, digest_path = self._paths(stage, key)
        try:
            data = path.read_bytes()
            digest = digest_path.read_text(encoding="ascii").strip()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != digest:
            _log.warning("stage_cache_corrupt", stage=stage, key=key, path=str(path))
            for stale in (path, digest_path):
                stale.unlink(missing_ok=True)
            return None
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files if name != "__meta__"}
            meta = json.loads(bytes(npz["__meta__"]).decode())
        return CacheEntry(arrays, meta)

    def put(self, stage: str, key: str, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Write the entry atomically (the data first, then its digest)."""
        path, digest_path = self._paths(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        packed = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
        np.savez(buffer, __meta__=packed, **dict(arrays))
        data = buffer.getvalue()
        atomic_bytes(path, data)
        atomic_bytes(digest_path, hashlib.sha256(data).hexdigest().encode())


class MemoryCache(StageCache):
    """A stage cache held in this process, nothing read or written on disk.

    An entry reads back as one read from disk does: its arrays copied, its metadata
    through JSON (lists, not tuples; keys sorted), so a series built from it is the
    series `StageCache` would give.
    """

    def __init__(self) -> None:
        super().__init__(Path("<memory>"))
        self._entries: dict[tuple[str, str], CacheEntry] = {}

    def get(self, stage: str, key: str) -> CacheEntry | None:
        """Return the entry, or None when it was not put here."""
        return self._entries.get((stage, key))

    def put(self, stage: str, key: str, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Keep a copy of the entry."""
        copied = {name: np.array(value) for name, value in arrays.items()}
        self._entries[(stage, key)] = CacheEntry(
            copied, json.loads(json.dumps(meta, sort_keys=True))
        )
