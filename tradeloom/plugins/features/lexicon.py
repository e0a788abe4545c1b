"""The ``lexicon`` feature: each document scored by a word list the user declares, per bar.

No model: a file of terms and weights (`tradeloom.text.lexicon` documents the
tokenisation, the negation and the rules), a document's ``score`` and ``hits``
aggregated per bar over the documents visible at its close by the text feature base
(`tradeloom.plugins.features.text`). Columns: ``<name>_score``, ``<name>_hits``,
``<name>_count`` (default name: ``lexicon``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.features.text import TextFeature, TextFeatureParams, build_text_feature
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.text.documents import Documents
from tradeloom.text.lexicon import Lexicon, LexiconError, read_lexicon
from tradeloom.text.scoring import DocumentScores

__all__ = ["LexiconParams", "LexiconScorer", "build_lexicon"]


class LexiconParams(TextFeatureParams):
    """Keys of ``lexicon`` (and the text feature keys); columns ``<name>_score``,
    ``<name>_hits``, ``<name>_count``."""

    lexicon: str = Field(
        min_length=1,
        description="The word list: a CSV file with columns term and weight, or a YAML "
        "mapping of term to weight (or terms: and negators:); relative to the strategy file.",
    )
    rule: Literal["sum", "mean", "normalised"] = Field(
        default="sum",
        description="A document's score: sum of its terms' weights, their mean, or the sum "
        "normalised into (-1, 1) as sum / sqrt(sum^2 + 15).",
    )
    negators: list[str] | None = Field(
        default=None,
        description="Words that flip the sign of the terms after them (any word ending in "
        "n't does too); omitted: the file's, else not, no, never, none, nobody, nothing, "
        "neither, nor, without, cannot.",
    )
    negation_window: int = Field(
        default=3, ge=0, le=50, description="How many words after a negator are flipped."
    )
    case_sensitive: bool = Field(
        default=False, description="Match terms as written instead of case-folded."
    )
    title: bool = Field(
        default=True, description="Score the title with the text (title, then text)."
    )


@dataclass(frozen=True)
class LexiconScorer:
    """Implements `tradeloom.text.scoring.DocumentScorer` with a `Lexicon`."""

    lexicon: Lexicon
    title: bool = True

    @property
    def fields(self) -> tuple[str, ...]:
        """``score`` and ``hits``."""
        return ("score", "hits")

    @property
    def identity(self) -> str:
        """The lexicon's digest and whether titles are read."""
        return f"lexicon:{self.lexicon.digest}:{'title' if self.title else 'text'}"

    @property
    def knowledge_cutoff(self) -> pd.Timestamp | None:
        """None: a lexicon learnt nothing of the world."""
        return None

    def score(self, documents: Documents) -> DocumentScores:
        """Score every document (never NaN: a text with no term scores 0 with 0 hits)."""
        texts = documents.texts
        if self.title:
            texts = tuple(
                f"{title} {text}" if title else text
                for title, text in zip(documents.titles, texts, strict=True)
            )
        values = self.lexicon.score_many(texts)
        return DocumentScores(values, ("",) * len(documents))


def build_lexicon(params: LexiconParams, ctx: BuildContext) -> TextFeature:
    """Return the feature; its lexicon file must be readable and sound.

    Raises:
        ParamError: On ``lexicon``, the file's problem; a column defined already.
    """
    path = ctx.resolve_path(params.lexicon)
    if not path.is_file():
        raise ParamError("lexicon", f"file not found: {path}")
    try:
        lexicon = read_lexicon(
            path,
            negators=tuple(params.negators) if params.negators is not None else None,
            negation_window=params.negation_window,
            rule=params.rule,
            case_sensitive=params.case_sensitive,
        )
    except LexiconError as exc:
        raise ParamError("lexicon", str(exc)) from None
    return build_text_feature(
        params, LexiconScorer(lexicon, params.title), ctx, default_name="lexicon"
    )
