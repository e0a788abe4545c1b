"""The entry-point groups the installed distributions declare, found in one pass.

Two readers of a command's start-up ask whether any installed distribution declares an
entry-point group: tradeloom's plugin manager (``[tradeloom]``, `tradeloom.plugins.manager`)
and pydantic, which looks for its plugins (``[pydantic]``) when it builds its first model.
`importlib.metadata.entry_points` answers by parsing every entry point of every distribution
into objects, and importing `importlib.metadata` (with the email, zipfile, csv and socket
modules it imports) costs more than reading the files it would read: 160 million
instructions alone, of which a 10,000-bar CSV backtest, whose other imports share the rest,
was spared ~0.7% of its process's instructions and ~1.5% of its CPU (with plotly's import,
`tradeloom.reporting.charts`). `declared` reads each distribution's ``entry_points.txt``
itself, for its section names only, as `importlib.metadata` finds and reads them: the
``*.dist-info`` and ``*.egg-info`` folders of each folder on ``sys.path`` (``""`` the
current one; an ``.egg`` folder's ``EGG-INFO``), a line, stripped, that starts with ``[``
and ends with ``]`` naming the section ``line.strip("[]")``. A path that holds what only
`importlib.metadata` reads (a zip file) or a distribution finder of another kind on
``sys.meta_path`` has `importlib.metadata` answer instead. A group no distribution declares
has no entry points.

`skip_pydantic_plugin_scan` tells pydantic it has no plugins where no distribution
declares the group (what its own look would find), before its first model is built; the
``tradeloom`` command calls it at its start (an embedding program's pydantic is left as
it is).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

__all__ = ["declared", "skip_pydantic_plugin_scan"]

_FOUND: dict[tuple[tuple[str, ...], tuple[object, ...]], frozenset[str]] = {}
"""The groups found, by where they were looked for (a new path, or a new finder of
distributions, may hold new packages): ``sys.path`` and the finders on ``sys.meta_path``
that find distributions. A finder that only imports (the import hook `tradeloom.engine.logs`
adds between the two readers' looks) changes nothing: the answer is not looked for
again (~2 ms, 250 distributions' files read, of a small run)."""

_INFO = (".dist-info", ".egg-info")
"""The endings of the folders that hold a distribution's metadata (`importlib.metadata`'s
``Lookup``, which compares them in lower case)."""

_LOADER = "pydantic.plugin._loader"
"""pydantic 2's module that looks for its plugins (imported by its first model's build)."""


def declared() -> frozenset[str]:
    """Return the names of the entry-point groups the installed distributions declare."""
    finders = tuple(id(f) for f in sys.meta_path if _finds_distributions(f))
    where = (tuple(sys.path), finders)
    found = _FOUND.get(where)
    if found is None:
        _FOUND.clear()
        other = any(_other_finder(finder) for finder in sys.meta_path)
        groups = None if other else _read_groups(sys.path)
        found = _FOUND[where] = frozenset(_metadata_groups() if groups is None else groups)
    return found


def _read_groups(path: list[str]) -> set[str] | None:
    """Return the groups of the distributions in the folders ``path`` names, or None where
    only `importlib.metadata` can tell (a zip file on the path, bytes)."""
    groups: set[str] = set()
    for entry in path:
        if not isinstance(entry, str):
            return None  # (bytes): as importlib.metadata reads it
        folder = entry or "."
        egg = os.path.basename(entry).lower().endswith(".egg")  # its metadata: EGG-INFO
        try:
            with os.scandir(folder) as children:
                infos = [c.path for c in children if _holds_metadata(c.name.lower(), egg)]
        except NotADirectoryError:
            return None  # a zip file: its distributions are read by importlib.metadata
        except OSError:
            continue  # not there: nothing to find, as importlib.metadata finds nothing
        for info in infos:
            try:
                with open(os.path.join(info, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except (OSError, UnicodeDecodeError):
                continue  # none (an .egg-info file, no entry points), or unreadable
            _add_sections(text, groups)
    return groups


def _holds_metadata(name: str, egg: bool) -> bool:
    """Whether a child ``name`` (in lower case) of a path's folder is a distribution's
    metadata folder, as `importlib.metadata`'s ``Lookup`` tells (``egg``: the folder is an
    ``.egg``, whose ``EGG-INFO`` is)."""
    return name.endswith(_INFO) or (egg and name == "egg-info")


def _finds_distributions(finder: object) -> bool:
    """Whether ``finder`` finds distributions (`importlib.metadata` asks it)."""
    return getattr(finder, "find_distributions", None) is not None


def _other_finder(finder: object) -> bool:
    """Whether ``finder`` finds distributions other than the path's folders' own."""
    if not _finds_distributions(finder):
        return False
    from importlib.machinery import PathFinder

    return finder is not PathFinder


def _metadata_groups() -> set[str]:
    from importlib import metadata

    groups: set[str] = set()
    for dist in metadata.distributions():
        _add_sections(dist.read_text("entry_points.txt") or "", groups)
    return groups


def _add_sections(text: str, groups: set[str]) -> None:
    for line in map(str.strip, text.splitlines()):
        if line.startswith("[") and line.endswith("]"):
            groups.add(line.strip("[]"))


def skip_pydantic_plugin_scan() -> None:
    """Tell pydantic it has no plugins if no installed distribution declares a
    ``pydantic`` entry point, before it looks (its first model's build).

    Where pydantic's loader is not imported yet, a stand-in takes its place in
    ``sys.modules`` (`_NoPlugins`): pydantic's own imports `importlib.metadata` to look,
    which costs more than the look. Where it is imported, its cache of plugins is set to
    none found, as its look would set it. Does nothing where pydantic looked already,
    where ``PYDANTIC_DISABLE_PLUGINS`` is set (pydantic reads it itself), or where a
    distribution declares a plugin.
    """
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") is not None:
        return
    loader = sys.modules.get(_LOADER)
    if loader is None:
        if "pydantic" not in declared():
            sys.modules[_LOADER] = _NoPlugins(_LOADER)
        return
    if getattr(loader, "_plugins", False) is None and "pydantic" not in declared():
        loader._plugins = {}  # type: ignore[attr-defined]  # what its look would find: none


class _NoPlugins(ModuleType):
    """pydantic's plugin loader where no distribution declares a plugin: `get_plugins`
    finds none, as pydantic's would. Any other name read from it (a pydantic this was not
    written against) loads pydantic's own loader in its place, told it has no plugins."""

    def get_plugins(self) -> tuple[()]:
        return ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system's and repr's looks (__path__, __file__)
            raise AttributeError(name)
        del sys.modules[_LOADER]
        real = importlib.import_module(_LOADER)
        real._plugins = {}  # type: ignore[attr-defined]
        return getattr(real, name)
