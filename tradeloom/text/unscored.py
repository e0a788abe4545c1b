"""The journal's rows for documents a scorer left NaN, one per document, with why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloom.journal.events.documents import DocumentUnscored
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    from tradeloom.text.documents import Documents
    from tradeloom.text.scoring import DocumentScores

__all__ = ["unscored_events"]


def unscored_events(
    feature: str, documents: Documents, scores: DocumentScores
) -> list[DocumentUnscored]:
    """Return a `DocumentUnscored` for each document ``scores`` gives a reason for.

    Args:
        feature: The text feature that asked (its column prefix).
        documents: The documents scored.
        scores: What the scorer answered for them, row for row.
    """
    return [
        DocumentUnscored(
            feature=feature,
            document_id=documents.ids[row],
            visible=pd.Timestamp(int(documents.visible_ns[row]), tz="UTC"),
            reason=reason,
        )
        for row, reason in enumerate(scores.reasons)
        if reason
    ]
