"""Documents, fields and scorers for the LLM scorer's tests, against a real stand-in server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

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

NEWS_LLM = Path(__file__).resolve().parents[2] / "examples" / "news_llm.yaml"
"""The shipped ``text_llm`` example."""


def news_llm_document(
    base_url: str, *, bars: int, train_window: int, retrain_every: int, n_estimators: int
) -> dict[str, Any]:
    """Return `NEWS_LLM` as a document that runs from anywhere against the server at
    ``base_url``: its files named whole, the run's own answers only (no shared cache), a
    small forest on ``bars`` bars."""
    document: dict[str, Any] = yaml.safe_load(NEWS_LLM.read_text(encoding="utf-8"))
    document["data"]["bars"] = bars
    document["data"]["auxiliary"][0]["path"] = str(NEWS_LLM.parent / "data" / "news.csv")
    for feature in document["features"]:
        if feature["kind"] == "text_llm":
            feature["prompt"] = str(NEWS_LLM.parent / feature["prompt"])
            feature["client"]["base_url"] = base_url
            feature["shared_cache"] = False
    model = document["model"]
    model["walk_forward"].update(train_window=train_window, retrain_every=retrain_every)
    model["params"] = {**model.get("params", {}), "n_estimators": n_estimators, "n_jobs": 1}
    return document


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
