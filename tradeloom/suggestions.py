"""Did you mean: the one rule every suggestion for a misspelt name follows.

A misspelt key, plugin kind, objective, panel, calendar, route or command-line choice
is answered with the one name it most likely misspells, chosen here and nowhere else,
so that ``kind: RSI`` and ``--objective SHARPE`` are helped alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["CUTOFF", "closest", "did_you_mean"]

CUTOFF = 0.6
"""The least difflib ratio, of the two names in lower case, that counts as a misspelling."""


def closest(word: object, choices: Iterable[object]) -> str | None:
    """Return the one of ``choices`` that ``word`` most likely misspells, or None.

    Case is not a difference (``RSI`` means ``rsi``). Otherwise the nearest choice by
    difflib's ratio, compared in lower case, at `CUTOFF` or more; of two equally near,
    the one that shares the longer start with ``word`` (``XNYZ``: ``XNYS``), then
    difflib's order (the later in the alphabet). Of two choices that differ only in case,
    the first is named.

    Args:
        word: What the user wrote (any value: it is read as text).
        choices: The names that are valid there.

    Returns:
        The choice as it is spelt among ``choices``, or None when none is near.
    """
    folded: dict[str, str] = {}
    for choice in choices:
        folded.setdefault(str(choice).casefold(), str(choice))
    typed = str(word).casefold()
    if typed in folded:
        return folded[typed]
    near = difflib.get_close_matches(typed, list(folded), n=len(folded) or 1, cutoff=CUTOFF)
    if not near:
        return None
    matcher = difflib.SequenceMatcher(b=typed)

    def rank(choice: str) -> tuple[float, int]:
        matcher.set_seq1(choice)
        return matcher.ratio(), _shared_start(choice, typed)

    return folded[max(near, key=rank)]  # of equals, the first in difflib's order


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """Return `` (did you mean 'x'?)`` for the `closest` of ``choices``, or an empty string."""
    near = closest(word, choices)
    return f" (did you mean '{near}'?)" if near is not None else ""


def _shared_start(a: str, b: str) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count
