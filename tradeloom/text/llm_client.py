"""What an LLM client is: one request sent once, its answer or why not.

A client kind (``client: {kind: openai_compatible, ...}`` in a strategy file) is a
component of the ``llm_client`` layer, registered through ``tradeloom_components`` like
any other; its factory returns a `ChatClient`. A client makes one attempt per `send`:
the bounds every client shares (concurrency, rate, timeout, retries with backoff) are
applied around it by `tradeloom.text.llm_calls`, from the keys of `CallBounds` that
every client's params model inherits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import Field, model_validator

from tradeloom.plugins.component import Params

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CallBounds", "CallFailed", "ChatClient", "ChatRequest"]


def _bounded(default: float, most: float, description: str, *, whole: bool = False) -> Any:
    """A key of `CallBounds`: above 0 (at least 1 for a count) and at most ``most``."""
    if whole:
        return Field(default=int(default), ge=1, le=int(most), description=description)
    return Field(default=default, gt=0, le=most, description=description)


class CallBounds(Params):
    """How many calls, how fast, how patiently: the keys every client kind inherits."""

    concurrency: int = _bounded(4, 256, "Requests in flight at once (1 .. 256).", whole=True)
    requests_per_minute: float = _bounded(
        60.0,
        1_000_000,
        "Requests started per minute at most, retries included; they are spaced evenly (60: "
        "one a second).",
    )
    timeout_seconds: float = _bounded(
        60.0,
        3600,
        "Seconds a request may wait to connect, to send, and for each part of the answer (a "
        "stalled server times out; a model streaming slowly does not).",
    )
    max_attempts: int = _bounded(
        4,
        20,
        "Requests per document, the first included (1: never retry). A timeout, a 429, a 5xx "
        "or a dropped connection is retried; any other refusal is not. As many connections "
        "refused in a row open the breaker: a backtest stops, a paper or live run stops asking "
        "for max_backoff_seconds.",
        whole=True,
    )
    backoff_seconds: float = _bounded(
        1.0,
        3600,
        "Wait before the first retry; doubled at each retry (exponential backoff). A server's "
        "Retry-After is honoured when longer.",
    )
    max_backoff_seconds: float = _bounded(
        60.0,
        3600,
        "Cap on the backoff's wait; also how long a paper or live run asks nothing of a "
        "server that refused max_attempts connections in a row.",
    )

    @model_validator(mode="after")
    def _backoff_ordered(self) -> CallBounds:
        if self.backoff_seconds > self.max_backoff_seconds:
            raise ValueError(
                f"backoff_seconds must be <= max_backoff_seconds, was {self.backoff_seconds} "
                f"and {self.max_backoff_seconds}"
            )
        return self


@dataclass(frozen=True)
class ChatRequest:
    """One question: the messages and the shape of the answer wanted.

    Attributes:
        messages: ``(role, content)`` pairs, ``system`` then ``user``.
        answer_schema: JSON Schema of the answer (`tradeloom.text.llm_fields.answer_schema`);
            a client asks for JSON as its server allows.
    """

    messages: tuple[tuple[str, str], ...]
    answer_schema: Mapping[str, Any]


class CallFailed(Exception):
    """One attempt got no answer.

    Args:
        reason: One line (``HTTP 503``, ``timeout after 30 s``); never a secret.
        retryable: Whether another attempt may succeed (a timeout, 429, 5xx).
        retry_after: Seconds the server asked to wait (``Retry-After``), 0 if none.
        unreachable: Whether the server could not be reached at all (nothing listens at
            its address, or its name does not resolve): nothing was sent. Such failures
            in a row open the client's breaker (`tradeloom.text.llm_calls.Breaker`): a
            backtest stops, a paper or live run stops asking for a while.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: float = 0.0,
        unreachable: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.unreachable = unreachable


@runtime_checkable
class ChatClient(Protocol):
    """Sends a chat request to a model, one attempt at a time; safe to call from threads."""

    @property
    def identity(self) -> Mapping[str, Any]:
        """Everything of the client that changes an answer (its kind, model, temperature,
        how it asks for JSON), as JSON-ready data: the answers' cache keys on it. Never
        an address or a key: the same model behind another server answers alike."""
        ...

    @property
    def bounds(self) -> CallBounds:
        """The bounds its calls are made within."""
        ...

    @property
    def knowledge_cutoff(self) -> pd.Timestamp | None:
        """The model's declared knowledge cutoff (UTC), None where undeclared."""
        ...

    def open(self) -> None:
        """Make what a request needs (a connection pool) before the first one is timed:
        called before the rate gate lets any through, so that the first requests do not
        reach the server bunched behind a slow start."""
        ...

    def send(self, request: ChatRequest) -> str:
        """Send ``request`` once; return the answer's text.

        Raises:
            CallFailed: No usable answer (timeout, refusal, a body without a message).
        """
        ...

    def close(self) -> None:
        """Release connections; `send` is not called after."""
        ...
