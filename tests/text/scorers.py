"""Small scorers for the text seam's tests: deterministic, one document at a time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradeloom.text.documents import Documents
from tradeloom.text.scoring import DocumentScores


@dataclass
class LengthScorer:
    """Answers each document's length and its count of 'up' minus 'down'; NaN for 'ERR'."""

    cutoff: pd.Timestamp | None = None
    calls: list[int] = field(default_factory=list)

    @property
    def fields(self) -> tuple[str, ...]:
        return ("length", "tone")

    @property
    def identity(self) -> str:
        return "length-v1"

    @property
    def knowledge_cutoff(self) -> pd.Timestamp | None:
        return self.cutoff

    def score(self, documents: Documents) -> DocumentScores:
        self.calls.append(len(documents))
        values = np.empty((len(documents), 2))
        reasons = []
        for i, text in enumerate(documents.texts):
            words = text.lower().split()
            if "err" in words:
                values[i] = np.nan
                reasons.append("no answer")
                continue
            values[i] = (len(text), words.count("up") - words.count("down"))
            reasons.append("")
        return DocumentScores(values, tuple(reasons))
