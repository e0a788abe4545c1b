"""A lexicon: terms and weights a user declares, and the rule that scores a text with them.

Tokens: the text is case-folded (`str.casefold`, unless the lexicon is case-sensitive)
and split into words: runs of letters and digits, an apostrophe inside a word kept
(``don't`` is one token); everything else separates. A term may be several words
(``rate cut``): at each token the longest term that starts there matches, and its
tokens are used up.

Negation: a negator (``not``, ``no``, ``never``... or any token ending in ``n't``)
flips the sign of the terms that start within the next ``negation_window`` tokens
(``not good`` scores as ``-good``); a negator is never a term itself.

A text's numbers: ``score`` by the declared rule over the matched terms' (signed)
weights, and ``hits``, how many terms matched:

* ``sum``: the sum of the weights;
* ``mean``: their mean (NaN-free: 0.0 when nothing matched);
* ``normalised``: ``sum / sqrt(sum**2 + 15)``, in (-1, 1) (VADER's normalisation, alpha 15).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "DEFAULT_NEGATORS",
    "Lexicon",
    "LexiconError",
    "Rule",
    "read_lexicon",
    "tokenise",
]

Rule = Literal["sum", "mean", "normalised"]

DEFAULT_NEGATORS: tuple[str, ...] = (
    "not",
    "no",
    "never",
    "none",
    "nobody",
    "nothing",
    "neither",
    "nor",
    "without",
    "cannot",
)
"""Negators when the lexicon declares none (with any token ending in ``n't``)."""

_ALPHA = 15.0
_CHUNK = 8192  # texts scored at once (each text's words are counted alone: same numbers)
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_WORD_OR_BREAK = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\n")


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and line."""


def tokenise(text: str, *, case_sensitive: bool = False) -> list[str]:
    """Return the words of ``text`` (case-folded unless ``case_sensitive``)."""
    text = text.replace("\u2019", "'")
    words: list[str] = _WORD.findall(text if case_sensitive else text.casefold())
    return words


@dataclass(frozen=True)
class Lexicon:
    """Terms (tuples of tokens) and their weights, and how a text is scored with them.

    Attributes:
        weights: Weight per term, a term being its tokens.
        negators: Tokens that flip the sign of the terms after them.
        negation_window: How many tokens after a negator are flipped.
        rule: ``sum``, ``mean`` or ``normalised``.
        case_sensitive: Whether terms match case as written.
    """

    weights: Mapping[tuple[str, ...], float]
    negators: frozenset[str]
    negation_window: int = 3
    rule: Rule = "sum"
    case_sensitive: bool = False

    @cached_property
    def longest(self) -> int:
        """The most tokens a term has."""
        return max((len(t) for t in self.weights), default=1)

    @property
    def digest(self) -> str:
        """A hash of everything that changes a score (for a scorer's identity)."""
        payload = {
            "terms": sorted([" ".join(t), w] for t, w in self.weights.items()),
            "negators": sorted(self.negators),
            "window": self.negation_window,
            "rule": self.rule,
            "case": self.case_sensitive,
        }
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]

    def score(self, text: str) -> tuple[float, float]:
        """Return ``(score, hits)`` of ``text`` (see the module docstring)."""
        row = self.score_many([text])[0]
        return float(row[0]), float(row[1])

    def score_many(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Return ``(len(texts), 2)``: each text's score and hits, as `score` says.

        Terms of one word (most lexicons) are scored for all texts at once: each distinct
        word is looked up once, the negation found with a running maximum of the last
        negator's place; the sums are `numpy.bincount`'s, which adds each text's weights
        in order from 0.0 as the loop over a text's words (`_score_phrases`) does.
        """
        if self.longest > 1:
            return np.array([self._score_phrases(t) for t in texts], dtype=np.float64)
        if len(texts) > _CHUNK:  # in chunks: the words of a chunk at a time in memory
            parts = [self.score_many(texts[i : i + _CHUNK]) for i in range(0, len(texts), _CHUNK)]
            return np.concatenate(parts)
        n = len(texts)
        # every text at once, a newline between two (a normalised text has none; another's
        # become spaces), rather than a call per text
        joined = "\n".join(t.replace("\n", " ") for t in texts).replace("\u2019", "'")
        ids, owner, words = _tokens(joined if self.case_sensitive else joined.casefold())
        lengths = np.bincount(owner, minlength=n)
        weights = self.weights
        weight_of = np.array([weights.get((w,), np.nan) for w in words], dtype=np.float64)
        weight_of = np.append(weight_of, np.nan)  # (an empty vocabulary indexes nothing)
        negators = self.negators
        negator_of = np.array(
            [w in negators or w.endswith("n't") for w in words] + [False], dtype=bool
        )
        weight = weight_of[ids]
        negates = negator_of[ids]
        place = np.arange(len(ids))
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        last = np.maximum.accumulate(np.where(negates, place, -1)) if len(ids) else place
        flipped = (last >= starts) & (place <= last + self.negation_window)
        matched = ~np.isnan(weight)
        signed = np.where(flipped, -weight, weight)
        total = np.bincount(owner[matched], weights=signed[matched], minlength=n).astype(np.float64)
        hits = np.bincount(owner[matched], minlength=n).astype(np.float64)
        return np.stack([self._rule(total, hits), hits], axis=1)

    def _rule(
        self, total: npt.NDArray[np.float64], hits: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        if self.rule == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(hits > 0, total / np.where(hits > 0, hits, 1.0), 0.0)
        if self.rule == "normalised":
            return total / np.sqrt(total * total + _ALPHA)
        return total

    def _score_phrases(self, text: str) -> tuple[float, float]:
        tokens = tokenise(text, case_sensitive=self.case_sensitive)
        weights = self.weights
        negators = self.negators
        longest = self.longest
        total = 0.0
        hits = 0
        flipped_until = -1
        i = 0
        n = len(tokens)
        while i < n:
            token = tokens[i]
            if token in negators or token.endswith("n't"):
                flipped_until = i + self.negation_window
                i += 1
                continue
            match = 0
            weight = 0.0
            if longest == 1:
                found = weights.get((token,))
                if found is not None:
                    match, weight = 1, found
            else:
                for size in range(min(longest, n - i), 0, -1):
                    found = weights.get(tuple(tokens[i : i + size]))
                    if found is not None:
                        match, weight = size, found
                        break
            if match:
                total += -weight if i <= flipped_until else weight
                hits += 1
                i += match
            else:
                i += 1
        row = self._rule(np.array([total]), np.array([float(hits)]))
        return float(row[0]), float(hits)


_WORD_CHAR = re.compile(r"[^\W_]")
_APOSTROPHE = ord("'")
_BREAK = ord("\n")


@cache
def _ascii_word() -> npt.NDArray[np.bool_]:
    """Return, for each byte value below 128, whether `_WORD` reads it as a letter or digit."""
    return np.array([bool(_WORD_CHAR.match(chr(c))) for c in range(128)], dtype=bool)


def _tokens(
    joined: str,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], list[str]]:
    """Return the words of texts joined by newlines: each word's id in the vocabulary, the
    text it belongs to (in order), and the vocabulary.

    The words are `_WORD_OR_BREAK`'s, found by numpy over the characters' codes and
    counted by Arrow's dictionary encoding, without a Python string per word: a word is a
    run of letters and digits (`_WORD_CHAR`, asked once per distinct character beyond
    ASCII) and apostrophes each between two of them. A text holding a lone surrogate (no
    UTF-8) is read by the pattern itself.
    """
    try:
        data = joined.encode("utf-8")
    except UnicodeEncodeError:
        return _pattern_tokens(joined)
    import pyarrow as pa

    table = _ascii_word()
    if joined.isascii():
        codes = np.frombuffer(data, dtype=np.uint8)
        word = table[codes]
        widths = None
    else:
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        low = codes < 128
        word = np.zeros(len(codes), dtype=bool)
        word[low] = table[codes[low]]
        high = np.flatnonzero(~low)
        distinct, which = np.unique(codes[high], return_inverse=True)
        known = [bool(_WORD_CHAR.match(chr(c))) for c in distinct.tolist()]
        word[high] = np.asarray(known, dtype=bool)[which]
        widths = 1 + (codes >= 0x80).astype(np.int64) + (codes >= 0x800) + (codes >= 0x10000)
    inner = np.zeros(len(codes), dtype=bool)  # an apostrophe between two word characters
    inner[1:-1] = (codes[1:-1] == _APOSTROPHE) & word[:-2] & word[2:]
    token = word | inner
    edges = np.diff(token.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    owner = np.searchsorted(np.flatnonzero(codes == _BREAK), starts)
    if widths is None:
        inside = token
        lengths = np.flatnonzero(edges == -1) - starts
    else:
        inside = np.repeat(token, widths)
        places = np.concatenate(([0], np.cumsum(widths)))
        lengths = places[np.flatnonzero(edges == -1)] - places[starts]
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    kept = np.frombuffer(data, dtype=np.uint8)[inside]
    words = pa.LargeStringArray.from_buffers(
        len(starts), pa.py_buffer(offsets), pa.py_buffer(kept)
    ).dictionary_encode()
    ids = words.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    return ids, owner.astype(np.intp), [str(w) for w in words.dictionary.to_pylist()]


def _pattern_tokens(
    joined: str,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], list[str]]:
    tokens = _WORD_OR_BREAK.findall(joined)
    every, vocabulary = pd.factorize(np.asarray(tokens, dtype=object))
    words = [str(w) for w in vocabulary]
    breaks = every == (words.index("\n") if "\n" in words else -1)
    return every[~breaks], np.cumsum(breaks)[~breaks], words


def read_lexicon(
    path: Path,
    *,
    negators: tuple[str, ...] | None = None,
    negation_window: int = 3,
    rule: Rule = "sum",
    case_sensitive: bool = False,
) -> Lexicon:
    """Read a lexicon file: CSV (columns ``term`` and ``weight``) or YAML (a mapping of
    term to weight, or ``{terms: {...}, negators: [...]}``).

    Args:
        path: The file (``.yaml``/``.yml``: YAML, else CSV).
        negators: Negators declared by the feature; None: the file's, else
            `DEFAULT_NEGATORS`.
        negation_window: Tokens flipped after a negator.
        rule: How a text's weights become its score.
        case_sensitive: Match case as written.

    Raises:
        LexiconError: The file cannot be read, a weight is not a number, a term is
            empty or given twice, or no term is left.
    """
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LexiconError(f"{path}: cannot read it: {exc}") from None
    declared: list[str] | None = None
    entries: list[tuple[int, str, object]] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            loaded = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise LexiconError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
        if isinstance(loaded, dict) and "terms" in loaded:
            if not isinstance(loaded.get("negators", []), list):
                raise LexiconError(f"{path}: negators must be a list of words")
            declared = [str(n) for n in loaded.get("negators", [])]
            loaded = loaded["terms"]
        if not isinstance(loaded, dict):
            raise LexiconError(
                f"{path}: expected a mapping of term to weight (or terms: and negators:)"
            )
        entries = [(0, str(term), weight) for term, weight in loaded.items()]
    else:
        reader = csv.reader(raw.splitlines())
        header = [h.strip().lower() for h in next(reader, [])]
        if "term" not in header or "weight" not in header:
            raise LexiconError(f"{path}: expected columns term and weight; found {header}")
        t, w = header.index("term"), header.index("weight")
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) <= max(t, w):
                raise LexiconError(f"{path}:{line}: expected a term and a weight")
            entries.append((line, row[t], row[w]))
    weights: dict[tuple[str, ...], float] = {}
    for line, term, weight in entries:
        where = f"{path}:{line}" if line else f"{path}"
        tokens = tuple(tokenise(term, case_sensitive=case_sensitive))
        if not tokens:
            raise LexiconError(f"{where}: term '{term}' has no word")
        try:
            value = float(weight)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise LexiconError(
                f"{where}: weight of '{term}' must be a number; was '{weight}'"
            ) from None
        if not math.isfinite(value):
            raise LexiconError(f"{where}: weight of '{term}' must be finite; was '{weight}'")
        if tokens in weights:
            raise LexiconError(f"{where}: term '{term}' is given twice; keep one")
        weights[tokens] = value
    if not weights:
        raise LexiconError(f"{path}: no terms")
    chosen = negators if negators is not None else declared
    words = DEFAULT_NEGATORS if chosen is None else tuple(chosen)
    folded = frozenset(w if case_sensitive else w.casefold() for w in words)
    clash = sorted(" ".join(t) for t in weights if len(t) == 1 and t[0] in folded)
    if clash:
        raise LexiconError(f"{path}: '{clash[0]}' is a negator and a term; keep it in one")
    return Lexicon(weights, folded, negation_window, rule, case_sensitive)
