"""What a document feed is: a receiver that hands raw payloads to a run's inbox.

A text source (``data.auxiliary`` kind ``text``) may name a feed (``feed: {kind: nats,
...}``): a component of the ``text_feed`` layer, registered through
``tradeloom_components`` like any other, whose factory returns a `DocumentReceiver`.
A receiver only fetches: in a background thread of its own it hands each payload (the
bytes of one message, or one document of a poll's answer) to `Inbox.put`, with where it
came from and the cursor to resume after it. Stamping the arrival time, the checks
every document passes (those of a file's rows), keeping what passed in the run folder
and journaling what did not are the run's (`tradeloom.plugins.data.received`), so a
new feed kind does none of it.

The arrival time is the run's clock when the payload reached the inbox: a document
received at ``t`` is visible from the first bar whose close is at or after ``t``, even
when it says it was published earlier (it was not known earlier here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import Field

from tradeloom.plugins.component import Params
from tradeloom.text.documents import DocumentFeed

__all__ = [
    "FEEDS_DIR",
    "Arrival",
    "DocumentReceiver",
    "FeedBounds",
    "Inbox",
    "ReceivingFeed",
    "Refused",
]


FEEDS_DIR = "documents"
"""The run folder's folder of what its feeds brought: ``<name>.jsonl`` (the documents
kept, append-only) and ``<name>.cursor`` (where the feed resumes)."""


class FeedBounds(Params):
    """How patiently a feed reads: the keys every feed kind inherits."""

    timeout_seconds: float = Field(
        default=10.0, gt=0, le=600, description="Seconds one request (or fetch) may take."
    )
    max_attempts: int = Field(
        default=4,
        ge=1,
        le=20,
        description="Attempts per request, the first included; a failed read is retried "
        "after backoff_seconds, doubled each time (1: never retry).",
    )
    backoff_seconds: float = Field(
        default=1.0, gt=0, le=600, description="Wait before the first retry (doubled at each)."
    )
    max_backoff_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="The longest wait between two attempts."
    )


@dataclass(frozen=True)
class Arrival:
    """One payload as the run's inbox took it.

    Attributes:
        where: Where it came from, for messages (``nats news.btc (stream NEWS) seq 17``).
        body: Its bytes (one JSON document, a JSON array of them, or JSON Lines).
        cursor: What to resume after once it is kept (a stream sequence, a last id).
        received_ns: The run's clock when it arrived (UTC nanoseconds).
    """

    where: str
    body: bytes
    cursor: str
    received_ns: int


class Inbox:
    """Payloads a receiver handed over, stamped with the run's clock, until the run
    takes them at its next tick.

    A payload is stamped and queued under one lock, and `take` reads the clock under
    the same lock: every payload stamped at or before the time `take` read is in what
    it returns, and any later one is stamped after it (never earlier than a tick
    already taken), so a tick never misses a document it should see.

    No stamp is earlier than the one before it, nor than ``floor``: the arrivals are
    kept in the order they came, and a restart's clock may stand earlier than the last
    arrival an earlier start kept (a paper run killed after keeping a tick's documents
    and before journaling its bar resumes from that bar).

    Args:
        clock: The run's clock, UTC nanoseconds.
        floor: The earliest stamp (an earlier start's last arrival; 0: none).
    """

    def __init__(self, clock: Callable[[], int], floor: int = 0) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._held: list[Arrival] = []
        self._floor = floor

    def put(self, where: str, body: bytes, cursor: str) -> None:
        """Stamp a payload with the clock now and keep it for the next `take`."""
        with self._lock:
            now = self._floor = max(int(self._clock()), self._floor)
            self._held.append(Arrival(where, body, cursor, now))

    def take(self) -> list[Arrival]:
        """Return every payload put so far, in order, and forget them."""
        with self._lock:
            self._floor = max(int(self._clock()) + 1, self._floor)
            held, self._held = self._held, []
        return held


@runtime_checkable
class DocumentReceiver(Protocol):
    """A feed's receiver: started once with where to resume, stopped when the run ends."""

    def start(self, cursor: str | None, inbox: Inbox) -> None:
        """Start receiving in the background, after ``cursor`` (None: from the start of
        what the feed keeps), handing each payload to ``inbox``. Never raises for the
        feed's failures: a receiver logs them and tries again within its bounds."""
        ...

    def stop(self) -> None:
        """Stop receiving (joins its thread)."""
        ...


@dataclass(frozen=True)
class Refused:
    """A document (or payload) a feed brought that the run did not keep, and why.

    Attributes:
        source: The text source's name.
        where: Where it came from (`Arrival.where`, and the item in it).
        reason: Why, in one line.
        received_ns: When it arrived (UTC nanoseconds).
    """

    source: str
    where: str
    reason: str
    received_ns: int


@runtime_checkable
class ReceivingFeed(Protocol):
    """A text source a paper or live run receives as it runs (a ``feed``), as the run's
    stage drives it (`tradeloom.live.lifecycle.feed_stage`)."""

    def attach(self, folder: Path) -> None:
        """Keep what it receives in ``folder`` (the run's ``documents/``) and take up
        what an earlier start of the run kept there (a restart re-reads it)."""
        ...

    def start(self, clock: Callable[[], int]) -> None:
        """Start receiving after what is kept, stamping arrivals with ``clock`` (UTC ns)."""
        ...

    def take(self) -> list[Refused]:
        """Check what arrived since the last call, keep what passes (visible from now
        on), and return what did not."""
        ...

    def stop(self) -> None:
        """Stop receiving."""
        ...

    def share(self, feed: DocumentFeed) -> None:
        """Read ``feed``'s documents from now on, receiving none: another strategy of a
        portfolio file has a source of the same name and settings, one file of the run
        folder, which the run drives (this one is never attached nor started)."""
        ...
