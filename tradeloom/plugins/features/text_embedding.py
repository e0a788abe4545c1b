"""The ``text_embedding`` feature: each document a sentence embedding, per bar, projected
to a few components inside each walk-forward fold.

A local model (`tradeloom.text.embedding`, wordllama's packaged ``l2_supercat``: no
network) turns each document into a vector; the text feature base
(`tradeloom.plugins.features.text`) averages the vectors of the documents visible at a
bar's close within ``window`` (with ``half_life``'s decay). Those 64 to 256 columns are
the feature's; with ``components`` (default 4) it is a
`tradeloom.plugins.protocols.FoldFittedFeature`: the model replaces them by their first
principal components, fitted inside each walk-forward fold on that fold's training rows
only and saved with the fold (`tradeloom.plugins.model.fold_transforms.Projection`), so
no fold learns its axes from the bars it predicts, and paper and live project with the
backtest's axes. Columns: ``<name>_dim000`` ... and ``<name>_count`` (default name
``embedding``); the model sees ``<name>_count`` and the components.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from pydantic import Field

from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.features.text import (
    TextFeature,
    TextFeatureParams,
    build_text_feature,
    parse_cutoff,
)
from tradeloom.plugins.protocols import FoldTransform

__all__ = ["EmbeddingParams", "ProjectedTextFeature", "build_text_embedding"]


class EmbeddingParams(TextFeatureParams):
    """Keys of ``text_embedding`` (and the text feature keys); columns
    ``<name>_dim000``..., ``<name>_count``."""

    knowledge_cutoff: str = Field(
        description="Required: the embedding model's knowledge cutoff (YYYY-MM or "
        "YYYY-MM-DD); validate refuses documents before it. Only you know what the model you "
        "chose was trained on; for the packaged l2_supercat, its weights were published by "
        "2024-07 and this wheel was built 2025-12.",
    )
    model: str = Field(
        default="l2_supercat",
        description="A wordllama model name (the name its loader would fetch from the hub); "
        "l2_supercat ships inside the wordllama wheel.",
    )
    model_dir: str | None = Field(
        default=None,
        description="A folder holding the model's files as wordllama's cache lays them out "
        "(weights/<model>_256.safetensors, tokenizers/...), relative to the strategy file; "
        "omitted: the model wordllama ships. Nothing is ever downloaded.",
    )
    dimensions: Literal[64, 128, 256] = Field(
        default=256,
        description="Keep the model's first 64, 128 or all 256 dimensions (it is trained so "
        "that the first ones work alone).",
    )
    components: int | None = Field(
        default=4,
        ge=1,
        le=64,  # dimensions are at least 64
        description="Principal components the model sees, fitted inside each walk-forward "
        "fold on its training rows; null: every dimension, unprojected.",
    )
    title: bool = Field(
        default=True, description="Embed the title with the text (title, then text)."
    )
    batch_size: int = Field(
        default=256, ge=1, description="Documents embedded at once (changes no number)."
    )


@dataclass(eq=False)
class ProjectedTextFeature(TextFeature):
    """A text feature whose vector columns the model sees only as ``components``
    principal components fitted per fold (`FoldFittedFeature`)."""

    components: int = 4

    def fold_transform(self) -> FoldTransform:
        """Return the vector columns (not the count) and their unfitted `Projection`."""
        from tradeloom.plugins.model.fold_transforms import Projection

        return FoldTransform(tuple(self.columns()[:-1]), Projection(self.components))


def build_text_embedding(params: EmbeddingParams, ctx: BuildContext) -> TextFeature:
    """Return the feature, its model loaded (its file hashed for the scorer's identity).

    Raises:
        ParamError: On ``model`` or ``model_dir``, a model that cannot be loaded; a
            column defined already.
    """
    from tradeloom.errors import UserError
    from tradeloom.text.embedding import EmbeddingScorer

    folder = ctx.resolve_path(params.model_dir) if params.model_dir is not None else None
    try:
        scorer = EmbeddingScorer(
            knowledge_cutoff=parse_cutoff(params.knowledge_cutoff),
            model=params.model,
            model_dir=folder,
            dimensions=params.dimensions,
            batch_size=params.batch_size,
            title=params.title,
        )
    except UserError as exc:
        raise ParamError("model" if folder is None else "model_dir", str(exc)) from None
    feature = build_text_feature(params, scorer, ctx, default_name="embedding")
    if params.components is None:
        return feature
    # every field the base set (mask, cutoff, ...), the scorer's state handed over as is
    kept = {f.name: getattr(feature, f.name) for f in fields(TextFeature) if f.init}
    return ProjectedTextFeature(**kept, components=params.components)
