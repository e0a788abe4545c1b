"""A real ``ccxt.binance`` client pointed at the loopback emulator.

Two adjustments, both about *where* the client talks, none about *how*: every
API URL is rewritten to the emulator, and ccxt is told that the emulator's URL is
Binance spot. ccxt picks Binance's per-market error table by the URL's host
(``https://api.binance.com/`` means spot, ``https://fapi.binance.com/`` USD-M
futures); a loopback URL matches no host, and
without this, codes such as -1004 and -1008 would map to other exceptions than
the ones production raises. Signing, parsing, error handling and everything else
is ccxt's own code.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import ccxt

__all__ = ["CLIENT_OPTIONS", "LoopbackBinance", "loopback_client"]

CLIENT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    # exchangeInfo of spot only: no fapi/dapi markets, no sapi margin pairs.
    "fetchMarkets": {"types": ["spot"]},
    "fetchMargins": False,
    # load_markets would otherwise call sapi capital/config/getall for currencies.
    "fetchCurrencies": False,
    "adjustForTimeDifference": False,
}
"""ccxt options that keep ``ccxt.binance`` inside the endpoints the emulator serves."""


class LoopbackBinance(ccxt.binance):
    """``ccxt.binance`` whose loopback base URL counts as Binance spot for error mapping."""

    loopback_url = ""

    def get_exceptions_by_url(self, url: str | None, exactOrBroad: str) -> dict[str, Any]:
        """Use the spot error table for the emulator's URLs (USD-M futures' for its
        ``/fapi`` ones), ccxt's own rule otherwise."""
        if url is not None and self.loopback_url and url.startswith(self.loopback_url + "/"):
            futures = url.startswith(self.loopback_url + "/fapi/")
            table: dict[str, Any] = self.safe_dict(
                self.exceptions, "linear" if futures else "spot", {}
            )
            return dict(self.safe_dict(table, exactOrBroad, {}))
        return dict(super().get_exceptions_by_url(url, exactOrBroad))


def loopback_client(base_url: str, **config: Any) -> ccxt.binance:
    """Return a ``ccxt.binance`` whose every API URL points at ``base_url``.

    A call outside the emulated subset then gets a 404 from the emulator instead
    of reaching the internet. Proxy settings from the environment are ignored.

    Args:
        base_url: ``http://127.0.0.1:<port>``.
        **config: ccxt settings (``apiKey``, ``secret``, ``timeout``...) over
            ``enableRateLimit=False``: tests need no throttling; pass True to
            exercise ccxt's. ``options`` are merged over `CLIENT_OPTIONS`.
    """
    options = {**CLIENT_OPTIONS, **config.pop("options", {})}
    settings = {"enableRateLimit": False, **config, "options": options}
    client = LoopbackBinance(settings)
    client.loopback_url = base_url
    client.urls["api"] = {
        name: base_url + urlsplit(url).path if isinstance(url, str) else url
        for name, url in client.urls["api"].items()
    }
    client.session.trust_env = False
    return client
