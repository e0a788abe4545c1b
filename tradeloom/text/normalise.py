"""The one normalisation of a document's text, used by every mode and every reader.

A backtest, a paper run and a live run read the same file through this function, so a
scorer sees the same characters wherever it runs: Unicode NFC (a composed "é" and an
"e" with a combining accent are one letter), control characters dropped, every run of
whitespace (newlines and tabs too) one space, no space at either end.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalise_text"]

_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalise_text(text: str) -> str:
    """Return ``text`` in NFC, without control characters, whitespace collapsed and trimmed."""
    # printable ASCII is its own NFC and holds no control character: only the spaces matter
    if text.isascii() and text.isprintable() and "  " not in text and text == text.strip():
        return text
    text = unicodedata.normalize("NFC", text)
    return _SPACE.sub(" ", _CONTROL.sub("", text)).strip()
