"""The live venue of a run: the account of `live_account`, its keys, the run's journal."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.journal import RunStarted, VenueUnreachable
from tradeloom.plugins.component import ParamError
from tradeloom.plugins.execution.ccxt_venue import CcxtVenue
from tradeloom.plugins.execution.exchange_stops import ExchangeStops
from tradeloom.plugins.execution.order_params import OrdersParams
from tradeloom.runner.live.capabilities import live_account
from tradeloom.runner.live.exchange_venue import ExchangeVenue
from tradeloom.runner.live.order_journal import JournalOrders

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner

__all__ = [
    "market_venue",
    "open_exchange_venue",
    "resting_stops",
    "starting_capital",
    "trading_client",
    "trouble",
]

_log = structlog.get_logger("tradeloom.live")


def open_exchange_venue(
    runner: LiveRunner, started: RunStarted | None, *, after_trade_id: str | None = None
) -> tuple[ExchangeVenue, dict[str, Any]]:
    """Return the exchange venue and, for a new run, what its ``started`` row records.

    A new run (``started`` None) takes ``live.capital``, or the quote balance, as its
    capital, and records the base balance it started with (reconciliation compares
    the base balance with it plus the run's position). A restart takes them from
    ``started``.

    Raises:
        ConfigError: The account has no keys.
        UserError: The exchange has no market of the data's symbol, or less quote
            balance than ``live.capital``.
    """
    assert runner.journal is not None
    client = trading_client(runner)
    symbol = runner.symbol
    session_bar = [0]

    def bar_clock() -> int:
        session = runner.session
        return len(session.history) if session is not None else session_bar[0]

    venue, market = market_venue(runner, client, symbol, bar_clock, after_trade_id)
    fee_rate = float(market.get("taker") or 0.0)
    if started is None:
        balance = venue.balance()
        capital = starting_capital(runner, balance, str(market["quote"]))
        base = str(market["base"])
        extra = {"base_at_start": balance.get(base, 0.0), "fee_rate": fee_rate}
    else:
        capital = started.capital
        extra = {}
        fee_rate = fee_rate if math.isnan(started.fee_rate) else started.fee_rate
    orders = getattr(getattr(runner.p.venue, "params", None), "orders", None)
    exchange = ExchangeVenue(
        venue,
        initial_cash=capital,
        fee_rate=fee_rate,
        on_trouble=lambda operation, message: trouble(runner, operation, message),
        orders=orders,
        stops=resting_stops(runner, venue, orders),
    )
    return exchange, {**extra, "dust": exchange.dust}


def resting_stops(
    runner: LiveRunner, venue: CcxtVenue, orders: OrdersParams | None
) -> ExchangeStops | None:
    """Return the market's exchange-side stops (None: ``stops: bar_close``).

    Without a level in the file they place nothing until a hot reload sets one.
    """
    config = runner.p.config
    if orders is not None and orders.stops != "exchange":
        return None
    return ExchangeStops(venue, stop_loss=config.stop_loss, take_profit=config.take_profit)


def trading_client(runner: LiveRunner) -> Any:
    """Return the ccxt client of the account the run trades, with its keys.

    Raises:
        ConfigError: The account has no keys.
    """
    account = live_account(runner.config, runner.p.data, runner.p.venue)
    if isinstance(account, Problem):  # LiveRunner checked it; a reloaded file cannot change it
        raise ConfigError([account])
    path, connection = account
    try:
        return connection.trading_client()
    except ParamError as exc:
        where = f"{path}.{exc.key}" if exc.key else path
        raise ConfigError([Problem(runner.config.locate(where), where, exc.message)]) from exc


def market_venue(
    runner: LiveRunner,
    client: Any,
    symbol: str,
    bar_clock: Callable[[], int],
    after_trade_id: str | None,
) -> tuple[CcxtVenue, dict[str, Any]]:
    """Return the ccxt order layer of ``symbol`` on ``client``, journaling through the run's
    journal, and the market's description.

    Raises:
        UserError: The exchange has no market ``symbol``.
    """
    assert runner.journal is not None
    orders = JournalOrders(runner.journal, bar_clock, symbol=symbol, mark=runner.sent_mark)
    venue = CcxtVenue(client, symbol, orders, bar_clock=bar_clock, after_trade_id=after_trade_id)
    market = venue.client.market(symbol) if venue.client.markets else None
    if market is None:
        venue.client.load_markets()
        if symbol not in venue.client.markets:
            account = live_account(runner.config, runner.p.data, runner.p.venue)
            assert not isinstance(account, Problem)  # trading_client checked it
            path, connection = account
            raise UserError(
                f"{runner.config.locate(path)} {path}: {connection.exchange} has no market "
                f"{symbol} (the data's symbol) to trade"
            )
        market = venue.client.market(symbol)
    return venue, market


def starting_capital(runner: LiveRunner, balance: dict[str, float], quote: str) -> float:
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


def trouble(runner: LiveRunner, operation: str, message: str) -> None:
    """Journal and log that a venue read failed every retry (``venue_unreachable``)."""
    runner.recorder_or_fail.record(VenueUnreachable(operation=operation, error=message))
    _log.error("venue_unreachable", operation=operation, error=message)
