"""Who hears of the exchanges' errors: listeners told of each error a ccxt client raises.

A paper or live run counts every ccxt error by class (its metrics) and alerts on
repeated ones, whichever component's client raised it: the data source's, the
account's, a router venue's. The clients tell `tell_error`
(`tradeloom.plugins.data.ccxt_client.create_client` wraps each it makes); a run listens
with `watch_errors` for as long as a ``with`` block lasts. Process-wide, as the clients
are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["ErrorListener", "tell_error", "watch_errors"]

ErrorListener = Callable[[str, BaseException], None]
"""Told ``(exchange id, error)`` of each ccxt error a client raises."""

_lock = threading.Lock()
_listeners: tuple[ErrorListener, ...] = ()


@contextmanager
def watch_errors(listener: ErrorListener) -> Iterator[None]:
    """Tell ``listener`` of every ccxt error a client of `create_client` raises meanwhile.

    Each HTTP request that fails (a timeout, a 5xx, a 429, an exchange's refusal) is
    told once, from the thread that made it, before the error reaches the caller (who
    may retry it). Blocks nest.
    """
    global _listeners
    with _lock:
        _listeners = (*_listeners, listener)
    try:
        yield
    finally:
        with _lock:
            remaining = list(_listeners)
            remaining.remove(listener)
            _listeners = tuple(remaining)


def tell_error(exchange_id: str, error: BaseException) -> None:
    """Tell every listener watching now that a client of ``exchange_id`` raised ``error``."""
    for listener in _listeners:
        listener(exchange_id, error)
