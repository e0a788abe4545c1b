"""A paper or live run's events out: its committed journal rows published to brokers.

The journal is the outbox. For each ``live.events`` entry a `Publisher` thread follows
the journal after commit (`tradeloom.journal.reader.EventFollower`, a reader like any
other: the run's bars never wait for it), turns each new row into an `EventMessage`
(the journal's own decoded row as JSON, `message_of`) and hands it to the entry's sink
(`tradeloom.plugin.EventSink`) in sequence order. Once the sink returns, the broker has
acknowledged the rows: the publisher writes its acknowledged position durably to
``events/<name>.position`` in the run folder (`tradeloom.journal.outbox`; not the
hash-chained journal). A broker that is down or slow only holds the rows back: the
publisher tries again with backoff (`BACKOFF`), logs the outage once and its end once,
and loses nothing; a restart of the run resumes after the last acknowledged row, and a
row sent twice (a crash between the broker's ack and the position's write) carries the
same id, by which the broker or its consumers drop the copy. Each entry has its own
thread and position: one broker's outage never holds back another's events.

When the run ends the publisher sends what is left for at most ``drain_seconds``; what
it could not send waits for the run's next start.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.errors import UserError
from tradeloom.journal.outbox import Position, position_path, read_position, write_position
from tradeloom.plugins.component import BuildContext, ParamError, param_errors
from tradeloom.plugins.protocols_events import EVENT_FORMAT, EventMessage, EventSink
from tradeloom.runtime.lazy import logger
from tradeloom.schemas.events import events_params

if TYPE_CHECKING:
    from tradeloom.journal.events import Event
    from tradeloom.live.tick.services import RunFiles
    from tradeloom.plugins.manager import Plugins

__all__ = ["BACKOFF", "Publisher", "build_sinks", "message_of", "start_publishers"]

BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds between attempts while a broker fails: each failure waits the next, the last
repeats until the broker answers."""

_BATCH = 500
"""Most rows handed to a sink at once."""

_log = logger("tradeloom.events")


def message_of(seq: int, event: Event, run_id: str, strategy: str, mode: str) -> EventMessage:
    """Return the journal's row ``seq`` (``event``) as a broker's message.

    The payload is the row as `tradeloom.journal.read_rows` gives it (the header and the
    kind's own ``values`` as JSON values), with the run's id, strategy and mode, the
    message id and the payload's ``format`` (`EVENT_FORMAT`).
    """
    from tradeloom.journal.reader import row_of

    row = row_of(seq, event)
    ident = f"{run_id}:{seq}"
    body = {
        "format": EVENT_FORMAT,
        "id": ident,
        "run_id": run_id,
        "strategy": strategy,
        "mode": mode,
        "seq": seq,
        "kind": row.kind,
        "bar": row.bar,
        "timestamp": row.timestamp,
        "symbol": row.symbol,
        "correlation_id": row.correlation_id,
        "values": row.values,
    }
    payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return EventMessage(ident, run_id, seq, row.kind, payload)


class Publisher:
    """Follow one journal and publish its committed rows to one sink, off the bar's path.

    Args:
        journal: The journal (``journal_path(run_dir)``).
        name: The entry's name (its position file's).
        sink: Where the rows go.
        position: Its acknowledged position's file.
        poll: Seconds between reads of the journal when it has nothing new.
        drain_seconds: At `stop`, how long to go on sending what is left.
        backoff: Seconds between attempts while the sink fails (`BACKOFF`).
    """

    def __init__(
        self,
        journal: Path,
        name: str,
        sink: EventSink,
        position: Path,
        *,
        poll: float = 0.1,
        drain_seconds: float = 5.0,
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        self.journal = journal
        self.name = name
        self.sink = sink
        self.position = position
        self.poll = poll
        self.drain_seconds = drain_seconds
        self.backoff = tuple(backoff)
        self.acked = 0
        """The last row the broker acknowledged (0: none)."""
        self.failures = 0
        """Failed attempts since the last success."""
        self._run_id = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"events-{name}", daemon=True)

    def start(self) -> None:
        """Start following the journal in the publisher's own thread."""
        self._thread.start()

    def stop(self) -> None:
        """Send what is left for at most ``drain_seconds``, then stop and close the sink."""
        self._stop.set()
        self._thread.join(self.drain_seconds + 10.0)

    def _run(self) -> None:
        from tradeloom.journal.errors import JournalError
        from tradeloom.journal.reader import EventFollower, read_info

        follower: Any = None
        identity: tuple[str, str, str] | None = None
        held: list[EventMessage] = []
        deadline: float | None = None
        try:
            while True:
                if self._stop.is_set() and deadline is None:
                    deadline = time.monotonic() + self.drain_seconds
                try:
                    if identity is None:
                        info = read_info(self.journal)
                        i = info.identity
                        identity = (i.run_id, i.strategy, i.mode)
                        follower = EventFollower(self.journal, _all_kinds())
                        follower.seq = self._resume(i.run_id)
                    if not held:
                        held = [message_of(s, e, *identity) for s, e in follower.read_sequenced()]
                except (JournalError, OSError) as exc:
                    if deadline is not None:
                        return
                    _log.debug("events_journal_unreadable", target=self.name, error=str(exc))
                    self._stop.wait(self.poll * 5)
                    continue
                sent = self._send(held, deadline)
                held = held[sent:]
                if deadline is not None and (not held or time.monotonic() >= deadline):
                    if held:
                        _log.warning(
                            "events_left_unsent",
                            target=self.name,
                            acked=self.acked,
                            unsent=len(held),
                        )
                    return
                if held:  # a failure: back off
                    wait = self.backoff[min(self.failures, len(self.backoff)) - 1]
                    if deadline is not None:
                        wait = min(wait, max(0.0, deadline - time.monotonic()))
                    self._stop.wait(wait)
                elif not self._stop.is_set():
                    self._stop.wait(self.poll)
        finally:
            if follower is not None:
                follower.close()
            self.sink.close()

    def _resume(self, run_id: str) -> int:
        recorded = read_position(self.position)
        self.acked = recorded.seq if recorded is not None and recorded.run_id == run_id else 0
        self._run_id = run_id
        return self.acked

    def _send(self, held: Sequence[EventMessage], deadline: float | None) -> int:
        sent = 0
        while sent < len(held):
            if deadline is not None and time.monotonic() >= deadline:
                break
            chunk = held[sent : sent + _BATCH]
            try:
                self.sink.publish(chunk)
            except Exception as exc:  # any broker failure: wait and try again
                self.failures += 1
                if self.failures == 1:
                    _log.warning(
                        "events_publish_failed",
                        target=self.name,
                        acked=self.acked,
                        error=f"{type(exc).__name__}: {exc}"[:300],
                    )
                return sent
            if self.failures:
                _log.info("events_publish_resumed", target=self.name, failures=self.failures)
                self.failures = 0
            sent += len(chunk)
            self._ack(chunk[-1].seq)
        return sent

    def _ack(self, seq: int) -> None:
        self.acked = seq
        write_position(self.position, Position(self._run_id, seq))


def _all_kinds() -> list[str]:
    from tradeloom.journal.events import KINDS

    return list(KINDS)


def build_sinks(files: RunFiles, plugins: Plugins) -> list[tuple[str, EventSink]]:
    """Return each ``live.events`` entry's name and sink (its kind's factory's).

    Raises:
        UserError: An unknown kind, a bad key or value, two entries of the same name, a
            factory's refusal: one line each, ``FILE:LINE:COL live.events.N.KEY: ...``.
    """
    config = files.config
    entries = config.live.events or []
    ctx = BuildContext(
        strategy_name=config.name, strategy_dir=config.source.parent, seed=config.seed
    )
    valid, problems = events_params(entries, plugins.registry)
    sinks: list[tuple[str, EventSink]] = []
    for index, component, params in valid:
        try:
            sinks.append((entries[index].label, component.factory(params, ctx)))
        except ParamError as exc:
            base = f"live.events.{index}"
            problems += [
                (f"{base}.{e.key}" if e.key else base, e.message) for e in param_errors(exc)
            ]
    if problems:
        raise UserError(
            "\n".join(f"{config.locate(path)} {path}: {text}" for path, text in problems)
        )
    return sinks


def start_publishers(files: RunFiles, plugins: Plugins, stack: ExitStack) -> list[Publisher]:
    """Start a `Publisher` for each ``live.events`` entry; ``stack`` stops them on exit."""
    from tradeloom.journal.location import journal_path

    publishers = []
    entries = {e.label: e for e in files.config.live.events or ()}
    for name, sink in build_sinks(files, plugins):
        publisher = Publisher(
            journal_path(files.run_dir),
            name,
            sink,
            position_path(files.run_dir, name),
            drain_seconds=entries[name].drain_seconds,
        )
        publisher.start()
        stack.callback(publisher.stop)
        publishers.append(publisher)
    return publishers
