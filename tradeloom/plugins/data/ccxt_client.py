"""Make ccxt clients: check the exchange id, apply tradeloom's defaults, allow a stand-in.

Every ccxt client tradeloom uses for market data is made by `create_client`, so the
defaults are the same everywhere: ccxt's own rate limiter on (``enableRateLimit``),
and settings checked against the attributes ccxt knows, so a typo (``timout``) is an
error instead of a setting silently ignored.

`use_client_factory` swaps in another way of making the client of one exchange id,
for as long as a ``with`` block lasts (`tradeloom.runtime.exchange_clients`, which
``--clock simulated`` sets directly). Tests (and plugin authors' tests) use it to
point a strategy that says ``exchange: binance`` at the loopback emulator, without
changing the strategy file::

    with ExchangeEmulator(markets, balances) as emulator:
        with use_client_factory("binance", lambda settings: emulator.client(**settings)):
            main(["run", "strategy.yaml"])

Every error one of these clients raises is told to the listeners of
`tradeloom.runtime.exchange_errors.watch_errors` (re-exported here): a paper or live
run counts them by ccxt class (its metrics) and alerts on repeated ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import ccxt

from tradeloom.runtime.exchange_clients import rest_stand_in, use_rest_stand_in
from tradeloom.runtime.exchange_errors import ErrorListener, tell_error, watch_errors
from tradeloom.runtime.redaction import guard_client
from tradeloom.suggestions import did_you_mean

__all__ = [
    "CREDENTIAL_SETTINGS",
    "ClientFactory",
    "ErrorListener",
    "check_exchange_id",
    "create_client",
    "unknown_settings",
    "use_client_factory",
    "watch_errors",
]

ClientFactory = Callable[[Mapping[str, Any]], ccxt.Exchange]
"""Make a client from ccxt constructor settings (``{"enableRateLimit": True, ...}``)."""

CREDENTIAL_SETTINGS = frozenset(
    {
        "apiKey",
        "secret",
        "password",
        "uid",
        "login",
        "privateKey",
        "walletAddress",
        "token",
        "twofa",
    }
)
"""ccxt settings that hold credentials: only ever from ``${ENV}`` secrets, never config."""


def check_exchange_id(exchange_id: str) -> str:
    """Return ``exchange_id`` if ccxt has such an exchange.

    Raises:
        ValueError: It has not; names the closest id.
    """
    if exchange_id not in ccxt.exchanges:
        hint = did_you_mean(exchange_id.lower(), ccxt.exchanges)
        raise ValueError(
            f"must be a ccxt exchange id such as binance, kraken or okx; was '{exchange_id}'{hint}"
        )
    return exchange_id


def create_client(exchange_id: str, settings: Mapping[str, Any] | None = None) -> ccxt.Exchange:
    """Return a ccxt client of ``exchange_id``; no request is made.

    The client's ``verbose`` output goes to the redacted logs, not stdout
    (`tradeloom.runtime.redaction.guard_client`).

    Args:
        exchange_id: A ccxt exchange id (``binance``).
        settings: ccxt constructor settings; ``enableRateLimit`` defaults to True.
    """
    check_exchange_id(exchange_id)
    merged = {"enableRateLimit": True, **(settings or {})}
    factory = rest_stand_in(exchange_id)
    if factory is not None:
        return _watched(guard_client(factory(merged)))
    exchange_class: type[ccxt.Exchange] = getattr(ccxt, exchange_id)
    return _watched(guard_client(exchange_class(merged)))


def _watched(client: ccxt.Exchange) -> ccxt.Exchange:
    # ccxt's every REST request goes through Exchange.fetch, which raises its network
    # errors and maps the exchange's error replies (handle_errors) to ccxt classes.
    fetch = client.fetch
    exchange_id = str(getattr(client, "id", ""))

    def fetch_watched(*args: Any, **kwargs: Any) -> Any:
        try:
            return fetch(*args, **kwargs)
        except ccxt.BaseError as error:
            tell_error(exchange_id, error)
            raise

    client.fetch = fetch_watched
    return client


def unknown_settings(exchange_id: str, settings: Mapping[str, Any]) -> dict[str, str]:
    """Return, for each key of ``settings`` the exchange's client does not have, a message.

    ccxt copies any key it is given onto the client, so a misspelt setting would be
    ignored without a word; here it is named with the closest real one.
    """
    exchange_class: type[ccxt.Exchange] = getattr(ccxt, check_exchange_id(exchange_id))
    known = _setting_names(exchange_class)
    return {
        key: f"'{key}' is not a ccxt setting of {exchange_id}{did_you_mean(key, known)}"
        for key in settings
        if key not in known
    }


@contextmanager
def use_client_factory(exchange_id: str, factory: ClientFactory) -> Iterator[None]:
    """Make clients of ``exchange_id`` with ``factory`` inside the ``with`` block.

    The factory gets the settings `create_client` would have used. Blocks nest; on
    leaving one the previous factory (or ccxt's own class) is back.

    Raises:
        ValueError: ``exchange_id`` is not a ccxt exchange id.
    """
    check_exchange_id(exchange_id)
    with use_rest_stand_in(exchange_id, factory):
        yield


def _setting_names(exchange_class: type[ccxt.Exchange]) -> list[str]:
    # The settings a ccxt client accepts are its data attributes: the class's own and
    # those its describe() declares (``timeout``, ``options``, ``proxies``, ...).
    names = {
        name
        for name in dir(exchange_class)
        if not name.startswith("_") and not callable(getattr(exchange_class, name, None))
    }
    names.update(exchange_class().describe())
    return sorted(names)
