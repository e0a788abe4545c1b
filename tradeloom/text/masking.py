"""Entity and date masking of a text before a model scores it (the cutoff guard's mitigation).

A model that read the news of its training period may recognise a document it scores
(who, when) and answer from what followed it. Masking takes away what lets it: ``dates``
replaces what reads as a date or a year with ``[DATE]``; ``entities`` replaces the
names of the markets the document is about (``BTC`` and ``USDT`` of ``BTC/USDT``), words
in capitals (tickers, ``SEC``), and capitalised words that do not start a sentence
(``Binance``, ``Jerome Powell``, a run of them as one) with ``[ENTITY]``. It is a
heuristic, no named-entity model: the guide says what it leaves (a name at the start
of a sentence, a lower-case one, an event described in words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["DATE", "ENTITY", "mask_text"]

DATE = "[DATE]"
ENTITY = "[ENTITY]"

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAYS = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_DATES = re.compile(
    "|".join(
        (
            r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?Z?)?\b",  # 2024-03-01
            r"\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b",  # 03/01/2024
            rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b",  # March 1, 2024
            rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?(?:,?\s+\d{{4}})?\b",  # 1 March 2024
            rf"\b{_MONTHS}\.?\s+\d{{4}}\b",  # March 2024
            r"\b[Qq][1-4]\s*'?\d{2,4}\b",  # Q3 2024
            rf"\b{_DAYS}\b",
            r"\b(?:19|20)\d{2}\b",  # a year
        )
    ),
    re.IGNORECASE,
)
_MARKS = ("DATE", "ENTITY")  # the masks' own words
_CAPS = re.compile(r"\b[A-Z][A-Z0-9]{1,9}\b")
_NAME = re.compile(r"\b[A-Z][a-z0-9]+(?:[- ][A-Z][a-z0-9]+)*\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|[\"'(]\s*)$")


def mask_text(text: str, what: Iterable[str], symbols: Iterable[str] = ()) -> str:
    """Return ``text`` with its dates and/or entities masked.

    Args:
        text: A normalised text.
        what: ``dates`` and/or ``entities``.
        symbols: The markets the document is about (their parts are entities).
    """
    chosen = set(what)
    if "dates" in chosen:
        text = _DATES.sub(DATE, text)
    if "entities" in chosen:
        parts = {p for s in symbols for p in re.split(r"[/:\-]", s) if len(p) > 1}
        for part in sorted(parts, key=len, reverse=True):
            text = re.sub(rf"\b{re.escape(part)}\b", ENTITY, text, flags=re.IGNORECASE)
        text = _CAPS.sub(lambda m: m.group(0) if m.group(0) in _MARKS else ENTITY, text)
        text = _NAME.sub(lambda m: _name(m, text), text)
        text = re.sub(rf"(?:{re.escape(ENTITY)}\s*)+{re.escape(ENTITY)}", ENTITY, text)
    return text


def _name(match: re.Match[str], text: str) -> str:
    if _SENTENCE_START.search(text[: match.start()]):
        return match.group(0)  # a sentence's first word: capitalised as any word is
    return ENTITY
