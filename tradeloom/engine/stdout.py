"""What to do when stdout's reader goes away (``tradeloom ... | head``, a lost terminal)."""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["silence_stdout"]


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that later prints and the interpreter's exit are quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
