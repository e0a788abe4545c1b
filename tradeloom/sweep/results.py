"""A sweep directory's results: persisted as they arrive, so that a sweep resumes.

Every finished task writes one part under ``SWEEP_DIR/parts/``: its variants' bar
returns (``<task>.npy``), its rows (``<task>.json``), then the sha256 of both
(``<task>.sha256``), each written to a temporary file and moved into place; a part
counts once its digest exists and matches. A task makes its part where it runs
(`pack_part`: the JSON, the digest) and, on this machine (serially or on the local
pool), writes it there too (`write_part`), so that the command's process neither
receives a variant's returns nor hashes them: on two workers that was a fifth of the
work, and all of it in one process. A Dask worker writes its part too when it finds the
run's token in the folder (`ResultStore.open_to_workers`, `sees_folder`: the same
machine or a shared disk); one elsewhere sends its part's bytes, which the command
writes (`ResultStore.keep`). The store keeps the rows and where each variant's returns
are; the returns stay in the parts and are read a few columns or bars at a time
(`PartColumns`), so a sweep's memory does not grow with its variants times its bars. A
sweep started again with the same command reads the parts, skips the variants they hold
and runs the rest; a part that is damaged or edited (a metric changed by hand) fails its
digest and is run again, never used.
``sweep.json`` records what the sweep is (the strategy file's content hash, the axes,
the objective); a directory holding another sweep, or a damaged ``sweep.json``, is
refused in one line.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from tradeloom.errors import UserError
from tradeloom.files.reading import UnreadableFile, read_bytes, read_json
from tradeloom.files.writing import OutputFolder

__all__ = [
    "PARTS_DIR",
    "SWEEP_FILE",
    "SWEEP_OWNED",
    "WRITER_FILE",
    "Part",
    "PartColumns",
    "PartContent",
    "ResultStore",
    "pack_part",
    "read_identity",
    "read_strategy_hash",
    "sees_folder",
    "write_part",
]

PARTS_DIR = "parts"
SWEEP_FILE = "sweep.json"
SWEEP_OWNED = (f"{PARTS_DIR}/", "cache/", "runs/")
"""What a sweep directory owns whoever wrote it: its parts, its stage cache, its runs."""
WRITER_FILE = f"{PARTS_DIR}/.writer"
"""A run's token (`ResultStore.open_to_workers`): a worker that reads it sees the folder."""


def read_identity(root: Path) -> dict[str, Any]:
    """Return the ``sweep.json`` of the sweep directory ``root``.

    Raises:
        UserError: It is missing, damaged, or not a sweep's (one line naming it).
    """
    path = root / SWEEP_FILE
    try:
        identity = read_json(path, "a sweep's sweep.json", limit=1 << 26)
    except UnreadableFile as exc:
        raise UserError(f"{exc}; delete the sweep directory and run the sweep again") from None
    if not isinstance(identity, dict):
        raise UserError(
            f"{path}: not a sweep's sweep.json (not an object): damaged; delete the sweep "
            "directory and run the sweep again"
        )
    return identity


def read_strategy_hash(root: Path) -> str:
    """Return the sha256 of the strategy file the sweep in ``root`` swept.

    Raises:
        UserError: Its ``sweep.json`` is missing, damaged, or names no strategy hash.
    """
    identity = read_identity(root)
    if not isinstance(identity.get("strategy_sha256"), str):
        raise UserError(
            f"{root / SWEEP_FILE}: not a sweep's sweep.json (no strategy_sha256): damaged; "
            "delete the sweep directory and run the sweep again"
        )
    return str(identity["strategy_sha256"])


class ResultStore:
    """The parts of one sweep directory.

    Args:
        folder: The sweep directory, checked for writing (`OutputFolder`, owning
            `SWEEP_OWNED`), or its path.
        identity: What the sweep is; must match a directory's earlier ``sweep.json``.
    """

    def __init__(self, folder: OutputFolder | Path, identity: Mapping[str, Any]) -> None:
        if isinstance(folder, Path):
            folder = OutputFolder(folder, owned=SWEEP_OWNED)
        self.folder = folder
        self.root = root = folder.folder
        self.parts = root / PARTS_DIR
        self.damaged: list[str] = []
        """Why each part that failed its digest was dropped (its variants run again)."""
        text = json.dumps(identity, indent=2, sort_keys=True, default=str) + "\n"
        if (root / SWEEP_FILE).exists() or (root / SWEEP_FILE).is_symlink():
            if read_identity(root) != json.loads(text):
                raise UserError(
                    f"{root}: holds another sweep (its sweep.json differs: another strategy "
                    "file, axes or objective); give another --out or delete the folder"
                )
        else:
            folder.write_text(SWEEP_FILE, text)
        self.rows: dict[str, dict[str, Any]] = {}
        self._returns_at: dict[str, tuple[str, int]] = {}
        self._bars: dict[str, int] = {}  # each verified part's bars (its arrays stay on disk)
        if not self.parts.exists():
            return
        for part in sorted(self.parts.glob("*.json")):
            rows = self._read_part(part.stem)
            if rows is None:  # its variants run again and write it anew
                for suffix in (".json", ".npy", ".sha256"):
                    part.with_suffix(suffix).unlink(missing_ok=True)
                continue
            for k, row in enumerate(rows):
                self.rows[row["key"]] = row
                self._returns_at[row["key"]] = (part.stem, k)

    def done(self) -> set[str]:
        """Return the keys of the variants already measured."""
        return set(self.rows)

    def open_to_workers(self) -> str:
        """Write a new token into the parts' folder and return it: a worker elsewhere (a
        Dask cluster's) that reads the same token there (`sees_folder`) shares this
        folder, on this machine or a shared disk, and may write its part itself."""
        token = uuid.uuid4().hex
        self.folder.write_text(WRITER_FILE, token + "\n")
        return token

    def keep(self, part: Part) -> None:
        """Record a task's part: write its files, unless the task wrote them where it ran."""
        if part.content is not None:
            write_part(self.folder, part)
        self._bars[part.key] = part.bars
        for k, row in enumerate(part.rows):
            self.rows[row["key"]] = row
            self._returns_at[row["key"]] = (part.key, k)

    def returns(self, keys: Sequence[str]) -> PartColumns | None:
        """Return the ``[bars, variants]`` returns of ``keys``, read from the parts as
        asked (None: their bar counts differ)."""
        where = [self._returns_at[key] for key in keys]
        if not where or len({self._bars[part] for part, _ in where}) != 1:
            return None
        return PartColumns(self.parts, where, self._bars[where[0][0]])

    def _read_part(self, stem: str) -> list[dict[str, Any]] | None:
        # the rows, their returns and the digest of both, read once; None: dropped
        base = self.parts / stem
        try:
            data = read_bytes(base.with_suffix(".json"), "a sweep's part")
            buffer = read_bytes(base.with_suffix(".npy"), "a sweep's part")
            digest = read_bytes(base.with_suffix(".sha256"), "a sweep's part", limit=256)
        except UnreadableFile as exc:
            self.damaged.append(str(exc))
            return None
        if digest.decode("ascii", errors="replace").strip() != _digest(data, buffer):
            self.damaged.append(
                f"{base}.json: its rows or returns differ from its digest (damaged or edited)"
            )
            return None
        try:
            rows = json.loads(data)
            array = np.load(io.BytesIO(buffer), allow_pickle=False)
        except (ValueError, RecursionError) as exc:  # a digest of damaged bytes: rewritten
            self.damaged.append(f"{base}.json: not a sweep's part ({exc})")
            return None
        if not isinstance(rows, list) or array.ndim != 2 or len(array) != len(rows):
            self.damaged.append(f"{base}.json: not a sweep's part (rows and returns differ)")
            return None
        self._bars[stem] = array.shape[1]
        return rows


@dataclass(frozen=True)
class PartContent:
    """What a part's files hold: the rows' JSON, the returns as ``.npy`` (a header, then
    the array's bytes) and the digest of both (`_digest`)."""

    data: bytes
    header: bytes
    returns: npt.NDArray[np.float32]
    digest: str


@dataclass(frozen=True)
class Part:
    """A finished task's part of the results.

    Attributes:
        key: The task's key: its files are ``parts/<key>.*``.
        rows: Its variants' rows.
        bars: Bars of each variant's returns.
        content: Its files' bytes (`pack_part`); None once they are written
            (`write_part`), where the task ran.
    """

    key: str
    rows: list[dict[str, Any]]
    bars: int
    content: PartContent | None


def pack_part(key: str, rows: list[dict[str, Any]], returns: npt.NDArray[np.floating[Any]]) -> Part:
    """Return the part of ``rows`` and their ``[variants, bars]`` returns, ready to write
    (the JSON, the ``.npy`` header and the digest made here, where the task ran)."""
    array = np.ascontiguousarray(returns, np.float32)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    data = json.dumps(rows, default=_plain, allow_nan=True).encode()
    npy = (header.getvalue(), _raw(array))
    content = PartContent(data, npy[0], array, _digest(data, *npy))
    return Part(key, rows, array.shape[1], content)


def sees_folder(sweep_dir: str, token: str) -> bool:
    """Return whether the sweep directory ``sweep_dir`` here holds ``token``
    (`ResultStore.open_to_workers`): the command's own folder, not a namesake."""
    try:
        return (Path(sweep_dir) / WRITER_FILE).read_text("ascii").strip() == token
    except (OSError, UnicodeDecodeError):
        return False


def write_part(folder: OutputFolder, part: Part) -> Part:
    """Write ``part``'s files into the sweep directory ``folder``, the digest last (the
    part counts once it is there); return the part without its bytes."""
    content = part.content
    if content is None:
        return part
    with folder.replacing(f"{PARTS_DIR}/{part.key}.npy") as temporary, temporary.open("wb") as file:
        file.write(content.header)
        file.write(_raw(content.returns))
    folder.write_bytes(f"{PARTS_DIR}/{part.key}.json", content.data)
    folder.write_text(f"{PARTS_DIR}/{part.key}.sha256", content.digest + "\n")
    return Part(part.key, part.rows, part.bars, None)


class PartColumns:
    """A sweep's ``[bars, variants]`` returns, left in its parts and read a few columns
    at a time, so that no process holds the whole matrix.

    Args:
        parts: The parts' folder.
        where: Per column, its part's name and its row in that part.
        bars: Bars of every column.
    """

    def __init__(self, parts: Path, where: Sequence[tuple[str, int]], bars: int) -> None:
        self.parts = parts
        self.where = list(where)
        self.shape = (bars, len(self.where))

    def columns(self, start: int, stop: int) -> npt.NDArray[np.float64]:
        """Return columns ``start`` to ``stop`` as a C-ordered float64 ``[bars, k]`` array."""
        out = np.empty((self.shape[0], stop - start))
        self._fill(out, start, stop, 0, self.shape[0])
        return out

    def rows(self, start: int, stop: int) -> npt.NDArray[np.float32]:
        """Return rows (bars) ``start`` to ``stop`` of every column, float32."""
        out = np.empty((stop - start, self.shape[1]), np.float32)
        self._fill(out, 0, self.shape[1], start, stop)
        return out

    def column(self, index: int) -> npt.NDArray[np.float32]:
        """Return one column (a variant's returns), float32."""
        part, k = self.where[index]
        array = np.load(self.parts / f"{part}.npy", mmap_mode="r", allow_pickle=False)
        try:
            return np.array(array[k])
        finally:
            del array

    def save(self, file: BinaryIO, block: int = 1 << 13) -> None:
        """Write the matrix to ``file`` as a float32 ``.npy``, ``block`` bars at a time."""
        header = {"descr": "<f4", "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(file, header)
        for start in range(0, self.shape[0], block):
            file.write(self.rows(start, min(start + block, self.shape[0])).tobytes())

    def _fill(self, out: npt.NDArray[Any], c0: int, c1: int, r0: int, r1: int) -> None:
        by_part: dict[str, list[tuple[int, int]]] = {}
        for column in range(c0, c1):
            part, k = self.where[column]
            by_part.setdefault(part, []).append((column - c0, k))
        for part, pairs in by_part.items():
            # mapped, copied and let go: the part's pages are not held past this loop
            array = np.load(self.parts / f"{part}.npy", mmap_mode="r", allow_pickle=False)
            try:
                for column, k in pairs:
                    out[:, column] = array[k, r0:r1]
            finally:
                del array


def _digest(rows: bytes, *returns: bytes | memoryview) -> str:
    """sha256 of the rows' bytes and the ``.npy``'s (given in pieces), each led by its length."""
    digest = hashlib.sha256()
    digest.update(len(rows).to_bytes(8, "little"))
    digest.update(rows)
    digest.update(sum(len(piece) for piece in returns).to_bytes(8, "little"))
    for piece in returns:
        digest.update(piece)
    return digest.hexdigest()


def _raw(array: npt.NDArray[np.float32]) -> memoryview:
    """The bytes of a C-contiguous array, without a copy (its ``tobytes()``, as ``np.save``
    writes them)."""
    return array.reshape(-1).view(np.uint8).data


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a sweep's results")
