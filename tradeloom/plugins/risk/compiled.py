"""What a sizing that only the compiled core computes answers when asked in Python."""

from __future__ import annotations

from typing import NoReturn

__all__ = ["compiled_only"]


def compiled_only(kind: str) -> NoReturn:
    """Raise: ``kind``'s estimate lives in the core's state, which a Python call lacks.

    A portfolio file refuses these sizings when it loads (its books size in Python), so
    this is reached only by a caller that bypassed the loader.
    """
    raise RuntimeError(
        f"sizing kind {kind} runs in the compiled core only (its kernel_spec); "
        "it has no Python size()"
    )
