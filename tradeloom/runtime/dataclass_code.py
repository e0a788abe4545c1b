"""Dataclasses' generated methods compiled once per machine, not at every command.

The dataclasses module writes each dataclass's ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and a frozen class's ``__setattr__`` and ``__delattr__`` as source text and
compiles it (``exec``) as the class is made. A backtest's command makes about 230
dataclasses (the journal's events, the domain's objects, pydantic's and other libraries'),
whose 1,271 functions took 0.20 s to compile of the command's 1.9 s of CPU (a 10,000-bar
CSV strategy, Python 3.11; `bench_small_run.py`): more than reading its CSV file, its
features and its core together.

`install` gives the dataclasses module an ``exec`` of its own that takes a text's code from
a file an earlier command wrote (marshal, the format of a ``.pyc``'s code) and compiles only
a text it has not seen. The file holds each text's code as its marshalled bytes, made into
code only when the text runs: a backtest runs about 1,300 of the file's texts, and
unmarshalling all 2,256 it held took 10.8 ms, the bytes alone 1.4 ms. `save` writes back the
texts this process compiled or used. A text compiled the way ``exec`` compiles it (the file
name ``<string>``, no ``__future__`` flag: the dataclasses module has none) gives the same
code whoever compiles it, and it runs with the globals and locals the dataclasses module
passes: each class gets the very functions it gets without the file. The file is named by
the interpreter's bytecode version (a ``.pyc``'s magic number); a file that cannot be read,
or holds anything but texts and their code, is ignored, and one that cannot be written is
not written: it is a cache, never a reason for a command to fail.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import marshal
import os
import sys
from pathlib import Path
from types import CodeType
from typing import Any

from tradeloom.runtime.cache_home import cache_home

__all__ = ["MOST", "code_file", "install", "save"]

MOST = 4_000
"""The most texts the file keeps: past it, a command writes only those it used (the file
would otherwise grow with every edit of a dataclass, for ever). A backtest uses about
1,300 (1.1 KB each); every command reads the whole file (2,600 texts: 2.9 MB, 45 ms of
unmarshalling at load 6), so it holds about three versions' worth."""

_HEADER = b"tradeloom dataclass code 2\n"
"""Format 2: each text's code as its own marshalled bytes (format 1's file, whose codes
were unmarshalled as it was read, is written anew by the next command that compiles)."""

_known: dict[str, bytes] = {}
"""The texts the file held when it was read, and their code marshalled."""
_used: dict[str, CodeType] = {}
"""The texts this process ran, and their code."""
_state: dict[str, Any] = {"path": None, "compiled": 0}


def code_file() -> Path:
    """Return the file of this interpreter's compiled texts (in the user's cache folder,
    ``$XDG_CACHE_HOME`` if set)."""
    tag = f"{sys.implementation.cache_tag}-{importlib.util.MAGIC_NUMBER.hex()}"
    return cache_home() / "code" / f"dataclasses-{tag}.marshal"


def install(path: Path | None = None) -> None:
    """Make the dataclasses module take the code of each text it runs from ``path``
    (`code_file` by default), compiling only the texts it does not hold.

    Call it once, at the start of a command's process (an embedding program's process is
    left alone); a second call does nothing.
    """
    import dataclasses

    if "exec" in vars(dataclasses):  # installed already (or another's: left alone)
        return
    path = code_file() if path is None else path
    _known.clear()
    _known.update(_read(path))
    _state["path"] = path
    dataclasses.exec = _exec  # type: ignore[attr-defined]


def save() -> None:
    """Write the texts this process ran to the file `install` read, if it compiled any."""
    path: Path | None = _state["path"]
    if path is None or not _state["compiled"]:
        return
    table = dict(_known) if len(_known) + len(_used) <= MOST else {}
    table.update((text, marshal.dumps(code)) for text, code in _used.items())
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(_HEADER + marshal.dumps(table))
        os.replace(temporary, path)  # whole or not at all: a reader never sees a part
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        return
    _known.update(table)
    _state["compiled"] = 0


def _read(path: Path) -> dict[str, bytes]:
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    if not data.startswith(_HEADER):
        return {}
    try:
        table = marshal.loads(data[len(_HEADER) :])
    except (ValueError, EOFError, TypeError):
        return {}
    if not isinstance(table, dict) or not all(
        isinstance(text, str) and isinstance(code, bytes) for text, code in table.items()
    ):
        return {}
    return table


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    """``exec`` as the dataclasses module calls it, a text's code taken from the file."""
    if not isinstance(source, str):
        builtins.exec(source, globals, locals)
        return
    code = _used.get(source) or _code(_known.get(source))
    if code is None:
        # as exec compiles a text for the dataclasses module: no __future__ flag of ours
        code = compile(source, "<string>", "exec", dont_inherit=True)
        _state["compiled"] += 1
    _used[source] = code
    builtins.exec(code, globals, locals)


def _code(marshalled: bytes | None) -> CodeType | None:
    """Return the code a text's bytes in the file hold (None: none, or not a code)."""
    if marshalled is None:
        return None
    try:
        code = marshal.loads(marshalled)
    except (ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None
