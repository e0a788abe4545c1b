"""The child process of the crash tests: a live run against the test's emulator, and its killer.

Run as a script, it is ``tradeloom run STRATEGY --mode live --out RUN_DIR [ARGS...]`` with
every ``binance`` client pointed at the emulator at ``URL`` and no websocket::

    python live_child.py URL STRATEGY RUN_DIR [ARGS...]

(``URL`` may be ``NAME=URL,NAME=URL``: a router's venues, each client sent to the one its
API key names, ``NAME-...``.)

Imported as the plugin ``tests.live.live_child`` (the crash tests' strategy lists it under
``plugins:``), it kills its own process with SIGKILL, as ``kill -9`` would, where
``TRADELOOM_CRASH`` says (unset: never):

- ``order:N``: at the N-th order the engine records, before the venue receives it
  (``tradeloom_order``: the ``order`` row is journaled, not yet committed);
- ``fill:N``: at the N-th fill the engine applies (``tradeloom_fill``: the fill and
  the venue's trade rows are journaled, not yet committed);
- ``intent:N``: right after the N-th ``order_sent`` row is committed, before the
  order request leaves (no hook sits there: the script wraps the journal's
  ``before_send``);
- ``fallback:N``: at the N-th market order a limit order falls back to, after the
  exchange confirmed the limit order's cancel, before the market order's intent is
  journaled (the script wraps the venue's ``submit``);
- ``sent:N``: right after the N-th order request came back from the exchange (sent,
  and answered), before anything of its answer is journaled (the script wraps the
  market's ccxt ``create_order``).

Counts start at the process's start; a restart's replay tells observers nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from tradeloom.plugins.hookspecs import hookimpl

CRASH_ENV = "TRADELOOM_CRASH"
"""``point:N``, where this process kills itself (see the module's docstring)."""

SKEW_ENV = "TRADELOOM_TESTS_SKEW_SECONDS"
"""Seconds: the venue's allowance for clock skew in this process, in place of its 5 s
(`CcxtVenue.settle_seconds` is the client's ``recvWindow`` plus it). A test that waits
out an order's window before it restarts the run sets it, to wait less."""

SIGNAL_ENV = "TRADELOOM_SIGNAL_AT_IMPORT"
"""Set: this module sends its own process SIGTERM when it is imported, which is while the
run validates its strategy file (a signal during start-up)."""

_point, _, _nth = os.environ.get(CRASH_ENV, "").partition(":")
if os.environ.get(SIGNAL_ENV) and __name__ != "__main__":  # imported as the plugin
    os.kill(os.getpid(), signal.SIGTERM)
_counts = {"order": 0, "fill": 0, "intent": 0, "fallback": 0, "sent": 0}


def _reached(point: str) -> None:
    if point != _point:
        return
    _counts[point] += 1
    if _counts[point] == int(_nth):
        os.kill(os.getpid(), signal.SIGKILL)


@hookimpl
def tradeloom_order(order: Any) -> None:
    """Count an order; die at the one ``TRADELOOM_CRASH=order:N`` names."""
    _reached("order")


@hookimpl
def tradeloom_fill(fill: Any) -> None:
    """Count a fill; die at the one ``TRADELOOM_CRASH=fill:N`` names."""
    _reached("fill")


def _arm_intent() -> None:
    from tradeloom.live.orders.order_journal import JournalOrders

    before_send = JournalOrders.before_send

    def committed_then_die(self: JournalOrders, order: Any) -> None:
        before_send(self, order)
        _reached("intent")

    JournalOrders.before_send = committed_then_die  # type: ignore[method-assign]


def _arm_fallback() -> None:
    from tradeloom.live.orders.ccxt_venue import CcxtVenue

    submit = CcxtVenue.submit

    def die_at_fallback(self: CcxtVenue, order: Any, **kwargs: Any) -> Any:
        if order.id.endswith("-f"):
            _reached("fallback")
        return submit(self, order, **kwargs)

    CcxtVenue.submit = die_at_fallback  # type: ignore[method-assign]


def _arm_sent() -> None:
    from tradeloom.live.orders.ccxt_capabilities import MarketCalls

    create_order = MarketCalls.create_order

    def sent_then_die(self: MarketCalls, *args: Any) -> Any:
        answer = create_order(self, *args)
        _reached("sent")
        return answer

    MarketCalls.create_order = sent_then_die  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    """Run ``tradeloom run`` in live mode against the emulator at ``argv[0]``."""
    url, strategy, run_dir, *rest = argv
    from tradeloom.cli.main import main as tradeloom
    from tradeloom.plugins.data.ccxt_client import use_client_factory
    from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory

    if _point == "intent":
        _arm_intent()
    if _point == "fallback":
        _arm_fallback()
    if _point == "sent":
        _arm_sent()
    if os.environ.get(SKEW_ENV):
        from tradeloom.live.orders import ccxt_venue

        ccxt_venue._SKEW_SECONDS = float(os.environ[SKEW_ENV])

    # URL, or NAME=URL,NAME=URL: a router's venues, each chosen by its key's NAME- prefix
    urls = dict(part.split("=", 1) for part in url.split(",")) if "=" in url else {}

    def client(settings: dict[str, Any]) -> Any:
        from tradeloom.testing import DEFAULT_API_KEY, loopback_client

        if not urls:
            return loopback_client(url, **{**settings, "enableRateLimit": False})
        name = str(settings.get("apiKey", "")).split("-", 1)[0]
        keys = {"apiKey": DEFAULT_API_KEY}
        return loopback_client(urls[name], **{**settings, **keys, "enableRateLimit": False})

    with use_client_factory("binance", client), use_pro_client_factory("binance", None):
        return tradeloom(["run", strategy, "--mode", "live", "--out", run_dir, *rest])


if __name__ == "__main__":
    from tradeloom.cli.leave import leave

    leave(main(sys.argv[1:]))  # as the ``tradeloom`` command ends
