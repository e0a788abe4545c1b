"""A JSON Lines file that a run appends to, and a kill inside an append.

A run appends whole lines in one write, but a write of many pages stops at a page when
the process is killed: the file then ends in a line without its newline. The rule for
every such file (received documents, a run's LLM answers): a last line without a
newline that holds a whole JSON object is complete (a file written by hand without its
final newline, or a kill just before the newline's byte); one that does not is an append
cut short, or one being written still. A reader reads the complete lines and says it
left the rest out; a writer that appends first ends the file on a newline
(`end_on_newline`): it gives a whole last object its newline, or cuts a torn one off,
durably. Nothing completely written is lost, and a torn tail never makes the file
unreadable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["complete_length", "complete_lines", "end_on_newline"]

_BLOCK = 1 << 16
"""Bytes read at a time from a file's end looking for its last newline."""


def complete_length(data: bytes) -> int:
    """Return how many bytes of ``data`` (a JSON Lines file's) are complete lines: up to its
    last newline, and a last line without one if it holds a whole JSON object."""
    whole = data.rfind(b"\n") + 1
    if whole < len(data) and _whole_object(data[whole:]):
        return len(data)
    return whole


def complete_lines(path: Path) -> tuple[int, int]:
    """Return the size of ``path`` and of its complete lines (`complete_length`), reading
    back from its end only as far as its last newline."""
    with path.open("rb") as fh:
        end = size = os.fstat(fh.fileno()).st_size
        while end > 0:
            start = max(end - _BLOCK, 0)
            fh.seek(start)
            found = fh.read(end - start).rfind(b"\n")
            if found >= 0:
                break
            end = start
        whole = start + found + 1 if end > 0 else 0
        if whole < size:
            fh.seek(whole)
            if _whole_object(fh.read(size - whole)):
                return size, size
    return size, whole


def end_on_newline(path: Path, log: Any = None, event: str = "", why: str = "") -> int:
    """End ``path`` on a newline, durably (fsync'd), before appending to it; return how
    many bytes were cut off (0: none).

    A last line without a newline is cut off when it holds no whole object (a kill inside
    an append), or given its newline when it does (the kill came just before it). A cut
    is a warning ``event`` (with ``why``) of ``log`` (a structlog logger), if given.
    """
    size, whole = complete_lines(path)
    with path.open("r+b") as fh:
        if whole == size:
            fh.seek(max(size - 1, 0))
            if size == 0 or fh.read(1) == b"\n":
                return 0
            fh.write(b"\n")
        else:
            fh.truncate(whole)
        fh.flush()
        os.fsync(fh.fileno())
    if log is not None and size > whole:
        log.warning(
            event,
            path=str(path),
            cut_bytes=size - whole,
            why=f"its last line has no newline: {why}",
        )
    return size - whole


def _whole_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):  # not JSON, or not UTF-8: cut short
        return False
