"""The live venue of a run: the data source's exchange, its keys, the run's journal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from tradeloom.errors import UserError
from tradeloom.plugins.execution.ccxt_venue import CcxtVenue
from tradeloom.runner.live.exchange_venue import ExchangeVenue
from tradeloom.runner.live.order_journal import JournalOrders

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner

__all__ = ["open_exchange_venue"]

_log = structlog.get_logger("tradeloom.live")


def open_exchange_venue(
    runner: LiveRunner, started: dict[str, Any] | None, *, after_trade_id: str | None = None
) -> tuple[ExchangeVenue, dict[str, Any]]:
    """Return the exchange venue and, for a new run, what its ``started`` row records.

    A new run (``started`` None) takes ``live.capital``, or the quote balance, as its
    capital, and records the base balance it started with (reconciliation compares
    the base balance with it plus the run's position). A restart takes them from
    ``started``.

    Raises:
        UserError: The exchange has no keys, or less quote balance than ``live.capital``.
    """
    assert runner.journal is not None
    source = runner.source
    params = source.params
    if params.api_key is None or params.secret is None:
        raise UserError(
            f"{runner.config.locate('data')} data: --mode live trades on {params.exchange} "
            "with the data source's keys: set api_key: ${ENV_VAR} and secret: ${ENV_VAR}"
        )
    session_bar = [0]

    def bar_clock() -> int:
        session = runner.session
        return len(session.history) if session is not None else session_bar[0]

    orders = JournalOrders(runner.journal, bar_clock)
    venue = CcxtVenue(
        source.client,
        params.symbol,
        orders,
        bar_clock=bar_clock,
        after_trade_id=after_trade_id,
    )
    market = venue.client.market(params.symbol) if venue.client.markets else None
    if market is None:
        venue.client.load_markets()
        market = venue.client.market(params.symbol)
    fee_rate = float(market.get("taker") or 0.0)

    def trouble(operation: str, message: str) -> None:
        runner.recorder_or_fail.note(
            "venue_unreachable", {"operation": operation, "error": message}
        )
        _log.error("venue_unreachable", operation=operation, error=message)

    if started is None:
        balance = venue.balance()
        quote, base = str(market["quote"]), str(market["base"])
        free_quote = balance.get(quote, 0.0)
        capital = runner.config.live.capital or free_quote
        if capital > free_quote:
            raise UserError(
                f"{runner.config.locate('live.capital')} live.capital: {capital:g} {quote} is "
                f"more than the account's {free_quote:g} {quote} on {params.exchange}"
            )
        extra = {"base_at_start": balance.get(base, 0.0), "fee_rate": fee_rate}
    else:
        capital = float(started["capital"])
        extra = {}
        fee_rate = float(started.get("fee_rate", fee_rate))
    exchange = ExchangeVenue(
        venue,
        initial_cash=capital,
        fee_rate=fee_rate,
        on_trouble=trouble,
    )
    return exchange, {**extra, "dust": exchange.dust}
