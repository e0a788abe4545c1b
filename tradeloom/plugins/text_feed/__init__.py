"""Built-in document feeds: the ``text_feed`` layer's components.

A feed is named inside a text source (``data.auxiliary`` kind ``text``, ``feed: {kind:
http_poll, ...}``) and read by paper and live runs only; a backtest reads the source's
file and what a run received (``received:``). A third-party package adds another (a
Kafka topic, a vendor's websocket) by registering a component of layer ``text_feed``
whose factory returns a `tradeloom.text.feeds.DocumentReceiver` and whose params model
subclasses `tradeloom.text.feeds.FeedBounds`.
"""

from __future__ import annotations

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog

__all__ = ["tradeloom_components"]

tradeloom_components = catalog(
    LazyComponent(
        layer="text_feed",
        kind="http_poll",
        module="tradeloom.plugins.text_feed.http_poll",
        params="HttpPollParams",
        factory="build_http_poll",
        summary="Polls a URL answering documents (a JSON array or JSON Lines) since a cursor",
    ),
    LazyComponent(
        layer="text_feed",
        kind="nats",
        module="tradeloom.plugins.text_feed.nats_subject",
        params="NatsParams",
        factory="build_nats",
        summary="Reads a NATS JetStream subject, resuming after the last sequence kept",
    ),
)
