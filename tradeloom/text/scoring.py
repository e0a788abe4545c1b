"""The protocol of a document scorer: one document in, a few named numbers out.

A scorer knows nothing of bars or time: the text feature plugins ask it to score the
documents of a source and aggregate the answers per bar over what is visible at each
bar's decision time. Scorers: a lexicon (`tradeloom.plugins.features`), a local
embedding model, an LLM behind an OpenAI-compatible endpoint; a third-party package
adds its own by implementing this protocol.

A scorer never raises for one document it cannot score: that document's row is NaN
and ``reasons`` says why (the run journals it). It raises `tradeloom.errors.UserError`
(or a subclass) only for what stops every document: a missing model, a bad prompt
file, an endpoint refused at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

    from tradeloom.text.documents import Documents

__all__ = ["DocumentScorer", "DocumentScores"]


@dataclass(frozen=True, eq=False)
class DocumentScores:
    """What a scorer answered for a batch of documents.

    Attributes:
        values: float64, shape ``(documents, len(scorer.fields))``; a row of NaN where
            the document got no answer.
        reasons: One per document: ``""`` where scored, else why not, in one line
            (``"timeout after 3 tries"``, ``"answer not JSON: 'Sure! ...'"``).
    """

    values: npt.NDArray[np.float64]
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[0] != len(self.reasons):
            raise ValueError(
                f"DocumentScores: values of shape {self.values.shape} for "
                f"{len(self.reasons)} reasons"
            )


@runtime_checkable
class DocumentScorer(Protocol):
    """Turns documents into numbers, the same numbers in every mode for the same input.

    ``identity`` names everything that changes an answer (model, its version or file
    hash, prompt or lexicon hash, fields): two scorers of equal identity answer alike,
    so caches key on it and the report shows it. ``knowledge_cutoff`` is the last
    moment the model may know of (its training data's end), ``None`` for a scorer that
    learnt nothing of the world (a lexicon): `validate` refuses documents scored before
    it unless the strategy accepts the leakage.
    """

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the numbers answered per document, in column order."""
        ...

    @property
    def identity(self) -> str:
        """A stable string naming all that changes an answer (for caches and reports)."""
        ...

    @property
    def knowledge_cutoff(self) -> pd.Timestamp | None:
        """The model's declared knowledge cutoff (UTC), or ``None`` for no model."""
        ...

    def score(self, documents: Documents) -> DocumentScores:
        """Score every document; a row of NaN with its reason where one cannot be."""
        ...
