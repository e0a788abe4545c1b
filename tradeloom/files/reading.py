"""One safe reader for every file a command reads that a user or a crash may have damaged.

A run directory, a sweep folder or a journal pointer is state on disk, and state on disk
is hostile: a FIFO or ``/dev/zero`` in place of a file, a directory, a file of random
bytes, a JSON document nested a million levels deep. Every reader here opens regular
files only (``O_NONBLOCK`` then ``fstat``: a FIFO that no one writes never blocks),
caps the size before reading a byte, checks UTF-8, caps the nesting of JSON and YAML
before a parser recurses and the values of a YAML document once its aliases are
expanded (a "billion laughs" of ten levels of aliases is a few hundred bytes that
expand to 10^10 values in whatever walks it next), and raises `UnreadableFile` (a
`UserError`: one line naming the file, exit 2) for each of these; `NotAFile`, for a
file that is missing or not a regular file, lets a reader that can do without the file
go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_DEPTH",
    "MAX_STATE_BYTES",
    "MAX_VALUES",
    "FileTooLarge",
    "NotAFile",
    "UnreadableFile",
    "decode_text",
    "file_kind",
    "json_depth",
    "read_bytes",
    "read_csv",
    "read_head",
    "read_json",
    "read_text",
    "read_yaml",
    "read_yaml_kept",
    "require_regular",
]

MAX_STATE_BYTES = 256 * 1024 * 1024
"""Largest state file read whole (metrics, a sweep part, a resolved strategy file); a
larger one is a wrong or damaged file, and reading it would exhaust memory first."""

MAX_DEPTH = 64
"""Deepest nesting of a JSON or YAML document tradeloom reads back: none it writes nests
more than a handful of levels; Python's parsers recurse once per level and fail near
1,000 with a RecursionError."""

MAX_VALUES = 100_000
"""Most values in a YAML document tradeloom reads back, its aliases expanded (the strategy
reader's cap, `tradeloom.schemas.yaml_loader.MAX_VALUES`): a run's strategy file has a
few hundred."""

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class UnreadableFile(UserError):
    """A file that is missing, not a regular file, too large, not UTF-8 or not parsable."""


class NotAFile(UnreadableFile):
    """A file that is missing or not a regular file (a FIFO, a device, a directory): a
    reader that can do without it may go on; a regular file it refuses is damaged.

    Attributes:
        mode: What is there instead (its ``st_mode``; None: nothing).
    """

    def __init__(self, message: str, mode: int | None = None) -> None:
        super().__init__(message)
        self.mode = mode


class FileTooLarge(UnreadableFile):
    """A regular file larger than its reader's limit.

    Attributes:
        size: Its size in bytes (at least, when it grew while being read).
    """

    def __init__(self, message: str, size: int = 0) -> None:
        super().__init__(message)
        self.size = size


def file_kind(mode: int) -> str:
    """Return what a non-regular file is, for a message ("a FIFO (named pipe)")."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def require_regular(path: Path, what: str) -> None:
    """Raise `UnreadableFile` unless ``path`` is a regular file (``stat`` never blocks).

    For files a library opens itself (SQLite, parquet): call this first, so that a FIFO
    or a device in their place is refused instead of hanging the library's ``open``.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotAFile(f"{path}: no such file ({what})") from None
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise NotAFile(f"{path}: is {file_kind(mode)}, not a regular file ({what})", mode)


def read_head(path: Path, what: str, size: int) -> bytes:
    """Return the first ``size`` bytes of the regular file ``path`` (fewer if it is shorter).

    For a file too large to read whole that a library opens afterwards (a SQLite
    journal): its header is checked here, where a FIFO or a device cannot block.

    Raises:
        UnreadableFile: Missing, not a regular file, or unreadable.
    """
    with _regular(path, what) as (fd, _):
        try:
            return os.read(fd, size)
        except OSError as exc:
            raise UnreadableFile(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_bytes(path: Path, what: str, *, limit: int = MAX_STATE_BYTES) -> bytes:
    """Return the bytes of the regular file ``path``, at most ``limit`` of them.

    Args:
        path: The file.
        what: What it should be, for the message ("a run's metrics").
        limit: Largest size read; a larger file is refused before a byte is read.

    Raises:
        NotAFile: Missing, or not a regular file.
        FileTooLarge: Larger than ``limit``.
        UnreadableFile: Unreadable.
    """
    with _regular(path, what) as (fd, known):
        if known > limit:
            raise FileTooLarge(_too_large(path, known, limit, what), known)
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise UnreadableFile(f"{path}: cannot read: {exc.strerror or exc}") from None
        if size > limit:  # it grew while being read
            raise FileTooLarge(_too_large(path, size, limit, what), size)
    return b"".join(chunks)


@contextlib.contextmanager
def _regular(path: Path, what: str) -> Iterator[tuple[int, int]]:
    # O_NONBLOCK: opening a FIFO that no one writes returns at once instead of hanging;
    # fstat then refuses it (and devices, directories) before a byte is read
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise NotAFile(f"{path}: no such file ({what})") from None
    except IsADirectoryError:
        raise NotAFile(
            f"{path}: is a directory, not a regular file ({what})", stat.S_IFDIR
        ) from None
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotAFile(
                f"{path}: is {file_kind(info.st_mode)}, not a regular file ({what})",
                info.st_mode,
            )
        yield fd, info.st_size
    finally:
        os.close(fd)


def read_text(path: Path, what: str, *, limit: int = MAX_STATE_BYTES) -> str:
    """Return the UTF-8 text of the regular file ``path`` (`read_bytes`, then decoded).

    Raises:
        UnreadableFile: As `read_bytes`, or the bytes are not UTF-8 (naming the offset).
    """
    return decode_text(path, read_bytes(path, what, limit=limit), what)


def decode_text(path: Path, data: bytes, what: str) -> str:
    """Return ``data`` (read from ``path``) as UTF-8 text, a byte-order mark left out.

    Raises:
        UnreadableFile: The bytes are not UTF-8 (naming the offset).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
            f"damaged, or not {what}"
        ) from None


def read_json(path: Path, what: str, *, limit: int = MAX_STATE_BYTES) -> Any:
    """Return the JSON document in ``path``, its nesting checked before it is parsed.

    Raises:
        UnreadableFile: As `read_text`, nested deeper than `MAX_DEPTH`, or not JSON.
    """
    text = read_text(path, what, limit=limit)
    _check_depth(path, what, json_depth(text))
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        # ValueError: JSONDecodeError, or an integer of more digits than Python converts
        raise UnreadableFile(
            f"{path}: not valid JSON ({_first_line(exc)}): damaged, or not {what}"
        ) from None


def read_yaml(path: Path, what: str, *, limit: int = MAX_STATE_BYTES) -> Any:
    """Return the YAML document in ``path`` (PyYAML's safe loader, its simple keys kept in
    linear time: `tradeloom.files.yaml_scanner`), its nesting and size checked.

    Raises:
        UnreadableFile: As `read_text`, nested deeper than `MAX_DEPTH`, more than
            `MAX_VALUES` values once its aliases are expanded, or not YAML.
    """
    import yaml

    from tradeloom.files.yaml_scanner import SafeLoader

    text = read_text(path, what, limit=limit)
    try:
        loader = SafeLoader(text)  # its reader refuses a control character (a NUL) here
    except yaml.YAMLError as exc:
        raise UnreadableFile(
            f"{path}: not valid YAML ({_first_line(exc)}): damaged, or not {what}"
        ) from None
    try:
        # compose first: the node tree is built without recursion limits being reached
        # by construction, and its depth is checked before PyYAML builds Python objects
        # from that same tree (`safe_load`'s own two steps: the text is parsed once)
        node = loader.get_single_node()
        _check_depth(path, what, _node_depth(node))
        if _expanded_values(node) > MAX_VALUES:
            raise UnreadableFile(
                f"{path}: more than {MAX_VALUES:,} values once its aliases are expanded; "
                f"{what} never has so many: damaged, or another file"
            )
        return None if node is None else loader.construct_document(node)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise UnreadableFile(
            f"{path}: not valid YAML ({_first_line(exc)}): damaged, or not {what}"
        ) from None
    finally:
        loader.dispose()


_KEPT: dict[str, tuple[tuple[int, int, int], Any]] = {}
"""Each YAML file read by `read_yaml_kept`, by path, with its (inode, mtime, size)."""


def read_yaml_kept(path: Path, what: str) -> Any:
    """Return `read_yaml`'s document of ``path``, parsed once while the file stays the
    same (its inode, modification time and size): ``status`` checks a run's strategy file
    against its journal and then reads its timeframe from it, and a console reads the same
    runs' files again and again. Each call returns its own copy.

    Raises:
        UnreadableFile: As `read_yaml` (NotAFile: not a regular file).
    """
    import copy

    try:
        st = os.stat(path)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    known = _KEPT.get(str(path))
    if stamp is not None and known is not None and known[0] == stamp:
        return copy.deepcopy(known[1])
    document = read_yaml(path, what)
    if stamp is not None:
        if len(_KEPT) > 4096:
            _KEPT.clear()
        _KEPT[str(path)] = (stamp, copy.deepcopy(document))
    return document


def read_csv(
    path: Path, what: str, *, text_columns: Collection[str] = (), limit: int = MAX_STATE_BYTES
) -> pd.DataFrame:
    """Return the table in the CSV file ``path``; every column but ``text_columns`` numeric.

    A text cell in a numeric column (``hello`` in ``equity.csv``'s ``close``) is refused
    here, naming its line, instead of failing later in a computation.

    Raises:
        UnreadableFile: As `read_bytes`, not CSV, or a numeric column holds text.
    """
    import io

    import pandas as pd

    data = read_bytes(path, what, limit=limit)
    try:
        frame = pd.read_csv(io.BytesIO(data), engine="pyarrow")
    except (ValueError, UnicodeDecodeError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise UnreadableFile(
            f"{path}: not a CSV table ({_first_line(exc)}): damaged, or not {what}"
        ) from None
    for column in frame.columns:
        if column in text_columns or pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise UnreadableFile(
                f"{path}:{row + 2}: column {column}: expected a number, was "
                f"{str(frame[column].iloc[row])[:40]!r}; damaged, or not {what}"
            )
        frame[column] = values
    return frame


def _check_depth(path: Path, what: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise UnreadableFile(
            f"{path}: nests more than {MAX_DEPTH} levels deep; {what} never does: "
            "damaged, or another file"
        )


def json_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """Return the deepest nesting of ``[`` and ``{`` outside strings in a JSON text,
    counted without parsing it (before ``json.loads`` recurses); stops counting once it
    is past ``limit``."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _node_depth(node: Any) -> int:
    # iterative, so that a deep document cannot exhaust the stack of this check either
    deepest = 0
    stack = [(node, 1)] if node is not None else []
    seen: set[int] = set()
    while stack:
        current, depth = stack.pop()
        if id(current) in seen:  # an alias: counted where it was defined
            continue
        seen.add(id(current))
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        value = current.value
        if isinstance(value, list):
            for item in value:
                if isinstance(item, tuple):
                    stack.extend((part, depth + 1) for part in item)
                else:
                    stack.append((item, depth + 1))
    return deepest


def _expanded_values(root: Any) -> int:
    """Return how many values the composed YAML ``root`` has with every alias expanded
    (each node counted once per reference to it), or ``MAX_VALUES + 1`` if more, or if an
    alias refers to a value that contains it. The node graph is at most `MAX_DEPTH` deep
    (checked first), so that the recursion here is bounded."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_:
            return MAX_VALUES + 1  # contains itself: infinitely many
        open_.add(id(node))
        total = 1
        if isinstance(node.value, list):
            for item in node.value:
                for part in item if isinstance(item, tuple) else (item,):
                    total += size(part)
                    if total > MAX_VALUES:
                        break
                if total > MAX_VALUES:
                    break
        open_.discard(id(node))
        sizes[id(node)] = total = min(total, MAX_VALUES + 1)
        return total

    return 0 if root is None else size(root)


def _too_large(path: Path, size: int, limit: int, what: str) -> str:
    return (
        f"{path}: {size:,} bytes is larger than the {limit:,}-byte limit for {what}; "
        "damaged, or another file"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
