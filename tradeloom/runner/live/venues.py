"""The live venue of a run: the account of `live_account`, its keys, the run's journal."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import structlog

from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.journal import RunStarted, VenueUnreachable
from tradeloom.plugins.component import ParamError
from tradeloom.plugins.execution.ccxt_venue import CcxtVenue
from tradeloom.runner.live.capabilities import live_account
from tradeloom.runner.live.exchange_venue import ExchangeVenue
from tradeloom.runner.live.order_journal import JournalOrders

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner

__all__ = ["open_exchange_venue"]

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
    account = live_account(runner.config, runner.p.data, runner.p.venue)
    if isinstance(account, Problem):  # LiveRunner checked it; a reloaded file cannot change it
        raise ConfigError([account])
    path, connection = account
    try:
        client = connection.trading_client()
    except ParamError as exc:
        where = f"{path}.{exc.key}" if exc.key else path
        raise ConfigError([Problem(runner.config.locate(where), where, exc.message)]) from exc
    symbol = runner.symbol
    session_bar = [0]

    def bar_clock() -> int:
        session = runner.session
        return len(session.history) if session is not None else session_bar[0]

    orders = JournalOrders(runner.journal, bar_clock, symbol=symbol)
    venue = CcxtVenue(
        client,
        symbol,
        orders,
        bar_clock=bar_clock,
        after_trade_id=after_trade_id,
    )
    market = venue.client.market(symbol) if venue.client.markets else None
    if market is None:
        venue.client.load_markets()
        if symbol not in venue.client.markets:
            raise UserError(
                f"{runner.config.locate(path)} {path}: {connection.exchange} has no market "
                f"{symbol} (the data's symbol) to trade"
            )
        market = venue.client.market(symbol)
    fee_rate = float(market.get("taker") or 0.0)

    def trouble(operation: str, message: str) -> None:
        runner.recorder_or_fail.record(VenueUnreachable(operation=operation, error=message))
        _log.error("venue_unreachable", operation=operation, error=message)

    if started is None:
        balance = venue.balance()
        quote, base = str(market["quote"]), str(market["base"])
        free_quote = balance.get(quote, 0.0)
        capital = runner.config.live.capital or free_quote
        if capital > free_quote:
            raise UserError(
                f"{runner.config.locate('live.capital')} live.capital: {capital:g} {quote} is "
                f"more than the account's {free_quote:g} {quote} on {connection.exchange}"
            )
        extra = {"base_at_start": balance.get(base, 0.0), "fee_rate": fee_rate}
    else:
        capital = started.capital
        extra = {}
        fee_rate = fee_rate if math.isnan(started.fee_rate) else started.fee_rate
    exchange = ExchangeVenue(
        venue,
        initial_cash=capital,
        fee_rate=fee_rate,
        on_trouble=trouble,
        orders=getattr(getattr(runner.p.venue, "params", None), "orders", None),
    )
    return exchange, {**extra, "dust": exchange.dust}
