"""Built-in brokers for a run's events: the ``events`` layer's components.

A paper or live run lists them under ``live.events`` (``[{kind: nats, url: ...}, {kind:
redis_streams, url: ...}]``); its publisher (`tradeloom.live.outputs.events`) hands each
the journal's committed rows. A third-party package adds another broker (Kafka, MQTT) by
registering a component of layer ``events`` whose factory returns a
`tradeloom.plugin.EventSink`.
"""

from __future__ import annotations

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog

__all__ = ["tradeloom_components"]

tradeloom_components = catalog(
    LazyComponent(
        layer="events",
        kind="nats",
        module="tradeloom.plugins.events.nats",
        params="NatsParams",
        factory="build",
        summary="Each journal row to a NATS JetStream subject `<prefix>.<run>.<kind>`",
    ),
    LazyComponent(
        layer="events",
        kind="redis_streams",
        module="tradeloom.plugins.events.redis_streams",
        params="RedisStreamsParams",
        factory="build",
        summary="Each journal row to the Redis stream `<prefix>:<run>`, entry id `<seq>-0`",
    ),
)
