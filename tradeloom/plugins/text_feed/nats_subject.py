"""``feed: {kind: nats}``: the documents published on a NATS JetStream subject.

Read by an ephemeral pull consumer of ``stream`` filtered on ``subject``, from the
stream's first message (a new run) or after the last sequence the run kept (a restart:
its cursor), so a restart neither skips nor repeats what the stream holds. Each
message is one payload (a JSON document, an array of them, or JSON Lines) handed to the
run's inbox (`tradeloom.text.feeds.Inbox`) with its subject and stream sequence; the run
checks, keeps or refuses it. A lost connection is retried within the feed's bounds, then
again after ``max_backoff_seconds``, while the run runs; it never ends the run.

nats-py is NATS's official Python client (``pip install 'tradeloom[broker]'``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.text_feed._loop import ReceiverThread
from tradeloom.runtime.extras import require
from tradeloom.runtime.lazy import logger
from tradeloom.text.feeds import FeedBounds, Inbox

__all__ = ["NatsParams", "NatsSubject", "build_nats"]

_log = logger("tradeloom.data")


class NatsParams(FeedBounds):
    """Keys of ``feed: {kind: nats}``."""

    servers: list[str] = Field(
        default_factory=lambda: ["nats://127.0.0.1:4222"],
        min_length=1,
        description="The NATS servers' URLs (nats://host:port).",
    )
    stream: str = Field(min_length=1, description="The JetStream stream holding the subject.")
    subject: str = Field(
        min_length=1, description="The subject (wildcards allowed: news.>) the documents are on."
    )
    batch: int = Field(
        default=100, ge=1, le=10_000, description="Messages asked for at once (1 .. 10,000)."
    )


class NatsSubject:
    """Reads ``subject`` in a thread of its own (a `tradeloom.text.feeds.DocumentReceiver`)."""

    def __init__(self, params: NatsParams) -> None:
        self.params = params
        self._loop = ReceiverThread(f"nats {params.subject}", params)

    def start(self, cursor: str | None, inbox: Inbox) -> None:
        """Read the subject after stream sequence ``cursor`` (None: from the first)."""
        require("nats", "a text source's feed: {kind: nats}")
        after = int(cursor) if cursor and cursor.isdigit() else 0
        self._loop.launch(lambda: asyncio.run(self._read(after, inbox)))

    def stop(self) -> None:
        """Stop reading (within one fetch's wait)."""
        self._loop.halt()

    async def _read(self, after: int, inbox: Inbox) -> None:
        loop = self._loop
        wait = self.params.backoff_seconds
        while not loop.stopping.is_set():
            try:
                after = await self._session(after, inbox)
                wait = self.params.backoff_seconds
            except Exception as exc:  # a broker's failure never ends the run
                _log.warning("feed_failed", feed=loop.name, error=f"{type(exc).__name__}: {exc}")
                if await asyncio.to_thread(loop.stopping.wait, wait):
                    return
                wait = min(2 * wait, self.params.max_backoff_seconds)

    async def _session(self, after: int, inbox: Inbox) -> int:
        """Connect, read until the run stops; return the last sequence handed over."""
        import nats
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        p = self.params
        client = await nats.connect(
            servers=list(p.servers),
            connect_timeout=p.timeout_seconds,
            max_reconnect_attempts=p.max_attempts,
            allow_reconnect=True,
        )
        try:
            stream = client.jetstream(timeout=p.timeout_seconds)
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
                opt_start_seq=after + 1 if after else None,
                ack_policy=AckPolicy.NONE,
            )
            pull: Any = await stream.pull_subscribe(p.subject, stream=p.stream, config=config)
            fetch_wait = min(1.0, p.timeout_seconds)  # how soon a stop is heard
            while not self._loop.stopping.is_set():
                try:
                    messages = await pull.fetch(p.batch, timeout=fetch_wait)
                except (TimeoutError, NatsTimeout):
                    continue
                for message in messages:
                    sequence = int(message.metadata.sequence.stream)
                    where = f"nats {message.subject} (stream {p.stream}) seq {sequence}"
                    inbox.put(where, bytes(message.data), str(sequence))
                    after = sequence
            return after
        finally:
            await client.close()


def build_nats(params: NatsParams, ctx: BuildContext) -> NatsSubject:
    """Return the receiver (it connects once started)."""
    return NatsSubject(params)
