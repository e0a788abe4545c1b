"""What the emulated venue received: one record per request, in arrival order.

Tests assert on it ("the venue received exactly one order per intent"), so a
request is recorded when it arrives, before any fault delays, swallows or
answers it. The signature is left out; so is the API key, which never travels
in the parameters.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RequestLog", "RequestRecord"]


@dataclass(frozen=True)
class RequestRecord:
    """One request as the venue received it.

    Attributes:
        seq: Arrival number, from 1.
        method: HTTP method.
        path: URL path (``/api/v3/order``).
        params: Query and form parameters, without ``signature``.
        faults: Names of the faults it got (``("Timeout(after_accept=True, ...)",)``).
        dispatched: Whether the venue acted on it: False when a fault answered or
            swallowed it first.
    """

    seq: int
    method: str
    path: str
    params: Mapping[str, str]
    faults: tuple[str, ...]
    dispatched: bool

    @property
    def route(self) -> str:
        """``METHOD /path``."""
        return f"{self.method} {self.path}"


class RequestLog:
    """Thread-safe, append-only list of `RequestRecord`.

    Args:
        keep: Keep only the last this many records (None: every one); their ``seq``
            still counts every request.
    """

    def __init__(self, keep: int | None = None) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=keep)
        self._seen = 0
        self._lock = threading.Condition()

    def append(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        faults: tuple[str, ...],
        *,
        dispatched: bool,
    ) -> RequestRecord:
        """Record a request and return its record."""
        with self._lock:
            self._seen += 1
            record = RequestRecord(
                self._seen,
                method,
                path,
                {k: v for k, v in params.items() if k != "signature"},
                faults,
                dispatched,
            )
            self._records.append(record)
            self._lock.notify_all()
            return record

    def records(self, route: str | None = None) -> list[RequestRecord]:
        """Every record, or those of one route (``"POST /api/v3/order"`` or a bare path)."""
        with self._lock:
            records = list(self._records)
        return records if route is None else [r for r in records if _matches(r, route)]

    def wait_for(self, route: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``count`` requests to ``route`` have arrived; False on timeout.

        For a test that sends from another thread and must act once the venue has
        the request (stop the server under it, say) without sleeping.
        """
        with self._lock:
            return self._lock.wait_for(
                lambda: sum(_matches(r, route) for r in self._records) >= count, timeout
            )


def _matches(record: RequestRecord, route: str) -> bool:
    return route in (record.route, record.path)
