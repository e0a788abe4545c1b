"""The ``redis_streams`` events broker: each journal row to a Redis stream per run.

``live.events: [{kind: redis_streams, url: redis://127.0.0.1:6379/0}]``. A row is the
entry ``<seq>-0`` of the stream ``<key_prefix>:<run>`` with the fields ``id``
(``<run_id>:<seq>``), ``kind`` and ``payload`` (the row's JSON). The entry id is the
row's sequence, so Redis itself refuses a row sent again (an id equal to or below the
stream's last is an error, read here as "already there"): a stream holds each row once,
in the journal's order. ``maxlen`` trims a stream (approximately) to its newest entries.
The client is redis-py (the ``broker`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols_events import EventMessage, subject_token
from tradeloom.runtime.extras import require

__all__ = ["RedisStreamsParams", "RedisStreamsSink", "build"]

_ALREADY = "equal or smaller than the target stream top item"
"""Redis's words for an XADD id at or below the stream's last (a row already there)."""


class RedisStreamsParams(Params):
    """Keys of an ``events`` entry of kind ``redis_streams``."""

    url: str = Field(
        default="redis://127.0.0.1:6379/0", description="The Redis server (redis://HOST:PORT/DB)."
    )
    key_prefix: str = Field(
        default="tradeloom",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Streams are `<key_prefix>:<run>`.",
    )
    maxlen: int | None = Field(
        default=None,
        ge=1,
        description="Trim each stream to about this many entries (null: keep all).",
    )
    timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds to wait to connect or for a reply."
    )


class RedisStreamsSink:
    """Publish `EventMessage` values with XADD, the row's sequence as the entry id."""

    def __init__(self, params: RedisStreamsParams) -> None:
        self.params = params
        self._client: Any = None

    def stream(self, run_id: str) -> str:
        """Return the stream key of the run ``run_id``."""
        return f"{self.params.key_prefix}:{subject_token(run_id)}"

    def publish(self, messages: Sequence[EventMessage]) -> None:
        """XADD ``messages`` in order in one round trip; an entry already there is fine."""
        import redis

        client = self._connected()
        pipe = client.pipeline(transaction=False)
        for m in messages:
            fields = {"id": m.id, "kind": m.kind, "payload": m.payload}
            pipe.xadd(
                self.stream(m.run_id),
                fields,
                id=f"{m.seq}-0",
                maxlen=self.params.maxlen,
                approximate=True,
            )
        try:
            replies = pipe.execute(raise_on_error=False)
        except BaseException:
            self.close()
            raise
        for reply in replies:
            if isinstance(reply, redis.ResponseError) and _ALREADY not in str(reply):
                raise reply

    def close(self) -> None:
        """Close the connection (the next publish opens another)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _connected(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(
                self.params.url,
                socket_timeout=self.params.timeout,
                socket_connect_timeout=self.params.timeout,
            )
        return self._client


def build(params: RedisStreamsParams, ctx: BuildContext) -> RedisStreamsSink:
    """Return the sink of ``params`` (it connects at its first publish)."""
    require("redis", "live.events kind redis_streams")
    return RedisStreamsSink(params)
