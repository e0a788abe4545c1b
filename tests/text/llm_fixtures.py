"""Documents, fields and scorers for the LLM scorer's tests, against a real stand-in server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tradeloom.plugins.llm_client.openai_compatible import (
    OpenAiCompatible,
    OpenAiCompatibleParams,
)
from tradeloom.testing.llm_server import ChatServer
from tradeloom.text.documents import Documents
from tradeloom.text.llm_cache import AnswerCache, CachedAnswer
from tradeloom.text.llm_fields import FieldRange
from tradeloom.text.llm_prompt import PromptTemplate
from tradeloom.text.llm_scorer import LlmScorer

FIELDS = {
    "sentiment": FieldRange(min=-1, max=1),
    "relevance": FieldRange(min=0, max=1),
}

PROMPT = PromptTemplate(
    "Score this headline for {{symbols}}.\nTitle: {{title}}\nText: {{text}}\n{{fields}}",
    "prompt.txt",
)


def documents(*texts: str) -> Documents:
    """Return documents with these texts, one a minute from 2024-01-01."""
    n = len(texts)
    start = np.datetime64("2024-01-01T00:00", "ns").astype(np.int64)
    stamped = start + np.arange(n, dtype=np.int64) * 60_000_000_000
    return Documents(
        ids=tuple(f"d{i}" for i in range(n)),
        stamped_ns=stamped,
        visible_ns=stamped,
        texts=texts,
        titles=tuple("" for _ in texts),
        sources=tuple("wire" for _ in texts),
        symbols=tuple(("BTC/USDT",) for _ in texts),
    )


def client(server: ChatServer, **keys: Any) -> OpenAiCompatible:
    """Return a client of ``server``; ``keys`` override its params (fast bounds by default)."""
    given: dict[str, Any] = {
        "base_url": server.base_url,
        "model": "stand-in-1",
        "knowledge_cutoff": "2023-12",
        "requests_per_minute": 60_000,
        "backoff_seconds": 0.01,
        "timeout_seconds": 5,
        **keys,
    }
    return OpenAiCompatible(OpenAiCompatibleParams(**given))


def scorer(
    server: ChatServer,
    shared: Path | None,
    run_answers: dict[str, CachedAnswer] | None = None,
    *,
    calls: bool = True,
    **keys: Any,
) -> LlmScorer:
    """Return an LLM scorer over ``server`` with the test's fields and prompt."""
    cache = AnswerCache(run_answers, shared)
    return LlmScorer(client(server, **keys), PROMPT, FIELDS, cache, calls=calls)
