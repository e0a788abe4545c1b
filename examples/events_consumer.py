"""Read a tradeloom run's events from NATS JetStream or a Redis stream, each row once.

A paper or live run with ``live.events`` publishes every committed journal row (its
JSON payload: docs/guides/events.md). A row may reach a broker twice (a publisher that
crashed between the broker's acknowledgement and writing its position sends it again);
both brokers drop such a copy themselves, and this consumer drops any that get through by
the message id, ``<run_id>:<seq>``, keeping each run's rows in sequence order. It prints
one JSON line per row and stops after ``--idle`` seconds without a new one (0: never)::

    python examples/events_consumer.py nats --url nats://127.0.0.1:4222 \\
        --subject 'tradeloom.my-run.>'
    python examples/events_consumer.py redis --url redis://127.0.0.1:6379/0 \\
        --stream tradeloom:my-run

Needs ``pip install 'tradeloom[broker]'`` (nats-py, redis-py); nothing else of tradeloom.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any


class Dedup:
    """Keep the rows not seen before, by id; a run's rows must come in sequence order."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.last: dict[str, int] = {}
        self.dropped = 0

    def accept(self, row: dict[str, Any]) -> bool:
        """Return whether ``row`` is new (a copy is counted in ``dropped``)."""
        if row["id"] in self.seen:
            self.dropped += 1
            return False
        run, seq = row["run_id"], int(row["seq"])
        if seq <= self.last.get(run, 0):
            raise SystemExit(f"{row['id']}: out of order after seq {self.last[run]}")
        self.seen.add(row["id"])
        self.last[run] = seq
        return True


async def nats_rows(url: str, subject: str, idle: float) -> list[dict[str, Any]]:
    """Return every row on ``subject`` (all the stream holds, then new ones until idle)."""
    import nats

    client = await nats.connect(url)
    js = client.jetstream()
    sub = await js.subscribe(subject, ordered_consumer=True)
    rows = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle if idle > 0 else 3600.0)
            except nats.errors.TimeoutError:
                if idle > 0:
                    break
                continue
            rows.append(json.loads(msg.data))
    finally:
        await sub.unsubscribe()
        await client.close()
    return rows


def redis_rows(url: str, stream: str, idle: float) -> Iterator[dict[str, Any]]:
    """Yield every row of ``stream`` from its start, then new ones until idle."""
    import redis

    client = redis.Redis.from_url(url)
    last = "0-0"
    block = int(idle * 1000) if idle > 0 else 0
    while True:
        found = client.xread({stream: last}, count=1000, block=block)
        if not found:
            break
        for entry_id, fields in found[0][1]:
            last = entry_id
            yield json.loads(fields[b"payload"])


def main(argv: list[str] | None = None) -> int:
    """Print each row once as a JSON line; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("broker", choices=["nats", "redis"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--subject", default="tradeloom.>", help="nats: the subjects to read")
    parser.add_argument("--stream", default="", help="redis: the stream key (tradeloom:RUN)")
    parser.add_argument("--idle", type=float, default=2.0, help="stop after this many idle s")
    args = parser.parse_args(argv)
    if args.broker == "nats":
        rows: Any = asyncio.run(nats_rows(args.url, args.subject, args.idle))
    else:
        rows = redis_rows(args.url, args.stream, args.idle)
    dedup = Dedup()
    for row in rows:
        if dedup.accept(row):
            print(json.dumps(row, separators=(",", ":")), flush=True)
    print(f"{len(dedup.seen)} rows, {dedup.dropped} duplicates dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
