"""The ``nats`` events broker: each journal row to a NATS JetStream subject.

``live.events: [{kind: nats, url: nats://127.0.0.1:4222}]``. A row goes to the subject
``<subject_prefix>.<run>.<kind>`` (the run id and kind as subject tokens) with the header
``Nats-Msg-Id: <run_id>:<seq>``: JetStream drops a message whose id it stored within the
stream's duplicate window, so a row the publisher sends again after a crash is stored
once. The stream (``stream``, capturing ``<subject_prefix>.>``) is created when missing,
its duplicate window set from ``duplicate_window``; an existing stream is used as it is.
Each publish waits for JetStream's acknowledgement. The client is nats-py (the
``broker`` extra), driven on an event loop of the publisher's own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols_events import EventMessage, subject_token
from tradeloom.runtime.extras import require

__all__ = ["NatsParams", "NatsSink", "build"]


class NatsParams(Params):
    """Keys of an ``events`` entry of kind ``nats``."""

    url: str = Field(
        default="nats://127.0.0.1:4222", description="The NATS server (nats://HOST:PORT)."
    )
    stream: str = Field(
        default="TRADELOOM",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The JetStream stream holding the events (created when missing).",
    )
    subject_prefix: str = Field(
        default="tradeloom",
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description="Subjects are `<subject_prefix>.<run>.<kind>`.",
    )
    duplicate_window: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 86400,
        description="Seconds a created stream remembers message ids to drop copies.",
    )
    timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds to wait to connect or for an ack."
    )


class NatsSink:
    """Publish `EventMessage` values to JetStream, each awaiting its acknowledgement."""

    def __init__(self, params: NatsParams) -> None:
        self.params = params
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._js: Any = None

    def subject(self, message: EventMessage) -> str:
        """Return the subject of ``message``: ``<prefix>.<run>.<kind>``."""
        run = subject_token(message.run_id)
        return f"{self.params.subject_prefix}.{run}.{subject_token(message.kind)}"

    def publish(self, messages: Sequence[EventMessage]) -> None:
        """Publish ``messages`` in order; return when JetStream acknowledged each."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._publish(messages))
        except BaseException:
            self._drop()
            raise

    def close(self) -> None:
        """Close the connection and the event loop."""
        self._drop()
        if self._loop is not None:
            loop, self._loop = self._loop, None
            loop.close()

    async def _publish(self, messages: Sequence[EventMessage]) -> None:
        js = await self._connected()
        timeout = self.params.timeout
        pending = [
            js.publish(self.subject(m), m.payload, timeout=timeout, headers={"Nats-Msg-Id": m.id})
            for m in messages
        ]
        await asyncio.gather(*pending)

    async def _connected(self) -> Any:
        if self._js is not None:
            return self._js
        require("nats", "live.events kind nats")
        import nats
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        # nats-py tries a refused first connection again and again, whatever its options
        # say: bounded here, the publisher retries with its own backoff
        client = await asyncio.wait_for(
            nats.connect(
                self.params.url,
                connect_timeout=self.params.timeout,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                error_cb=_quiet,  # nats-py prints each error itself; the publisher logs them
            ),
            self.params.timeout,
        )
        self._client = client
        js = client.jetstream(timeout=self.params.timeout)
        try:
            await js.stream_info(self.params.stream)
        except NotFoundError:
            config = StreamConfig(
                name=self.params.stream,
                subjects=[f"{self.params.subject_prefix}.>"],
                duplicate_window=self.params.duplicate_window,
            )
            await js.add_stream(config)
        self._js = js
        return js

    def _drop(self) -> None:
        client, self._client, self._js = self._client, None, None
        if client is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):  # a broken connection is dropped either way
                self._loop.run_until_complete(asyncio.wait_for(client.close(), 2.0))


async def _quiet(error: Exception) -> None:
    return None


def build(params: NatsParams, ctx: BuildContext) -> NatsSink:
    """Return the sink of ``params`` (it connects at its first publish)."""
    require("nats", "live.events kind nats")
    return NatsSink(params)
