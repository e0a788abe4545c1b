"""The health of a router's venues: recent failures and latency; a venue marked down.

A venue is marked down after ``failures_to_down`` consecutive failures (a read of its
book or balance that failed, or an order it refused) and skipped by the routing policy
for ``cool_off_seconds``; then it is up again and tried. An order it accepts resets the
count. Each
change is returned as a `VenueHealth` row for the caller to journal.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tradeloom.journal import VenueHealth

__all__ = ["HealthBook"]

_LATENCIES = 9
"""Latencies kept per venue: the recent ones, so that a venue slow for a while is
fast again after a few quick requests."""


@dataclass
class _State:
    failures: int = 0
    down_until: float | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCIES))


class HealthBook:
    """Count each venue's failures and latencies; mark a venue down, and up again.

    Args:
        names: The venues.
        failures_to_down: Consecutive failures that mark a venue down.
        cool_off_seconds: How long a venue stays down.
        clock: Seconds since the epoch.
    """

    def __init__(
        self,
        names: Iterable[str],
        *,
        failures_to_down: int,
        cool_off_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._states = {name: _State() for name in names}
        self.failures_to_down = failures_to_down
        self.cool_off_seconds = cool_off_seconds
        self._clock = clock

    def failures(self, name: str) -> int:
        """Return the venue's consecutive failures."""
        return self._states[name].failures

    def latency(self, name: str) -> float:
        """Return the venue's median recent latency in seconds (NaN: none yet)."""
        recent = sorted(self._states[name].latencies)
        return recent[len(recent) // 2] if recent else float("nan")

    def is_down(self, name: str) -> bool:
        """Return whether the venue is marked down now."""
        until = self._states[name].down_until
        return until is not None and self._clock() < until

    def came_back(self) -> list[VenueHealth]:
        """Return a row for each venue whose cool-off is over (it is up again)."""
        rows = []
        for name, state in self._states.items():
            if state.down_until is not None and self._clock() >= state.down_until:
                state.down_until = None
                state.failures = 0
                rows.append(VenueHealth(venue=name, state="up", failures=0, reason=""))
        return rows

    def observed(self, name: str, seconds: float) -> None:
        """Keep the latency of a read that worked (it does not reset the failures: a
        venue whose book reads fine but that refuses every order is still failing)."""
        self._states[name].latencies.append(seconds)

    def succeeded(self, name: str, seconds: float) -> None:
        """Count an order the venue accepted, sent in ``seconds``: the failures reset."""
        state = self._states[name]
        state.failures = 0
        state.latencies.append(seconds)

    def failed(self, name: str, reason: str) -> VenueHealth | None:
        """Count a failed request; return the row if it marks the venue down."""
        state = self._states[name]
        state.failures += 1
        if state.down_until is None and state.failures >= self.failures_to_down:
            state.down_until = self._clock() + self.cool_off_seconds
            return VenueHealth(venue=name, state="down", failures=state.failures, reason=reason)
        return None
