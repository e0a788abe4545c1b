"""What opening a live run's markets needs: the account of `live_account` and its keys, each
market's journaled order layer, the capital, the exchange-side stops, trouble journaled."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tradeloom.engine.capabilities import live_account
from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.journal import VenueUnreachable
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.exchange_stops import ExchangeStops
from tradeloom.live.orders.order_batch import OrderBatch
from tradeloom.live.orders.order_journal import JournalOrders
from tradeloom.plugins.component import ParamError
from tradeloom.plugins.protocols_orders.order_params import OrdersParams
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles

__all__ = [
    "market_venue",
    "resting_stops",
    "starting_capital",
    "trading_client",
    "trouble",
    "trouble_of",
]

_log = logger("tradeloom.live")


def resting_stops(
    markets: Markets, venue: CcxtVenue, orders: OrdersParams | None
) -> ExchangeStops | None:
    """Return the market's exchange-side stops (None: ``stops: bar_close``, or a perpetual
    swap's market, whose stops ccxt sends as algo orders: its exits go at the bar close).

    Without a level in the file they place nothing until a hot reload sets one.
    """
    config = markets.p.config
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


def trading_client(files: RunFiles, markets: Markets) -> Any:
    """Return the ccxt client of the account the run trades, with its keys.

    Raises:
        ConfigError: The account has no keys.
    """
    account = _account(files, markets)
    if isinstance(account, Problem):  # the runner checked it; a reloaded file cannot change it
        raise ConfigError([account])
    path, connection = account
    try:
        return connection.trading_client()
    except ParamError as exc:
        where = f"{path}.{exc.key}" if exc.key else path
        raise ConfigError([Problem(files.config.locate(where), where, exc.message)]) from exc


def market_venue(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    client: Any,
    symbol: str,
    bar_clock: Callable[[], int],
    after_trade_id: str | None,
    *,
    batch: OrderBatch | None = None,
) -> tuple[CcxtVenue, dict[str, Any]]:
    """Return the ccxt order layer of ``symbol`` on ``client``, journaling through the run's
    journal, and the market's description.

    ``batch``: the account's batch its orders join (``execution.orders.batch``).

    Raises:
        UserError: The exchange has no market ``symbol``.
        RetriesExhausted: The exchange did not answer.
    """
    orders = JournalOrders(link.journal_or_fail, bar_clock, symbol=symbol, mark=link.sent_mark)
    venue = CcxtVenue(
        client, symbol, orders, bar_clock=bar_clock, after_trade_id=after_trade_id, batch=batch
    )
    market = venue.client.market(symbol) if venue.client.markets else None
    if market is None:
        venue.load_markets()
        if symbol not in venue.client.markets:
            account = _account(files, markets)
            assert not isinstance(account, Problem)  # trading_client checked it
            path, connection = account
            raise UserError(
                f"{files.config.locate(path)} {path}: {connection.exchange} has no market "
                f"{symbol} (the data's symbol) to trade"
            )
        market = venue.client.market(symbol)
    missing = venue.calls.capabilities.missing()
    if missing:  # asked, not assumed: refused before anything is sent
        account = _account(files, markets)
        assert not isinstance(account, Problem)  # trading_client checked it
        path = account[0]
        raise UserError(
            f"{files.config.locate(path)} {path}: {venue.calls.capabilities.describe(symbol)} "
            f"cannot be traded live: ccxt has no {', '.join(missing)} for it "
            "(tradeloom.live.orders.ccxt_capabilities lists what a live run needs)"
        )
    return venue, market


def starting_capital(
    files: RunFiles, markets: Markets, balance: dict[str, float], quote: str
) -> float:
    """Return a new run's capital: ``live.capital``, or the account's ``quote`` balance.

    Raises:
        UserError: ``live.capital`` is more than the account holds.
    """
    free_quote = balance.get(quote, 0.0)
    capital = files.config.live.capital or free_quote
    if capital > free_quote:
        account = _account(files, markets)
        exchange = "" if isinstance(account, Problem) else f" on {account[1].exchange}"
        raise UserError(
            f"{files.config.locate('live.capital')} live.capital: {capital:g} {quote} is "
            f"more than the account's {free_quote:g} {quote}{exchange}"
        )
    return float(capital)


def trouble(link: JournalLink, operation: str, message: str) -> None:
    """Journal and log that a venue read failed every retry (``venue_unreachable``)."""
    link.recorder_or_fail.record(VenueUnreachable(operation=operation, error=message))
    _log.error("venue_unreachable", operation=operation, error=message)


def trouble_of(link: JournalLink, name: str) -> Callable[[str, str], None]:
    """Return `trouble` of one market or venue: its messages start with ``name`` ('':
    a run's one market, not named)."""

    def told(operation: str, message: str) -> None:
        trouble(link, operation, f"{name}: {message}" if name else message)

    return told


def _account(files: RunFiles, markets: Markets) -> Any:
    return live_account(files.config, markets.p.data, markets.p.venue)
