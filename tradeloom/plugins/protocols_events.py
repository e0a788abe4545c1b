"""What an ``events`` component is: a sink that puts a run's journal rows on a broker.

A paper or live run's publisher (`tradeloom.live.outputs.events`) follows the journal
after each commit and hands each sink its new rows, in sequence order, as
`EventMessage` values. A sink publishes them and returns only when the broker has
acknowledged every one; it raises on any failure, and the publisher tries the same rows
again later (with backoff), so a sink never needs its own retry loop or buffer. The
publisher keeps the sink's acknowledged position, so after a crash it sends again the
rows after that position: a broker sees a message twice at most, always with the same
``id``, by which it (NATS JetStream's ``Nats-Msg-Id``, a Redis stream's entry id) or its
consumers drop the copy. A third-party package adds Kafka (the id as the record key,
an idempotent producer) or MQTT (the id in the payload, QoS 1) the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["EVENT_FORMAT", "EventMessage", "EventSink", "subject_token"]

EVENT_FORMAT = 1
"""The version of an event message's JSON payload (docs/guides/events.md declares it)."""


@dataclass(frozen=True)
class EventMessage:
    """One committed journal row, ready for a broker.

    Attributes:
        id: ``<run_id>:<seq>``: the same for every send of the row, so a copy is dropped.
        run_id: The run's id.
        seq: The row's sequence number in the run's journal (1, 2, ...; no gaps).
        kind: The row's journal kind (``fill``, ``order``, ``live_bar``...).
        payload: The row as JSON (UTF-8): ``format``, ``id``, ``run_id``, ``strategy``,
            ``mode``, ``seq``, ``kind``, ``bar``, ``timestamp``, ``symbol``,
            ``correlation_id`` and the kind's own ``values``.
    """

    id: str
    run_id: str
    seq: int
    kind: str
    payload: bytes


@runtime_checkable
class EventSink(Protocol):
    """A broker's end of a run's events (an ``events`` component's factory returns one).

    Both methods are called from the publisher's own thread, never from a bar's.
    """

    def publish(self, messages: Sequence[EventMessage]) -> None:
        """Publish ``messages`` (in order) and return once the broker acknowledged all.

        Raises:
            Exception: Any failure (unreachable, timed out, refused): the publisher sends
                the same messages again later; the ones that got through are dropped then
                by their id.
        """
        ...

    def close(self) -> None:
        """Release the connection (the publisher may call `publish` again after it)."""
        ...


def subject_token(text: str) -> str:
    """Return ``text`` as one token of a subject or key: ``.``, ``*``, ``>``, ``:``,
    spaces and other punctuation become ``_`` (NATS splits subjects at dots)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text) or "_"
