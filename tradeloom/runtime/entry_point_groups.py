"""The entry-point groups the installed distributions declare, found in one pass.

Two readers of a command's start-up ask whether any installed distribution declares an
entry-point group: tradeloom's plugin manager (``[tradeloom]``, `tradeloom.plugins.manager`)
and pydantic, which looks for its plugins (``[pydantic]``) when it builds its first model.
`importlib.metadata.entry_points` answers by parsing every entry point of every
distribution into objects (pydantic's look took ~8 ms of a small run's start-up, with 250
distributions installed and none a pydantic plugin). `declared` reads each
distribution's ``entry_points.txt`` once, for its section names only, as
`importlib.metadata` reads them (a line, stripped, that starts with ``[`` and ends with
``]`` names the section ``line.strip("[]")``): a group no distribution declares has no
entry points.

`skip_pydantic_plugin_scan` tells pydantic it has no plugins where no distribution
declares the group (what its own look would find), before its first model is built; the
``tradeloom`` command calls it at its start (an embedding program's pydantic is left as
it is).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

__all__ = ["declared", "skip_pydantic_plugin_scan"]

_FOUND: dict[tuple[object, tuple[str, ...]], frozenset[str]] = {}
"""The groups found, by where they were looked for (a new path may hold new packages)."""


def declared() -> frozenset[str]:
    """Return the names of the entry-point groups the installed distributions declare."""
    where = (metadata.distributions, tuple(sys.path))
    found = _FOUND.get(where)
    if found is None:
        _FOUND.clear()
        found = _FOUND[where] = frozenset(_groups())
    return found


def _groups() -> set[str]:
    groups: set[str] = set()
    for dist in metadata.distributions():
        text = dist.read_text("entry_points.txt")
        if not text:
            continue
        for line in map(str.strip, text.splitlines()):
            if line.startswith("[") and line.endswith("]"):
                groups.add(line.strip("[]"))
    return groups


def skip_pydantic_plugin_scan() -> None:
    """Tell pydantic it has no plugins if no installed distribution declares a
    ``pydantic`` entry point, before it looks (its first model's build).

    Does nothing where pydantic looked already, where ``PYDANTIC_DISABLE_PLUGINS`` is set
    (pydantic reads it itself), or where its loader is not the one this was written
    against (pydantic 2's ``pydantic.plugin._loader._plugins``, None until it looks).
    """
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") is not None:
        return
    try:
        from pydantic.plugin import _loader
    except ImportError:
        return
    if getattr(_loader, "_plugins", False) is None and "pydantic" not in declared():
        _loader._plugins = {}  # what its look would find: no plugin
