"""The user's cache folder for tradeloom, one rule for every cache that lives there.

The compiled kernels (``kernels/``, `tradeloom.kernels.cache_root`) and the dataclasses'
compiled code (``code/``, `tradeloom.runtime.dataclass_code`) keep a folder inside it;
the exchange bars' cache (`tradeloom.plugins.data.ohlcv_cache`) is the folder itself.
Each may be moved on its own by its own variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["cache_home"]


def cache_home(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$XDG_CACHE_HOME/tradeloom``, or ``~/.cache/tradeloom`` where it is unset
    or empty (the XDG base directory rule)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "tradeloom"
