"""A sweep directory's results: persisted as they arrive, so that a sweep resumes.

Every finished task writes one part under ``SWEEP_DIR/parts/``: its variants' bar
returns (``<task>.npy``), then its rows (``<task>.json``), each written to a temporary
file and moved into place; a part counts once its rows exist. A sweep started again
with the same command reads the parts, skips the variants they hold and runs the
rest. ``sweep.json`` records what the sweep is (the strategy file's content hash, the
axes, the objective); a directory holding another sweep is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloom.errors import UserError
from tradeloom.reporting.outputs import atomic_bytes

__all__ = ["PARTS_DIR", "ResultStore"]

PARTS_DIR = "parts"
SWEEP_FILE = "sweep.json"


class ResultStore:
    """The parts of one sweep directory.

    Args:
        root: The sweep directory (created).
        identity: What the sweep is; must match a directory's earlier ``sweep.json``.
    """

    def __init__(self, root: Path, identity: Mapping[str, Any]) -> None:
        self.root = root
        self.parts = root / PARTS_DIR
        self.parts.mkdir(parents=True, exist_ok=True)
        path = root / SWEEP_FILE
        text = json.dumps(identity, indent=2, sort_keys=True, default=str) + "\n"
        if path.exists():
            earlier = json.loads(path.read_text(encoding="utf-8"))
            if earlier != json.loads(text):
                raise UserError(
                    f"{root}: holds another sweep (its sweep.json differs: another strategy "
                    "file, axes or objective); give another --out or delete the folder"
                )
        else:
            atomic_bytes(path, text.encode())
        self.rows: dict[str, dict[str, Any]] = {}
        self._returns_at: dict[str, tuple[str, int]] = {}
        for part in sorted(self.parts.glob("*.json")):
            for k, row in enumerate(json.loads(part.read_text(encoding="utf-8"))):
                self.rows[row["key"]] = row
                self._returns_at[row["key"]] = (part.stem, k)

    def done(self) -> set[str]:
        """Return the keys of the variants already measured."""
        return set(self.rows)

    def add(
        self, task_key: str, rows: list[dict[str, Any]], returns: npt.NDArray[np.floating[Any]]
    ) -> None:
        """Persist a task's rows and ``[variants, bars]`` returns (in the rows' order)."""
        buffer = _npy_bytes(np.ascontiguousarray(returns, np.float32))
        atomic_bytes(self.parts / f"{task_key}.npy", buffer)
        data = json.dumps(rows, default=_plain, allow_nan=True).encode()
        atomic_bytes(self.parts / f"{task_key}.json", data)
        for k, row in enumerate(rows):
            self.rows[row["key"]] = row
            self._returns_at[row["key"]] = (task_key, k)

    def returns(self, keys: Iterable[str]) -> npt.NDArray[np.float32] | None:
        """Return ``[bars, variants]`` returns of ``keys`` (None: their lengths differ)."""
        loaded: dict[str, npt.NDArray[np.float32]] = {}
        columns = []
        for key in keys:
            part, k = self._returns_at[key]
            if part not in loaded:
                loaded[part] = np.load(self.parts / f"{part}.npy", mmap_mode="r")
            columns.append(loaded[part][k])
        if not columns or len({len(c) for c in columns}) != 1:
            return None
        return np.stack(columns, axis=1)


def _npy_bytes(array: npt.NDArray[Any]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a sweep's results")
