"""``text_llm``'s keys for the built-in feature proofs: a stand-in chat server per test
process, started at first use, answering each text by its words (`word_answer`).

The proofs that hold every built-in kind (causality, batch == per bar, declared inputs,
registration) build ``text_llm`` like any feature; its scorer asks this server, with
``shared_cache: false`` so that no answer outlives the test process.
"""

from __future__ import annotations

import atexit
from pathlib import Path
from typing import Any

from tradeloom.testing.llm_server import ChatServer

__all__ = ["text_llm_keys"]

PROMPT = Path(__file__).resolve().parents[2] / "fixtures" / "text" / "llm_prompt.txt"
_SERVER: list[ChatServer] = []


def _server() -> ChatServer:
    if not _SERVER:
        server = ChatServer().start()
        atexit.register(server.stop)
        _SERVER.append(server)
    return _SERVER[0]


def text_llm_keys(**more: Any) -> dict[str, Any]:
    """Return ``text_llm``'s keys against this process's stand-in server, plus ``more``."""
    return {
        "of": "news",
        "client": {
            "kind": "openai_compatible",
            "base_url": _server().base_url,
            "model": "stand-in-1",
            "knowledge_cutoff": "2020-01",
            "requests_per_minute": 600_000,
            "concurrency": 4,
        },
        "prompt": str(PROMPT),
        "fields": {"sentiment": {"min": -1, "max": 1}, "relevance": {"min": 0, "max": 1}},
        "shared_cache": False,
        **more,
    }
