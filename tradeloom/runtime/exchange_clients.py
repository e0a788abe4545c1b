"""How the ccxt clients of an exchange are made, swapped for a stand-in while a block lasts.

Every ccxt client of market data or of an account is made by the data layer
(`tradeloom.plugins.data.ccxt_client.create_client`, and ccxt.pro's by
`tradeloom.plugins.data.ccxt_stream.pro_client_factory`), which asks here first: a
stand-in set for the exchange id makes its clients instead of ccxt's class. Tests, and
``--clock simulated``, point every client of ``binance`` at the loopback emulator so;
a websocket stand-in of None makes the exchange streamless (REST polling only).
Process-wide, as the clients are; blocks nest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = [
    "ClientMaker",
    "rest_stand_in",
    "use_rest_stand_in",
    "use_websocket_stand_in",
    "websocket_stand_in",
]

ClientMaker = Callable[[Mapping[str, Any]], Any]
"""Make a client from ccxt constructor settings (``{"enableRateLimit": True, ...}``)."""

_V = TypeVar("_V")

_rest: dict[str, ClientMaker] = {}
_websocket: dict[str, ClientMaker | None] = {}
_lock = threading.Lock()


def rest_stand_in(exchange_id: str) -> ClientMaker | None:
    """Return what makes the REST clients of ``exchange_id`` now (None: ccxt's class)."""
    with _lock:
        return _rest.get(exchange_id)


def websocket_stand_in(exchange_id: str) -> tuple[bool, ClientMaker | None]:
    """Return whether the ccxt.pro clients of ``exchange_id`` are stood in for, and by
    what (None: the exchange streams nothing)."""
    with _lock:
        return exchange_id in _websocket, _websocket.get(exchange_id)


@contextmanager
def use_rest_stand_in(exchange_id: str, maker: ClientMaker) -> Iterator[None]:
    """Make the REST clients of ``exchange_id`` with ``maker`` inside the ``with`` block."""
    with _override(_rest, _lock, exchange_id, maker):
        yield


@contextmanager
def use_websocket_stand_in(exchange_id: str, maker: ClientMaker | None) -> Iterator[None]:
    """Make the ccxt.pro clients of ``exchange_id`` with ``maker`` inside the ``with``
    block (None: none; the exchange streams nothing, its bars are polled)."""
    with _override(_websocket, _lock, exchange_id, maker):
        yield


@contextmanager
def _override(
    factories: dict[str, _V], lock: threading.Lock, exchange_id: str, factory: _V
) -> Iterator[None]:
    """Set ``factories[exchange_id]`` to ``factory`` inside the ``with`` block.

    On leaving it the previous entry is back, or none where there was none, so blocks
    nest; ``lock`` guards ``factories``.
    """
    with lock:
        had_previous = exchange_id in factories
        previous = factories.get(exchange_id)
        factories[exchange_id] = factory
    try:
        yield
    finally:
        with lock:
            if had_previous:
                factories[exchange_id] = previous  # type: ignore[assignment]
            else:
                factories.pop(exchange_id, None)
