"""A restart on one market asks it about every client id its run could have sent beyond
its journal.

The journal commits each order's intent (``order_sent``) before the request leaves,
and the sent-id mark (`tradeloom.live.orders.sent_mark`) counts it then, with its id; a
journal that lost its tail after a crash (a cut write-ahead log) has forgotten
intents the venue may hold. The engine, replaying the bars the journal lost, decides
those orders again under the same client ids, and sending them would make a second
order of each. So before anything is sent, a live restart on one market
(`look_up_beyond_journal`; a universe, a portfolio file and a router refuse a cut
journal) looks up at the venue, by client order id, every number after the
journal's highest up to the mark's last id's (the ids between are not all orders
that were sent: a sliced order's parent takes a number and is never sent, so only the
mark's last is known to have gone), as many beyond as the mark counts, and `SLACK`
more (the largest batch of ids a tick can use after the last one it sent: an order
and its market fallback). A mark that counts no order beyond an uncut journal is the
witness that none was sent: nothing is looked up then.

- found: the order is adopted. Its intent is journaled as the venue has it (the
  mark already counts it), a row says it was adopted, it is tracked as a restart
  tracks an order the venue acknowledged (`ExchangeVenue.adopt_found`: its trades are
  counted by trade id), and the engine takes it as its own (`Engine.adopt`): its
  fills are booked once, as any order's, and a later restart's replay adopts it
  again where this one did (the journal's ``adopted`` row);
- not found: once the venue's window for a request sent after the mark was written
  has passed (`CcxtVenue.settle_seconds`, on the venue's clock; the restart waits
  out the rest), the id was never sent; for the mark's last id, which was, a row
  says so. The mark is set back to what the journal holds.

The engine then numbers its orders past every id looked up and the mark's last, and
an order it decides again at a bar up to the one the mark's last order was decided at
is not sent (``LOST_BAR``): the run traded those bars before the crash, and the
venue's orders of them are the run's now. No id goes out for two orders, and no bar
is traded twice. A lookup that fails every attempt refuses the restart in
one line: nothing is sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from tradeloom.domain import Order
from tradeloom.journal import OrderStateChanged
from tradeloom.journal.events.base import NO_TIME
from tradeloom.live.orders.order_journal import sent_row
from tradeloom.live.orders.sent_mark import SentMark
from tradeloom.live.recovery.journal_state import JournalState
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.plugins.protocols_orders.client_ids import client_order_id
from tradeloom.plugins.protocols_orders.order_events import VenueOrder
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.retrying import RetriesExhausted

if TYPE_CHECKING:
    from pathlib import Path

    from tradeloom.journal import JournalStore
    from tradeloom.live.orders.exchange_venue import ExchangeVenue
    from tradeloom.live.tick.session import LiveSession

__all__ = ["SLACK", "look_up_beyond_journal"]

SLACK = 2
"""Ids looked up past the mark's last and those it counts beyond the journal."""

_ADOPTABLE = ("market", "limit")
_log = logger("tradeloom.live")


def look_up_beyond_journal(
    run_dir: Path,
    journal: JournalStore,
    session: LiveSession,
    state: JournalState,
    market: ExchangeVenue,
    mark: SentMark,
    *,
    cut: bool,
    name: str,
) -> None:
    """Adopt the run's orders the venue has beyond the journal; journal the ids never sent.

    Called once the replay has rebuilt the session (its rows carry the bar in
    progress), before anything is sent.

    Args:
        run_dir: The run directory (named in a refusal).
        journal: The run's journal.
        session: Its session, the replay's.
        state: The journal, read.
        market: The run's one market.
        mark: The mark of the orders the run sent.
        cut: The journal's tail record says it lost rows.
        name: The name the run's client ids start with (the strategy's).

    Raises:
        RestartRefused: A lookup failed every attempt, or the venue has an order of a
            type a restart cannot adopt (one line; nothing was sent).
    """
    assert state.started is not None
    venue = market.venue
    key = state.started.run_key
    ours = re.compile(rf"-{re.escape(key)}-(\d+)$")
    # the bars the journal lost up to the last order sent were traded: not again (a
    # restart before the run got past them again too)
    if mark.bar is not None and mark.bar >= len(session.history):
        market.lost_through = mark.bar
    highest = max((_number_of(ours, i) for i in state.sent), default=0)
    beyond = max(mark.sent - len(state.sent), 0)
    unwitnessed = mark.written_at is None and bool(state.sent)  # a run from before marks
    if not (beyond or cut or unwitnessed):
        return
    last = _number_of(ours, mark.last) if mark.last not in state.sent else -1
    top = max(highest + beyond, last) + SLACK
    wanted = [client_order_id(name, key, n) for n in range(highest + 1, top + 1)]
    found = {client_id: _find(run_dir, market, client_id) for client_id in wanted}
    absent = [i for i in wanted if found[i] is None]
    written = mark.written_at
    wait = 0.0 if written is None else written + venue.settle_seconds - venue.clock()
    if absent and wait > 0:
        # a request sent after the mark was written may still arrive: its window first
        _log.info("sent_lookup_waits", seconds=round(wait, 1), client_ids=absent)
        venue.sleep(wait)
        for client_id in absent:
            found[client_id] = _find(run_dir, market, client_id)
    bar = len(session.history)
    adopted = []
    for client_id in wanted:
        there = found[client_id]
        if there is not None:
            _adopt(run_dir, journal, session, market, client_id, there, bar, venue.clock)
            adopted.append(client_id)
        elif client_id == mark.last:
            journal.append(
                _found_state(
                    venue.symbol,
                    client_id,
                    bar,
                    "never_sent",
                    "restart: the sent-id mark counts it, the venue has no order of it "
                    "after its window: never sent",
                )
            )
    journal.flush()
    # no id is used twice: the engine numbers its next order past the mark's last too
    engine = session.engine
    engine.sequence = max(engine.sequence, last)
    if beyond or adopted:
        mark.rebase(len(state.sent) + len(adopted), mark.last)
        _log.warning(
            "sent_lookup",
            journal_sent=len(state.sent),
            mark_sent=len(state.sent) + beyond,
            adopted=adopted,
            looked_up=len(wanted),
        )


def _find(run_dir: Path, market: ExchangeVenue, client_id: str) -> dict[str, Any] | None:
    """Return the market's order ``client_id`` (None: it has none)."""
    try:
        return market.venue.find(client_id)
    except RetriesExhausted as error:
        raise RestartRefused(
            f"{run_dir}: could not ask the venue about order {client_id}, which "
            f"the run may have sent beyond its journal ({error}); refusing to restart: "
            "nothing was sent"
        ) from None


def _adopt(
    run_dir: Path,
    journal: JournalStore,
    session: LiveSession,
    exchange: ExchangeVenue,
    client_id: str,
    found: dict[str, Any],
    bar: int,
    clock: Callable[[], float],
) -> None:
    kind = str(found.get("type") or "")
    side = str(found.get("side") or "")
    amount = _number(found.get("amount"))
    if kind not in _ADOPTABLE or side not in ("buy", "sell") or not amount > 0:
        raise RestartRefused(
            f"{run_dir}: the venue has order {client_id} of this run beyond its "
            f"journal, a {kind or '?'} {side or '?'} of {amount:g}, which a restart cannot "
            "adopt; refusing to restart: nothing was sent"
        )
    stamp = _number(found.get("timestamp"))
    sent_at = stamp / 1000.0 if math.isfinite(stamp) else clock()
    price = _number(found.get("price"))
    limit = price if kind == "limit" and math.isfinite(price) else None
    order = Order(
        id=client_id,
        bar=bar,
        timestamp=pd.Timestamp(sent_at, unit="s", tz="UTC"),
        side=1 if side == "buy" else -1,
        quantity=amount,
        reason="ADOPTED",
        reference_price=_number(found.get("average")) if limit is None else limit,
        kind="limit" if limit is not None else "market",
        limit_price=math.nan if limit is None else limit,
    )
    order_type: Any = order.kind
    order_side: Any = side
    request = VenueOrder(order, exchange.venue.symbol, order_type, order_side, amount, limit)
    # the intent as the venue has it: the mark counted it when it was sent
    journal.append(sent_row(request, sent_at))
    journal.append(
        _found_state(
            exchange.venue.symbol,
            client_id,
            bar,
            "adopted",
            f"restart: found at the venue beyond the journal ({found.get('status')}, "
            f"{_number(found.get('filled')):g} filled): tracked, never sent again",
        )
    )
    venue_id = found.get("id")
    exchange.adopt_found(
        request, sent_at=sent_at, venue_id=None if venue_id is None else str(venue_id)
    )
    session.engine.adopt(order)


def _found_state(
    symbol: str, client_id: str, bar: int, state: str, reason: str
) -> OrderStateChanged:
    """Return the row of what the restart's lookup made of ``client_id`` (from unknown)."""
    return OrderStateChanged(
        bar=bar,
        timestamp=NO_TIME,
        symbol=symbol,
        client_id=client_id,
        previous="unknown",
        state=state,
        reason=reason,
        filled=0.0,
    )


def _number_of(ours: re.Pattern[str], client_id: str) -> int:
    found = ours.search(client_id)
    return -1 if found is None else int(found.group(1))


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
