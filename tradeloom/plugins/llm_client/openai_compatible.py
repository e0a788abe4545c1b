"""``openai_compatible``: a model behind the chat completions API, local or remote.

One ``POST {base_url}/chat/completions`` per attempt, over httpx2 (the HTTP client the
project's console and agent door already use, so the ``text`` extra adds nothing else to
a full install). The answer is the first choice's message content. JSON is asked for
as the server allows (``response_format``): ``json_schema`` (vLLM, llama.cpp's server,
OpenAI), ``json_object`` (most servers, Ollama's OpenAI API), or ``none`` (the prompt
alone asks). The key is sent as a bearer token and never appears in a message, a log
line or the cache.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator

from tradeloom.plugins.component import BuildContext
from tradeloom.runtime.retrying import retry_after_seconds
from tradeloom.text.llm_client import CallBounds, CallFailed, ChatRequest

if TYPE_CHECKING:
    import httpx2
    import pandas as pd

__all__ = [
    "OpenAiCompatible",
    "OpenAiCompatibleParams",
    "build_openai_compatible",
    "cutoff_timestamp",
]

_SHOWN = 120
_RETRIED_STATUS = frozenset({408, 409, 425, 429})


class OpenAiCompatibleParams(CallBounds):
    """Keys of ``openai_compatible``: the server, the model and how it is asked."""

    base_url: str = Field(
        description="The API's root, up to and with its version: http://127.0.0.1:8080/v1 "
        "(llama.cpp, vLLM), http://127.0.0.1:11434/v1 (Ollama), https://api.openai.com/v1."
    )
    model: str = Field(min_length=1, description="The model's name as the server knows it.")
    knowledge_cutoff: str = Field(
        description="The model's training data's end, YYYY-MM or YYYY-MM-DD (its maker's "
        "model card says it): the model may know of anything up to the end of that month or "
        "day, so documents before it leak the outcome (`validate` guards it)."
    )
    api_key: SecretStr | None = Field(
        default=None, description="The key, as ${ENV_VAR}; none for a local server."
    )
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 for repeatable answers."
    )
    max_tokens: int | None = Field(
        default=256, ge=1, le=1_000_000, description="Tokens per answer at most (null: server's)."
    )
    seed: int | None = Field(default=None, description="Sampling seed, where the server takes one.")
    response_format: Literal["json_schema", "json_object", "none"] = Field(
        default="json_object",
        description="How JSON is asked for: json_schema (the fields' schema, where the server "
        "supports structured outputs), json_object, or none (the prompt alone).",
    )

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL, was {value!r}")
        return value.rstrip("/")

    @field_validator("knowledge_cutoff", mode="before")
    @classmethod
    def _cutoff(cls, value: Any) -> Any:
        if isinstance(value, dt.date):  # YAML reads 2025-06-30 as a date
            return value.isoformat()
        if isinstance(value, str):
            cutoff_timestamp(value)  # its message: expected YYYY-MM or YYYY-MM-DD
        return value


def cutoff_timestamp(text: str) -> pd.Timestamp:
    """Return the first moment after the month (``YYYY-MM``) or day (``YYYY-MM-DD``), UTC:
    the model may know of anything before it (the text features' reading of a cutoff,
    `tradeloom.plugins.features.text.parse_cutoff`)."""
    from tradeloom.plugins.features.text import parse_cutoff

    return parse_cutoff(text)


class OpenAiCompatible:
    """A `tradeloom.text.llm_client.ChatClient` over the chat completions API.

    Args:
        params: The validated keys.
    """

    def __init__(self, params: OpenAiCompatibleParams) -> None:
        self._params = params
        self._http: httpx2.Client | None = None
        self._lock = threading.Lock()

    @property
    def identity(self) -> Mapping[str, Any]:
        """Kind, model, and every setting that changes an answer (not the URL or key)."""
        p = self._params
        return {
            "kind": "openai_compatible",
            "model": p.model,
            "temperature": p.temperature,
            "max_tokens": p.max_tokens,
            "seed": p.seed,
            "response_format": p.response_format,
        }

    @property
    def bounds(self) -> CallBounds:
        """The keys' bounds."""
        return self._params

    @property
    def knowledge_cutoff(self) -> pd.Timestamp:
        """The first moment after the declared cutoff (UTC)."""
        return cutoff_timestamp(self._params.knowledge_cutoff)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """Return the JSON body sent for ``request``."""
        p = self._params
        body: dict[str, Any] = {
            "model": p.model,
            "messages": [{"role": role, "content": content} for role, content in request.messages],
            "temperature": p.temperature,
        }
        if p.max_tokens is not None:
            body["max_tokens"] = p.max_tokens
        if p.seed is not None:
            body["seed"] = p.seed
        if p.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        elif p.response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "scores", "schema": dict(request.answer_schema)},
            }
        return body

    def send(self, request: ChatRequest) -> str:
        """POST the request once; return the first choice's message content.

        Raises:
            CallFailed: A timeout, a dropped connection, a 408/429/5xx (retryable), a
                connection refused or a name that does not resolve (retryable, and
                ``unreachable``), any other refusal or a body without a message (not
                retryable).
        """
        import httpx2

        timeout = self._params.timeout_seconds
        try:
            response = self._client().post("chat/completions", json=self.body(request))
        except httpx2.TimeoutException:
            raise CallFailed(f"timeout after {timeout:g} s", retryable=True) from None
        except httpx2.ConnectError as exc:  # refused, or a name that does not resolve
            raise CallFailed(
                f"cannot connect to {self._params.base_url}: {exc}",
                retryable=True,
                unreachable=True,
            ) from None
        except httpx2.TransportError as exc:
            raise CallFailed(f"{type(exc).__name__}: {exc}", retryable=True) from None
        status = response.status_code
        if status != 200:
            retryable = status in _RETRIED_STATUS or status >= 500
            raise CallFailed(
                f"HTTP {status}: {_shown(response.text)}",
                retryable=retryable,
                retry_after=retry_after_seconds(response.headers) if retryable else 0.0,
            )
        try:
            content = json.loads(response.text)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise CallFailed(
                f"response is not a chat completion: {_shown(response.text)}", retryable=False
            ) from None
        if not isinstance(content, str):
            raise CallFailed("response's message has no text content", retryable=False)
        return content

    def open(self) -> None:
        """Make the HTTP client (httpx2 imported) before the first request is timed."""
        self._client()

    def close(self) -> None:
        """Close the connections."""
        with self._lock:
            client, self._http = self._http, None
        if client is not None:
            client.close()

    def _client(self) -> httpx2.Client:
        # one client for every thread (httpx's client and pool are thread-safe), its
        # pool as large as the calls allowed at once
        with self._lock:
            if self._http is None:
                import httpx2

                p = self._params
                headers = {}
                if p.api_key is not None:
                    headers["Authorization"] = f"Bearer {p.api_key.get_secret_value()}"
                self._http = httpx2.Client(
                    base_url=p.base_url + "/",
                    headers=headers,
                    timeout=httpx2.Timeout(p.timeout_seconds),
                    limits=httpx2.Limits(max_connections=p.concurrency),
                    follow_redirects=False,
                )
            return self._http


def _shown(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _SHOWN else flat[: _SHOWN - 3] + "...")


def build_openai_compatible(params: OpenAiCompatibleParams, ctx: BuildContext) -> OpenAiCompatible:
    """Return the client (no request is made until a document is scored)."""
    from tradeloom.runtime.extras import require

    require("httpx2", "client: {kind: openai_compatible}")
    return OpenAiCompatible(params)
