"""Built-in LLM clients: the ``llm_client`` layer's components.

A client is chosen inside a text feature that asks a model (``client: {kind:
openai_compatible, ...}``), by ``kind`` like any component; a third-party package adds
another (a vendor's own API, a local library) by registering a component of layer
``llm_client`` whose factory returns a `tradeloom.text.llm_client.ChatClient` and whose
params model subclasses `tradeloom.text.llm_client.CallBounds`.
"""

from __future__ import annotations

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog

__all__ = ["tradeloom_components"]

tradeloom_components = catalog(
    LazyComponent(
        layer="llm_client",
        kind="openai_compatible",
        module="tradeloom.plugins.llm_client.openai_compatible",
        params="OpenAiCompatibleParams",
        factory="build_openai_compatible",
        summary="Chat completions over HTTP (OpenAI, vLLM, llama.cpp, Ollama, LM Studio...)",
    ),
)
