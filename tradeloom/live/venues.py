"""What opening a live run's markets needs: the account of `live_account` and its keys, each
market's journaled order layer, the capital, the exchange-side stops, trouble journaled."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from tradeloom.engine.capabilities import live_account
from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.journal import VenueUnreachable
from tradeloom.live.order_journal import JournalOrders
from tradeloom.plugins.component import ParamError
from tradeloom.plugins.execution.ccxt_venue import CcxtVenue
from tradeloom.plugins.execution.exchange_stops import ExchangeStops
from tradeloom.plugins.execution.order_params import OrdersParams

if TYPE_CHECKING:
    from tradeloom.live.context import JournaledRun

__all__ = [
    "market_venue",
    "resting_stops",
    "starting_capital",
    "trading_client",
    "trouble",
]

_log = structlog.get_logger("tradeloom.live")


def resting_stops(
    runner: JournaledRun, venue: CcxtVenue, orders: OrdersParams | None
) -> ExchangeStops | None:
    """Return the market's exchange-side stops (None: ``stops: bar_close``, or a perpetual
    swap's market, whose stops ccxt sends as algo orders: its exits go at the bar close).

    Without a level in the file they place nothing until a hot reload sets one.
    """
    config = runner.p.config
    if orders is not None and orders.stops != "exchange":
        return None
    if venue.client.market(venue.symbol).get("swap"):
        return None
    return ExchangeStops(
        venue,
        stop_loss=config.stop_loss,
        take_profit=config.take_profit,
        follows=config.trailing_stop is not None or config.break_even is not None,
    )


def trading_client(runner: JournaledRun) -> Any:
    """Return the ccxt client of the account the run trades, with its keys.

    Raises:
        ConfigError: The account has no keys.
    """
    account = live_account(runner.config, runner.p.data, runner.p.venue)
    if isinstance(account, Problem):  # the runner checked it; a reloaded file cannot change it
        raise ConfigError([account])
    path, connection = account
    try:
        return connection.trading_client()
    except ParamError as exc:
        where = f"{path}.{exc.key}" if exc.key else path
        raise ConfigError([Problem(runner.config.locate(where), where, exc.message)]) from exc


def market_venue(
    runner: JournaledRun,
    client: Any,
    symbol: str,
    bar_clock: Callable[[], int],
    after_trade_id: str | None,
) -> tuple[CcxtVenue, dict[str, Any]]:
    """Return the ccxt order layer of ``symbol`` on ``client``, journaling through the run's
    journal, and the market's description.

    Raises:
        UserError: The exchange has no market ``symbol``.
        RetriesExhausted: The exchange did not answer.
    """
    assert runner.journal is not None
    orders = JournalOrders(runner.journal, bar_clock, symbol=symbol, mark=runner.sent_mark)
    venue = CcxtVenue(client, symbol, orders, bar_clock=bar_clock, after_trade_id=after_trade_id)
    market = venue.client.market(symbol) if venue.client.markets else None
    if market is None:
        venue.load_markets()
        if symbol not in venue.client.markets:
            account = live_account(runner.config, runner.p.data, runner.p.venue)
            assert not isinstance(account, Problem)  # trading_client checked it
            path, connection = account
            raise UserError(
                f"{runner.config.locate(path)} {path}: {connection.exchange} has no market "
                f"{symbol} (the data's symbol) to trade"
            )
        market = venue.client.market(symbol)
    missing = venue.calls.capabilities.missing()
    if missing:  # asked, not assumed: refused before anything is sent
        account = live_account(runner.config, runner.p.data, runner.p.venue)
        assert not isinstance(account, Problem)  # trading_client checked it
        path = account[0]
        raise UserError(
            f"{runner.config.locate(path)} {path}: {venue.calls.capabilities.describe(symbol)} "
            f"cannot be traded live: ccxt has no {', '.join(missing)} for it "
            "(tradeloom.plugins.execution.ccxt_capabilities lists what a live run needs)"
        )
    return venue, market


def starting_capital(runner: JournaledRun, balance: dict[str, float], quote: str) -> float:
    """Return a new run's capital: ``live.capital``, or the account's ``quote`` balance.

    Raises:
        UserError: ``live.capital`` is more than the account holds.
    """
    free_quote = balance.get(quote, 0.0)
    capital = runner.config.live.capital or free_quote
    if capital > free_quote:
        account = live_account(runner.config, runner.p.data, runner.p.venue)
        exchange = "" if isinstance(account, Problem) else f" on {account[1].exchange}"
        raise UserError(
            f"{runner.config.locate('live.capital')} live.capital: {capital:g} {quote} is "
            f"more than the account's {free_quote:g} {quote}{exchange}"
        )
    return float(capital)


def trouble(runner: JournaledRun, operation: str, message: str) -> None:
    """Journal and log that a venue read failed every retry (``venue_unreachable``)."""
    runner.recorder_or_fail.record(VenueUnreachable(operation=operation, error=message))
    _log.error("venue_unreachable", operation=operation, error=message)
