"""A restart asks the venue about every client id its run could have sent beyond its journal.

The journal commits each order's intent (``order_sent``) before the request leaves,
and the sent-id mark (`tradeloom.live.sent_mark`) counts it then; a journal
that lost its tail after a crash (a cut write-ahead log) has forgotten intents the
venue may hold. The engine, replaying the bars the journal lost, decides those
orders again under the same client ids, and sending them would make a second order
of each. So before anything is sent, a live restart on one market
(`look_up_beyond_journal`) looks up at the venue, by client order id:

- every id after the journal's highest, as many as the mark counts beyond the
  journal plus `SLACK` (the largest batch of ids a tick can use after the last
  one it sent: an order and its market fallback), and the mark's last id. A mark
  that counts no order beyond an uncut journal is the witness that none was sent:
  nothing is looked up then;
- found: the order is adopted. Its intent is journaled as the venue has it (the
  mark already counts it), a row says it was adopted, and it is tracked as a
  restart tracks an order of unknown end (its trades are counted by trade id).
  Its fills wait for the engine's order of the same id, which is then bound to it
  and never sent (`ExchangeVenue.adopt_found`);
- not found, for an id the mark counts: once the venue's window for a request
  sent after the mark was written has passed (`CcxtVenue.settle_seconds`; the
  restart waits out the rest), the id was never sent: a row says so, and the mark
  is set back to what the journal holds, so the id goes out once when the engine
  decides it.

An id adopted by an earlier restart whose engine order was lost again is adopted
again from its journaled intent and trades. A lookup that fails every attempt
refuses the restart in one line: nothing is sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import structlog

from tradeloom.domain import Order
from tradeloom.journal import OrderStateChanged
from tradeloom.journal.events import NO_TIME
from tradeloom.live.journal_state import JournalState
from tradeloom.live.order_journal import sent_row
from tradeloom.live.reconcile import RestartRefused, sent_request, trade_fill
from tradeloom.live.sent_mark import SentMark
from tradeloom.plugins.execution.client_ids import client_order_id
from tradeloom.plugins.execution.order_events import VenueOrder
from tradeloom.retrying import RetriesExhausted

if TYPE_CHECKING:
    from tradeloom.live.context import JournaledRun
    from tradeloom.live.exchange_venue import ExchangeVenue

__all__ = ["SLACK", "look_up_beyond_journal"]

SLACK = 2
"""Ids looked up past those the mark counts beyond the journal."""

_ADOPTABLE = ("market", "limit")
_log = structlog.get_logger("tradeloom.live")


def look_up_beyond_journal(
    runner: JournaledRun,
    state: JournalState,
    markets: Mapping[str, ExchangeVenue],
    mark: SentMark,
    *,
    cut: bool,
    names: Sequence[str],
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> None:
    """Adopt the run's orders the venue has beyond the journal; journal the ids never sent.

    Called once the replay has rebuilt the session (its rows carry the bar in
    progress), before anything is sent. Each id is asked of every market of the account
    (the run's client ids count across its markets): found in one, it is adopted there.

    Args:
        markets: The account's markets, by symbol.
        cut: The journal's tail record says it lost rows.
        names: The names the run's client ids start with (a strategy's; a portfolio's
            strategies').
        sleep: Waits out a request's window (None: the first market's venue's).
        clock: Seconds since the epoch, the clock the mark and the venue's window are
            on (None: the first market's venue's).

    Raises:
        RestartRefused: A lookup failed every attempt, or the venue has an order of a
            type a restart cannot adopt (one line; nothing was sent).
    """
    assert state.started is not None and runner.journal is not None
    first = next(iter(markets.values())).venue
    sleep = first.sleep if sleep is None else sleep
    clock = first.clock if clock is None else clock
    key = state.started.run_key
    ours = re.compile(rf"-{re.escape(key)}-(\d+)$")
    journal = runner.journal
    _readopt(state, markets, ours)
    numbers = [int(m.group(1)) for i in state.sent if (m := ours.search(i))]
    highest = max(numbers, default=0)
    beyond = max(mark.sent - len(state.sent), 0)
    unwitnessed = mark.written_at is None and bool(state.sent)  # a run from before marks
    if not (beyond or cut or unwitnessed):
        return
    # the n-th order's id names the strategy that decided it: any of them, for a portfolio
    counted = {
        client_order_id(name, key, highest + n) for name in names for n in range(1, beyond + 1)
    }
    if mark.last and mark.last not in state.sent and beyond:
        counted.add(mark.last)
    wanted = sorted(
        counted
        | {
            client_order_id(name, key, highest + beyond + n)
            for name in names
            for n in range(1, SLACK + 1)
        }
    )
    found = {client_id: _find(runner, markets, client_id) for client_id in wanted}
    # a number the mark counts was one strategy's order: where one name's id is at the
    # venue, the others' of that number were never decided, and are not counted
    taken = {_number_of(ours, i) for i, there in found.items() if there is not None}
    counted = {i for i in counted if i == mark.last or _number_of(ours, i) not in taken} | {
        i for i in counted if found[i] is not None
    }
    absent = [i for i in sorted(counted) if found[i] is None]
    written = mark.written_at
    settle = max(market.venue.settle_seconds for market in markets.values())
    wait = 0.0 if written is None else written + settle - clock()
    if absent and wait > 0:
        # a request sent after the mark was written may still arrive: its window first
        _log.info("sent_lookup_waits", seconds=round(wait, 1), client_ids=absent)
        sleep(wait)
        for client_id in absent:
            found[client_id] = _find(runner, markets, client_id)
    bar = len(runner.session_or_fail.history)
    adopted = []
    for client_id in wanted:
        there = found[client_id]
        if there is not None:
            _adopt(runner, there[0], client_id, there[1], bar, clock)
            adopted.append(client_id)
        elif client_id in counted:
            journal.append(
                _found_state(
                    runner.symbol if len(markets) == 1 else "",
                    client_id,
                    bar,
                    "never_sent",
                    "restart: the sent-id mark counts it, the venue has no order of it "
                    "after its window: never sent",
                )
            )
    journal.flush()
    if beyond or adopted:
        mark.rebase(len(state.sent) + len(adopted), mark.last)
        _log.warning(
            "sent_lookup",
            journal_sent=len(state.sent),
            mark_sent=len(state.sent) + beyond,
            adopted=adopted,
            never_sent=[i for i in sorted(counted) if found[i] is None],
        )


def _find(
    runner: JournaledRun, markets: Mapping[str, ExchangeVenue], client_id: str
) -> tuple[ExchangeVenue, dict[str, Any]] | None:
    """Return the market that has ``client_id`` and its order (None: none has it)."""
    for market in markets.values():
        try:
            found = market.venue.find(client_id)
        except RetriesExhausted as error:
            raise RestartRefused(
                f"{runner.run_dir}: could not ask the venue about order {client_id}, which "
                f"the run may have sent beyond its journal ({error}); refusing to restart: "
                "nothing was sent"
            ) from None
        if found is not None:
            return market, found
    return None


def _adopt(
    runner: JournaledRun,
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
            f"{runner.run_dir}: the venue has order {client_id} of this run beyond its "
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
    journal = runner.journal
    assert journal is not None
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
        request,
        sent_at=sent_at,
        venue_id=None if venue_id is None else str(venue_id),
        counted=[],
        held=[],
    )


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


def _readopt(
    state: JournalState, markets: Mapping[str, ExchangeVenue], ours: re.Pattern[str]
) -> None:
    """Track again the adopted orders whose engine order the journal lost (again)."""
    for client_id, sent in state.sent.items():
        if client_id in state.orders or not ours.search(client_id):
            continue
        if sent.order_type not in _ADOPTABLE:
            continue
        exchange = markets.get(sent.symbol) or next(iter(markets.values()))
        fills = state.venue_fills.get(client_id, [])
        exchange.adopt_found(
            sent_request(sent),
            sent_at=sent.sent_at,
            venue_id=next((f.venue_order_id for f in fills if f.venue_order_id), None),
            counted=[(f.trade_id, f.quantity) for f in fills],
            held=[exchange.book(trade_fill(f)) for f in fills],
        )


def _number_of(ours: re.Pattern[str], client_id: str) -> int:
    found = ours.search(client_id)
    return -1 if found is None else int(found.group(1))


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
