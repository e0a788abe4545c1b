"""Text features: per-document scores aggregated per bar, the base every text feature kind uses.

A text feature reads a text source of the data (``data.auxiliary`` entry of kind
``text``, named by ``of:``), asks a `tradeloom.text.scoring.DocumentScorer` to score its
documents, and aggregates the scores per bar over the documents visible at the bar's
decision time (its close) within ``window`` (`tradeloom.text.aggregation`). Its columns
are ``<name>_<field>`` for each of the scorer's fields, then ``<name>_count``.

How a new scorer kind is built on it (the lexicon in `tradeloom.plugins.features.lexicon`
is the model; an LLM scorer and a local embedding scorer are built the same way)::

    class LlmParams(TextFeatureParams):          # the shared keys: of, window, half_life,
        prompt: str                              # aggregate, scope, empty, name, and the
        endpoint: str                            # cutoff keys; add the scorer's own
        ...

    def build_llm(params: LlmParams, ctx: BuildContext) -> TextFeature:
        scorer = LlmScorer(...)                  # implements DocumentScorer
        return build_text_feature(params, scorer, ctx, default_name="llm")

    # and in the plugin's components: Component("features", "llm_score", LlmParams,
    # build_llm, summary=...) (a built-in: a LazyComponent in plugins/features/__init__.py)

Where the documents come from: the data source puts each text source's `Documents` in
`Bars.documents` (``compute``) and a `DocumentFeed` per source in
`StepContext.documents` (``stepper``; a paper or live run's file, read again as it
grows). A scorer never sees bars. Why a document got no score (a row of NaN) is kept in
`TextFeature.reasons` by id. A new built-in kind joins the built-in features' proofs:
tests/plugins/features/test_feature_{params,inputs,parity,causality}.py and
tests/diagnostics/test_lookahead.py's ``FEATURE_KEYS`` (tests/fixtures/text/words.csv
and the drawn documents there show how the lexicon does).

What the base does for every kind, so a scorer does none of it:

* it picks the documents a bar's symbol sees (``scope: symbol``: those about the symbol
  and those about the whole market, ``symbols == ()``; ``scope: global``: all);
* it scores each document once per feature instance (a cache by id and text), only the
  documents some bar can see (visible by the last bar's close, not older than the
  window before the first), and in a paper or live run only the new ones as they
  arrive: a scorer must answer a document the same whether it is scored alone or in a
  batch (an LLM's answers cached by document, a fixed model);
* the batch form (``compute``) and the stepped form (``stepper``, paper and live) call
  the same kernel, so they agree bit for bit;
* ``check-lookahead`` hands it, at each cut, only the documents visible by the cut's
  close: a scorer that looks at other documents than the one it scores (a projection
  fitted on all of them) moves a past row and is caught.

A scorer that must be fitted (a projection of embeddings fitted inside each walk-forward
fold) overrides `TextFeature.scores` or builds its feature as a subclass; the
aggregation and the columns stay the base's.

Knowledge cutoff: ``knowledge_cutoff`` (this file's key, else the scorer's property)
and ``cutoff_margin`` make `TextFeature.cutoff` (`cutoff_of`); `TextFeature.cutoff_guard`
is what ``validate`` checks (`tradeloom.text.cutoff`): documents scored before it are
refused unless ``leakage: accepted`` (a warning) or ``mask: [entities, dates]`` (the base
masks each text before the scorer sees it, `tradeloom.text.masking`). A scorer kind
needs nothing for this but its ``knowledge_cutoff`` property.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import Field, field_validator

from tradeloom.domain import Bar, Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError, Params
from tradeloom.plugins.data.auxiliary import parse_delay
from tradeloom.plugins.features._base import ColumnName, check_new_columns
from tradeloom.plugins.protocols_steps import DocumentFeed, FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.text.aggregation import AggregateStep, Aggregation, aggregate
from tradeloom.text.cutoff import CutoffGuard
from tradeloom.text.documents import Documents
from tradeloom.text.masking import mask_text
from tradeloom.text.scoring import DocumentScorer
from tradeloom.time.timeframes import format_timestamp

__all__ = [
    "TextFeature",
    "TextFeatureParams",
    "build_text_feature",
    "cutoff_of",
    "declared_cutoff",
    "parse_cutoff",
]

_SECOND = 1_000_000_000
_CUTOFF = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


def parse_cutoff(text: str) -> pd.Timestamp:
    """Return a knowledge cutoff as the first moment the model knows nothing of (UTC).

    ``2025-06`` is the end of June 2025 (2025-07-01T00:00Z); ``2025-06-15`` the end of
    that day. A model may know anything before it.

    Raises:
        ValueError: Not ``YYYY-MM`` or ``YYYY-MM-DD``.
    """
    value = text.strip() if isinstance(text, str) else ""
    try:
        if not _CUTOFF.match(value):
            raise ValueError(value)
        start = pd.Timestamp(value, tz="UTC")
    except ValueError:
        raise ValueError(
            f"must be a month (YYYY-MM, e.g. 2025-06) or a day (YYYY-MM-DD); was '{text}'"
        ) from None
    if len(value) == 7:
        return start + pd.offsets.MonthBegin(1)
    return start + pd.Timedelta(days=1)


class TextFeatureParams(Params):
    """Keys every text feature kind shares; a kind's params model subclasses it."""

    of: str = Field(
        min_length=1,
        description="The text source: the name of a data.auxiliary entry of kind text.",
    )
    window: str = Field(
        default="1d",
        description="Documents visible within this long before a bar's close count, such as "
        "4h or 1d (a whole number and s, m, h, d or w).",
    )
    half_life: str | None = Field(
        default=None,
        description="Exponential decay: a document's weight halves every half_life (such as "
        "6h); omitted: every document in the window weighs the same.",
    )
    aggregate: Literal["mean", "sum"] = Field(
        default="mean", description="mean or sum of the documents' (weighted) scores."
    )
    scope: Literal["symbol", "global"] = Field(
        default="symbol",
        description="symbol: a symbol's bars see documents about it and those about the "
        "whole market; global: every document.",
    )
    empty: Literal["zero", "nan"] = Field(
        default="zero",
        description="A field's value at a bar with no scored document in its window: 0.0 "
        "or NaN (the count column says how many documents there were).",
    )
    name: ColumnName = Field(
        default=None,
        description="The columns' prefix: <name>_<field> and <name>_count; default: the kind's.",
    )
    knowledge_cutoff: str | None = Field(
        default=None,
        description="The scoring model's knowledge cutoff (YYYY-MM or YYYY-MM-DD), instead "
        "of the one its scorer declares; validate refuses documents before it.",
    )
    cutoff_margin: str = Field(
        default="0d",
        description="Documents before the cutoff plus this margin (such as 30d) count as "
        "known to the model too.",
    )
    leakage: Literal["refused", "accepted"] = Field(
        default="refused",
        description="accepted: run although documents fall before the cutoff (a warning in "
        "validate, the run's summary and its report names the share of bars affected).",
    )
    mask: list[Literal["entities", "dates"]] = Field(
        default_factory=list,
        description="Mask the text before scoring: entities (the markets it is about, words "
        "in capitals, capitalised names) with [ENTITY], dates and years with [DATE]; both "
        "are the mitigation the cutoff guard accepts instead of leakage: accepted.",
    )

    @field_validator("window")
    @classmethod
    def _check_window(cls, value: str) -> str:
        if parse_delay(value) <= 0:
            raise ValueError(f"must be longer than 0s; was '{value}'")
        return value

    @field_validator("half_life")
    @classmethod
    def _check_half_life(cls, value: str | None) -> str | None:
        if value is not None and parse_delay(value) <= 0:
            raise ValueError(f"must be longer than 0s; was '{value}'")
        return value

    @field_validator("cutoff_margin")
    @classmethod
    def _check_margin(cls, value: str) -> str:
        parse_delay(value)
        return value

    @field_validator("knowledge_cutoff")
    @classmethod
    def _check_cutoff(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cutoff(value)
        return value

    def aggregation(self) -> Aggregation:
        """Return the declared window, decay and rule."""
        return Aggregation(
            window_ns=parse_delay(self.window) * _SECOND,
            half_life_ns=parse_delay(self.half_life) * _SECOND if self.half_life else 0,
            how=self.aggregate,
            empty=0.0 if self.empty == "zero" else float("nan"),
        )


def declared_cutoff(params: TextFeatureParams, scorer: DocumentScorer) -> pd.Timestamp | None:
    """Return the knowledge cutoff the feature declares, else its scorer's (UTC); None:
    no model."""
    declared = params.knowledge_cutoff
    cutoff = parse_cutoff(declared) if declared is not None else scorer.knowledge_cutoff
    if cutoff is None:
        return None
    stamp = pd.Timestamp(cutoff)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def cutoff_of(params: TextFeatureParams, scorer: DocumentScorer) -> pd.Timestamp | None:
    """Return the first moment documents are safe from the model's own knowledge: the
    declared (or the scorer's) knowledge cutoff plus the margin; None: no model."""
    cutoff = declared_cutoff(params, scorer)
    if cutoff is None:
        return None
    return cutoff + pd.Timedelta(seconds=parse_delay(params.cutoff_margin))


@dataclass(eq=False)
class TextFeature:
    """A scorer's per-document numbers, aggregated per bar (see the module docstring).

    Attributes:
        of: The text source's name.
        prefix: The columns' prefix.
        scorer: Scores each document.
        how: The window, decay and rule.
        scope: ``symbol`` or ``global``.
        cutoff: Documents stamped before it may be known to the model (None: no model):
            the knowledge cutoff plus the margin.
        leakage: ``refused`` or ``accepted`` (the cutoff guard's answer).
        mask: What is masked in a text before it is scored (``entities``, ``dates``).
        declared: The knowledge cutoff as declared (``2025-06``; a scorer's as
            ``2025-07-01T00:00Z``), for messages and the report.
        margin: ``cutoff_margin`` as written.
    """

    of: str
    prefix: str
    scorer: DocumentScorer
    how: Aggregation
    scope: Literal["symbol", "global"] = "symbol"
    cutoff: pd.Timestamp | None = None
    leakage: Literal["refused", "accepted"] = "refused"
    mask: tuple[str, ...] = ()
    declared: str | None = None
    margin: str = "0d"
    _scored: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    _table: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), repr=False)
    _held: int = field(default=0, repr=False)
    reasons: dict[str, str] = field(default_factory=dict, repr=False)
    """Why a document got no score, by its id (what the run journals). It grows by
    insertion only: a paper or live run's tick reads the ones added since the last
    (`tradeloom.text.run_files.UnscoredSince`)."""

    def __deepcopy__(self, memo: dict[int, object]) -> TextFeature:
        """Return a copy of its own (a challenger's, a parity twin's features) that shares
        the scorer.

        A scorer is a service, not per-run state: an LLM scorer's client holds a lock, a rate
        gate, a circuit breaker and a cache (a lock cannot be copied: a challenger of a
        ``text_llm`` strategy stopped on ``TypeError: cannot pickle '_thread.lock'``), and an
        embedding scorer holds its model's weights. A copy asks the same one, within the
        same rate and cache; it answers a document the same whoever asks (the base's
        contract). What is the feature's own (its documents' scores, reasons, rows held) is
        copied.
        """
        copied = copy.copy(self)
        memo[id(self)] = copied
        copied._scored = dict(self._scored)
        copied._table = self._table.copy()
        copied.reasons = dict(self.reasons)
        return copied

    @property
    def fields(self) -> tuple[str, ...]:
        """The scorer's fields."""
        return tuple(self.scorer.fields)

    def columns(self) -> list[str]:
        """Return ``<prefix>_<field>`` per field, then ``<prefix>_count``."""
        return [f"{self.prefix}_{name}" for name in self.fields] + [f"{self.prefix}_count"]

    def input_columns(self) -> tuple[str, ...]:
        """Return the bars' columns it reads: none (its documents ride beside the bars)."""
        return ()

    def text_sources(self) -> tuple[str, ...]:
        """Return the text sources it reads (validation checks they are declared)."""
        return (self.of,)

    def cutoff_guard(self) -> CutoffGuard:
        """Return what the knowledge-cutoff guard checks (`tradeloom.text.cutoff`)."""
        return CutoffGuard(
            source=self.of,
            scope=self.scope,
            window_ns=self.how.window_ns,
            cutoff=self.cutoff,
            declared=self.declared,
            margin=self.margin,
            leakage=self.leakage,
            mask=self.mask,
            identity=self.scorer.identity,
        )

    # --- scoring ----------------------------------------------------------------------

    def scores(self, documents: Documents, rows: np.ndarray) -> np.ndarray:
        """Return ``(len(rows), F)``: the scores of ``documents``' ``rows``, each document
        scored once per feature instance (by id and text); NaN where none.

        Override to score otherwise (a fitted projection); keep one row per document.
        """
        fields = len(self.fields)
        listed = rows.tolist()
        ids, texts = documents.ids.__getitem__, documents.texts.__getitem__
        keys = list(zip(map(ids, listed), map(texts, listed), strict=True))
        known = self._scored
        todo = [k for k, at in enumerate(map(known.get, keys)) if at is None]
        if todo:
            fresh = documents.take(rows[np.asarray(todo, dtype=np.intp)])
            if self.mask:
                masked = tuple(
                    mask_text(t, self.mask, about)
                    for t, about in zip(fresh.texts, fresh.symbols, strict=True)
                )
                titles = tuple(
                    mask_text(t, self.mask, about)
                    for t, about in zip(fresh.titles, fresh.symbols, strict=True)
                )
                fresh = replace(fresh, texts=masked, titles=titles)
            answer = self.scorer.score(fresh)
            values = np.asarray(answer.values, dtype=np.float64)
            if values.shape != (len(todo), fields):
                raise RuntimeError(
                    f"text feature {self.prefix}: the scorer answered {values.shape} for "
                    f"{len(todo)} documents of {fields} fields"
                )
            self._keep(values)
            start = self._held - len(todo)
            new = [keys[k] for k in todo]
            # a document twice in one batch keeps its first answer (hence reversed)
            first = dict(zip(reversed(new), range(self._held - 1, start - 1, -1), strict=True))
            known.update(first)
            for n, reason in enumerate(answer.reasons):
                if reason and first[new[n]] == start + n:
                    self.reasons[new[n][0]] = reason
        if not keys:
            return np.empty((0, fields), dtype=np.float64)
        index = np.fromiter(map(known.__getitem__, keys), dtype=np.intp, count=len(keys))
        return self._table[index]

    def _keep(self, values: np.ndarray) -> None:
        """Append ``values`` to the table of every answer (grown by doubling)."""
        need = self._held + len(values)
        if self._table.shape[0] < need or self._table.shape[1] != values.shape[1]:
            grown = np.empty((max(need, 2 * self._table.shape[0], 64), values.shape[1]))
            if self._held:
                grown[: self._held] = self._table[: self._held]
            self._table = grown
        self._table[self._held : need] = values
        self._held = need

    def _seen(self, documents: Documents, symbol: str) -> np.ndarray:
        return documents.rows_about(None if self.scope == "global" else symbol)

    # --- batch ------------------------------------------------------------------------

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the columns, one row per bar, over the documents visible at each close.

        Raises:
            DataError: The bars carry no text source ``of``.
        """
        documents = bars.documents.get(self.of)
        if documents is None:
            raise DataError(_missing(self.of, bars.documents))
        decisions = bars.frame.index.as_unit("ns").asi8 + bars.timeframe_seconds * _SECOND
        rows = self._seen(documents, bars.symbol)
        if len(decisions):
            visible = documents.visible_ns[rows]
            lo = np.searchsorted(visible, decisions[0] - self.how.window_ns, side="right")
            hi = np.searchsorted(visible, decisions[-1], side="right")
            rows = rows[lo:hi]  # only what some bar sees is scored
        values = self.scores(documents, rows)
        table = aggregate(documents.visible_ns[rows], values, decisions, self.how)
        return pd.DataFrame(table, index=bars.frame.index, columns=self.columns())

    # --- stepped ----------------------------------------------------------------------

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver (the batch numbers, bit for bit).

        Raises:
            DataError: The context has no text source ``of``.
        """
        feeds = context.documents or {}
        feed = feeds.get(self.of)
        if feed is None:
            raise DataError(_missing(self.of, feeds))
        return _TextStep(self, feed, context)


class _TextStep:
    """Per-bar driver of `TextFeature`: the documents known now, scored once each, and
    `tradeloom.text.aggregation.aggregate_at` at the bar's close over those in its window
    (the same documents in the same order as the batch form sums: the same numbers)."""

    def __init__(self, feature: TextFeature, feed: DocumentFeed, context: StepContext) -> None:
        self._feature = feature
        self._feed = feed
        self._symbol = context.symbol
        self._bar_ns = context.timeframe_seconds * _SECOND
        self._held: Documents | None = None
        self._rows = np.empty(0, np.intp)
        self._visible = np.empty(0, np.int64)
        self._span = (-1, -1)
        self._step = AggregateStep(feature.how, len(feature.fields))

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's row over the documents visible at its close."""
        feature = self._feature
        decision = int(bar.timestamp.value) + self._bar_ns
        documents = self._feed.documents()
        if documents is not self._held:  # the source grew (or the first bar)
            self._held = documents
            self._rows = feature._seen(documents, self._symbol)
            self._visible = documents.visible_ns[self._rows]
            self._span = (-1, -1)
        window = feature.how.window_ns
        lo = int(np.searchsorted(self._visible, decision - window, side="right"))
        hi = int(np.searchsorted(self._visible, decision, side="right"))
        if (lo, hi) != self._span:  # only a later document is scored once it is visible
            self._span = (lo, hi)
            rows = self._rows[lo:hi]
            self._step.replace(self._visible[lo:hi], feature.scores(documents, rows))
        return tuple(float(v) for v in self._step.row(decision))


def _missing(name: str, present: Mapping[str, object]) -> str:
    has = ", ".join(sorted(present)) or "none"
    return (
        f"features: text source '{name}' is not among the data's (declared: {has}); "
        "declare it under data.auxiliary with kind: text"
    )


def _declared_text(params: TextFeatureParams, scorer: DocumentScorer) -> str | None:
    if params.knowledge_cutoff is not None:
        return params.knowledge_cutoff.strip()
    cutoff = declared_cutoff(params, scorer)
    return None if cutoff is None else format_timestamp(cutoff)


def build_text_feature(
    params: TextFeatureParams,
    scorer: DocumentScorer,
    ctx: BuildContext,
    *,
    default_name: str,
) -> TextFeature:
    """Return the text feature of ``scorer`` with the shared keys of ``params``.

    Args:
        params: The feature's keys (a subclass of `TextFeatureParams`).
        scorer: Scores each document.
        ctx: The build context (columns defined before it).
        default_name: The columns' prefix when ``name`` is not given (the kind's name).

    Raises:
        ParamError: A column an earlier feature defines, or a scorer with no fields.
    """
    if not scorer.fields:
        raise ParamError("of", "the scorer declares no fields to aggregate")
    feature = TextFeature(
        of=params.of,
        prefix=params.name or default_name,
        scorer=scorer,
        how=params.aggregation(),
        scope=params.scope,
        cutoff=cutoff_of(params, scorer),
        leakage=params.leakage,
        mask=tuple(dict.fromkeys(params.mask)),
        declared=_declared_text(params, scorer),
        margin=params.cutoff_margin,
    )
    check_new_columns(feature.columns(), ctx, "name")
    return feature
