"""The ``text_llm`` feature: each document put to an LLM in the user's prompt, its answer
parsed into declared numbers, aggregated per bar.

The client is a component of the ``llm_client`` layer named inside the feature
(``client: {kind: openai_compatible, base_url: ..., model: ..., knowledge_cutoff: ...}``);
the scorer (`tradeloom.text.llm_scorer`) reads every answer from the cache first, so a
rerun, the paper run of a backtest and ``tradeloom parity`` ask the model nothing they
were answered before. Columns: ``<name>_<field>`` per declared field, ``<name>_count``
(default name: ``llm``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from tradeloom.errors import UserError
from tradeloom.plugins.component import BuildContext, ParamError, raise_collected
from tradeloom.plugins.features.text import TextFeature, TextFeatureParams, build_text_feature
from tradeloom.plugins.inner import build_inner
from tradeloom.text.llm_cache import RUN_FILE, AnswerCache, read_answers, shared_cache_dir
from tradeloom.text.llm_client import ChatClient
from tradeloom.text.llm_fields import FieldRange
from tradeloom.text.llm_prompt import PromptTemplate
from tradeloom.text.llm_scorer import LlmScorer

__all__ = ["TextLlmParams", "build_text_llm"]

_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class TextLlmParams(TextFeatureParams):
    """Keys of ``text_llm`` (and the text feature keys); columns ``<name>_<field>`` per
    field and ``<name>_count``."""

    client: dict[str, Any] = Field(
        description="The model's client: its kind and keys, e.g. {kind: openai_compatible, "
        "base_url: http://127.0.0.1:8080/v1, model: qwen2.5-7b-instruct, knowledge_cutoff: "
        "2024-09, api_key: ${OPENAI_API_KEY}} (`tradeloom plugins` lists the llm_client kinds)."
    )
    prompt: str = Field(
        min_length=1,
        description="The prompt file, relative to the strategy file: {{text}}, {{title}}, "
        "{{source}}, {{time}}, {{symbols}}, {{id}} and {{fields}} are put in per document.",
    )
    fields: dict[str, FieldRange] = Field(
        min_length=1,
        description="The numbers asked for, each with its range: {sentiment: {min: -1, max: "
        "1}}; an answer missing one, out of range or not JSON is NaN with its reason.",
    )
    system: str | None = Field(
        default=None,
        description="The system message; default: one asking for a JSON object of the fields.",
    )
    answers: str | None = Field(
        default=None,
        description="A run folder (or its llm_answers.jsonl) whose answers are read first: a "
        "paper run reads its backtest's, so both score alike.",
    )
    shared_cache: bool = Field(
        default=True,
        description="Keep and read answers in the folder shared by runs ($TRADELOOM_LLM_CACHE, "
        "else llm/ in the user's cache folder); false: only the run's own file.",
    )
    calls: bool = Field(
        default=True,
        description="false: ask the model nothing; a document whose answer is not cached is "
        "NaN (a replay).",
    )

    @field_validator("fields")
    @classmethod
    def _field_names(cls, value: dict[str, FieldRange]) -> dict[str, FieldRange]:
        for name in value:
            if not _FIELD_NAME.match(name):
                raise ValueError(
                    f"a field's name is a column's suffix: lower-case letters, digits and _, "
                    f"starting with a letter, at most 32; was {name!r}"
                )
        return value

    @field_validator("client", mode="before")
    @classmethod
    def _has_kind(cls, value: Any) -> Any:
        if isinstance(value, dict) and not isinstance(value.get("kind"), str):
            raise ValueError("expected the client's kind: {kind: openai_compatible, ...}")
        return value


def build_text_llm(params: TextLlmParams, ctx: BuildContext) -> TextFeature:
    """Return the feature: its client built, its prompt read, its run answers read.

    Raises:
        ParamError: An unknown client kind or a bad client key (``client.<key>``), a prompt
            file that cannot be read, answers that cannot be read or fail their check.
    """
    client = _client(params.client, ctx)
    errors: list[ParamError] = []
    prompt: PromptTemplate | None = None
    try:
        prompt = PromptTemplate.read(ctx.resolve_path(params.prompt))
    except UserError as exc:
        errors.append(ParamError("prompt", str(exc)))
    run_answers = {}
    if params.answers is not None:
        path = ctx.resolve_path(params.answers)
        path = path / RUN_FILE if path.is_dir() else path
        try:
            run_answers = read_answers(path)
        except UserError as exc:
            errors.append(ParamError("answers", str(exc)))
    raise_collected(errors)
    assert prompt is not None
    cache = AnswerCache(run_answers, shared_cache_dir() if params.shared_cache else None)
    scorer = LlmScorer(
        client,
        prompt,
        params.fields,
        cache,
        system=params.system,
        calls=params.calls,
        stop_unreachable=ctx.mode == "backtest",  # paper and live trade on through an outage
        label=params.name or "llm",
        where=f"{ctx.location} {ctx.path}" if ctx.path else "",
    )
    return build_text_feature(params, scorer, ctx, default_name="llm")


def _client(section: dict[str, Any], ctx: BuildContext) -> ChatClient:
    client: ChatClient = build_inner("llm_client", section, ctx, "client")
    return client
