"""``feed: {kind: http_poll}``: a URL polled every ``interval_seconds`` for new documents.

Each poll is ``GET url`` with ``?<cursor_param>=<cursor>`` once a document was kept (the
``cursor_field`` of the last document received: an id or a time, as the server pages),
answered by a JSON array of documents, one JSON object, or JSON Lines. A timeout, a
dropped connection, a 429 or a 5xx is retried within the feed's bounds; another status
is logged and the next poll asks again. Each document goes to the run's inbox
(`tradeloom.text.feeds.Inbox`); the run checks, keeps or refuses it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import Field

from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.text_feed._loop import ReceiverThread
from tradeloom.runtime.extras import require
from tradeloom.text.feeds import FeedBounds, Inbox

if TYPE_CHECKING:
    import httpx2

__all__ = ["HttpPoll", "HttpPollParams", "build_http_poll"]

_RETRIED = frozenset({408, 425, 429})


class HttpPollParams(FeedBounds):
    """Keys of ``feed: {kind: http_poll}``."""

    url: str = Field(
        pattern=r"^https?://", description="The URL answering documents (http or https)."
    )
    interval_seconds: float = Field(
        default=5.0, gt=0, le=86_400, description="Seconds between two polls."
    )
    cursor_param: str = Field(
        default="since",
        min_length=1,
        description="The query parameter the last cursor is sent in (?since=...).",
    )
    cursor_field: str = Field(
        default="id",
        min_length=1,
        description="The field of a document that is the cursor: its id, or a time the "
        "server pages by.",
    )


class HttpPoll:
    """Polls ``url`` in a thread of its own (a `tradeloom.text.feeds.DocumentReceiver`)."""

    def __init__(self, params: HttpPollParams) -> None:
        self.params = params
        self._loop = ReceiverThread(f"http_poll {params.url}", params)
        self._cursor: str | None = None

    def start(self, cursor: str | None, inbox: Inbox) -> None:
        """Poll from ``cursor`` on, handing each document to ``inbox``."""
        require("httpx2", "a text source's feed: {kind: http_poll}")
        import httpx2

        self._cursor = cursor
        timeout = httpx2.Timeout(self.params.timeout_seconds)

        def run() -> None:
            with httpx2.Client(timeout=timeout) as client:
                while not self._loop.stopping.is_set():
                    self.poll(client, inbox)
                    if self._loop.stopping.wait(self.params.interval_seconds):
                        return

        self._loop.launch(run)

    def stop(self) -> None:
        """Stop polling."""
        self._loop.halt()

    def poll(self, client: httpx2.Client, inbox: Inbox) -> int:
        """Poll once; return how many payloads went to ``inbox``."""
        p = self.params
        query = {} if self._cursor is None else {p.cursor_param: self._cursor}
        answer = self._loop.attempt("GET", lambda: self._get(client, query))
        if answer is None:
            return 0
        where = f"GET {p.url}" + (f"?{p.cursor_param}={self._cursor}" if self._cursor else "")
        items = _items(answer)
        if items is None:  # not JSON as a whole: the run refuses it, naming where
            inbox.put(where, answer, self._cursor or "")
            return 1
        for k, item in enumerate(items, start=1):
            if isinstance(item, dict) and item.get(p.cursor_field) is not None:
                self._cursor = str(item[p.cursor_field])
            body = item if isinstance(item, bytes) else json.dumps(item).encode("utf-8")
            inbox.put(f"{where} item {k}", body, self._cursor or "")
        return len(items)

    def _get(self, client: httpx2.Client, query: dict[str, str]) -> bytes:
        response = client.get(self.params.url, params=query)
        status = response.status_code
        if status in _RETRIED or status >= 500:
            raise ConnectionError(f"HTTP {status}")
        if status != 200:  # not retried now; the next poll asks again
            raise _Refused(f"HTTP {status}: {response.text[:200]}")
        return response.content


class _Refused(Exception):
    pass


def _items(body: bytes) -> list[Any] | None:
    """The answer's documents (a line that is not JSON kept as its bytes, for the run to
    refuse); None: no JSON at all."""
    try:
        value = json.loads(body)
    except ValueError:
        lines = [line for line in body.split(b"\n") if line.strip()]
        if len(lines) < 2:
            return None if lines else []
        out: list[Any] = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append(line)
        return out
    return value if isinstance(value, list) else [value]


def build_http_poll(params: HttpPollParams, ctx: BuildContext) -> HttpPoll:
    """Return the receiver (it polls once started)."""
    return HttpPoll(params)
