"""The knowledge-cutoff guard: documents a model may have read about before it scores them.

A scorer that learnt from the world (an LLM, an embedding model) declares the last
moment its training data reaches (`tradeloom.text.scoring.DocumentScorer.knowledge_cutoff`;
a feature may declare its own with ``knowledge_cutoff:``, and ``cutoff_margin:`` beyond
it). A document stamped before the cutoff plus the margin may be one the model read,
with what followed it: scoring it is a look-ahead no bar-by-bar check can see. So
``validate`` refuses a backtest whose scored documents fall there, unless the strategy
accepts the leakage (``leakage: accepted``: a warning in validate, the run's summary
and its report, with the share of bars affected) or masks the documents' entities and
dates before scoring (``mask: [entities, dates]``, `tradeloom.text.masking`), the
mitigation the guard accepts.

Nothing here knows bars: the callers give the decision times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.text.documents import Documents

__all__ = ["MITIGATION", "CutoffGuard", "bars_affected", "leaked"]

MITIGATION: frozenset[str] = frozenset({"entities", "dates"})
"""The masking the guard accepts instead of ``leakage: accepted``: both."""


@dataclass(frozen=True)
class CutoffGuard:
    """What a text feature tells the guard.

    Attributes:
        source: The text source's name (``of``).
        scope: ``symbol`` (a symbol's documents and the market's) or ``global``.
        window_ns: Its aggregation window: a bar sees documents this far back.
        cutoff: The first moment safe from the model's knowledge (the cutoff plus the
            margin); None: no model (a lexicon).
        declared: The cutoff as the feature wrote it (``2025-06``) or its scorer gave it,
            for messages and the report.
        margin: The margin as written (``30d``).
        leakage: ``refused`` or ``accepted``.
        mask: What is masked before scoring (``entities``, ``dates``).
        identity: The scorer's identity (for the report).
    """

    source: str
    scope: str
    window_ns: int
    cutoff: pd.Timestamp | None
    declared: str | None = None
    margin: str = "0d"
    leakage: str = "refused"
    mask: tuple[str, ...] = ()
    identity: str = ""

    @property
    def mitigated(self) -> bool:
        """Whether the documents are masked as the guard accepts (`MITIGATION`)."""
        return set(self.mask) >= MITIGATION


def _seen_rows(
    documents: Documents,
    guard: CutoffGuard,
    symbols: tuple[str, ...] | None,
    first_ns: int | None,
    last_ns: int | None,
) -> npt.NDArray[np.intp]:
    if guard.scope == "global" or symbols is None:
        rows = np.arange(len(documents))
    else:
        wanted = set(symbols)
        rows = np.array(
            [i for i, about in enumerate(documents.symbols) if not about or wanted & set(about)],
            dtype=np.intp,
        )
    visible = documents.visible_ns[rows]
    keep = np.ones(len(rows), dtype=bool)
    if first_ns is not None:
        keep &= visible > first_ns - guard.window_ns
    if last_ns is not None:
        keep &= visible <= last_ns
    return rows[keep]


def leaked(
    documents: Documents,
    guard: CutoffGuard,
    symbols: tuple[str, ...] | None = None,
    first_ns: int | None = None,
    last_ns: int | None = None,
) -> tuple[int, int]:
    """Return ``(before the cutoff, scored)``: how many of the documents some bar sees
    (between the first decision time less the window and the last; None: unbounded) are
    stamped before ``guard.cutoff`` (0 without a cutoff).

    Args:
        documents: The text source's documents.
        guard: The feature's guard.
        symbols: The symbols traded (scope ``symbol`` sees theirs and the market's).
        first_ns: The first bar's decision time (its close), if known.
        last_ns: The last bar's decision time, if known.
    """
    rows = _seen_rows(documents, guard, symbols, first_ns, last_ns)
    if guard.cutoff is None:
        return 0, len(rows)
    before = int((documents.stamped_ns[rows] < guard.cutoff.value).sum())
    return before, len(rows)


def bars_affected(
    documents: Documents,
    guard: CutoffGuard,
    symbol: str,
    decisions: npt.NDArray[np.int64],
) -> int:
    """Return how many of the decision times see a document stamped before the cutoff in
    their window (0 without a cutoff)."""
    if guard.cutoff is None or not len(decisions):
        return 0
    symbols = None if guard.scope == "global" else (symbol,)
    rows = _seen_rows(documents, guard, symbols, None, None)
    early = rows[documents.stamped_ns[rows] < guard.cutoff.value]
    visible = np.sort(documents.visible_ns[early])
    hi = np.searchsorted(visible, decisions, side="right")
    lo = np.searchsorted(visible, decisions - guard.window_ns, side="right")
    return int((hi > lo).sum())
