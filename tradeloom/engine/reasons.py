"""An operator's reason for a kill, a flatten or a resume: one line of plain text.

A reason is journaled (``control_request``, the halt's message) and shown by ``tradeloom
status``, the console and the logs. A line break, a tab, a terminal's escape sequence, an
invisible or a reordering mark would split those lines or disguise what they say, so one
rule holds at every door (`reason_problem`): the command line's ``--reason``, the
console's and the API's ``reason`` (400), and a request file in ``control/``
(`tradeloom.engine.control`). The first line of the ``RUN_DIR/KILL`` file is the one
reason never refused, since the file is the operator's switch: its control characters
are written as escapes instead (`escaped`).
"""

from __future__ import annotations

import unicodedata

__all__ = ["REASON_LIMIT", "escaped", "reason_problem"]

REASON_LIMIT = 500
"""The most characters a reason may have."""

_CONTROL = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""The Unicode categories refused: controls (C0, DEL, C1: line feed, carriage return,
tab, escape...), format characters (zero-width, bidirectional overrides), lone
surrogates, and the line and paragraph separators."""

_NAMES = {
    "\x00": "NUL",
    "\t": "tab",
    "\n": "line feed",
    "\r": "carriage return",
    "\x1b": "escape",
    "\x7f": "delete",
    "\u2028": "line separator",
    "\u2029": "paragraph separator",
}


def reason_problem(reason: str) -> str | None:
    """Return what makes ``reason`` unfit to journal (None: it is fit).

    Fit is one line of at most `REASON_LIMIT` characters without a control character
    (`_CONTROL`); the answer names the first one and where it is, e.g. ``one line
    without control characters, has U+000D (carriage return) at character 4``.
    """
    if len(reason) > REASON_LIMIT:
        return f"one line of at most {REASON_LIMIT} characters, was {len(reason)}"
    for at, char in enumerate(reason, start=1):
        if unicodedata.category(char) in _CONTROL:
            return f"one line without control characters, has {_named(char)} at character {at}"
    return None


def escaped(text: str) -> str:
    """Return ``text`` with each control character written as its escape (``\\x1b``)."""
    return "".join(
        ascii(char)[1:-1] if unicodedata.category(char) in _CONTROL else char for char in text
    )


def _named(char: str) -> str:
    code = f"U+{ord(char):04X}"
    name = _NAMES.get(char)
    if name is None:
        kinds = {"Cf": "a format character", "Cs": "a lone surrogate"}
        name = kinds.get(unicodedata.category(char), "a control character")
    return f"{code} ({name})"
