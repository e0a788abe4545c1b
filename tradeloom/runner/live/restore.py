"""Restart a paper or live run from its journal, then check it against the venue.

The journal is the source of truth. A restart:

1. checks that the history the run started from is the same (its SHA-256);
2. replays the history and every journaled bar through a new engine, with the
   model's journaled verdicts, the journal's fills (`ReplayVenue`; a paper run
   simply replays its simulated venue) and the kill switch's journaled halts and
   resumes, into a scratch journal; the rows it writes must be the journal's (the
   last bar may have been cut short by the crash: its replayed rows beyond the
   journal's are appended). This rebuilds cash, position, peak equity, the
   signal, risk and monitor state and the client-id counter exactly;
3. live: tracks again every order still pending: one whose intent was journaled
   is looked up by its client order id (`CcxtVenue.recover`; the trades the
   journal counted are not counted again, the ones it counted but had not
   applied are applied once); one whose intent was not journaled was never sent;
4. retrains the fold in effect when the run stopped (same rows, same seed);
5. live: reconciles: resolves and polls the venue, then compares the account's
   base balance with the balance at the first start plus the position, and
   refuses to trade on a difference beyond ``live.position_tolerance`` and what
   the orders still unknown (their lookups failed) may have filled, or on an open
   order of this run the journal does not know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import structlog

from tradeloom.domain import Bars, Cancellation, Fill, Order
from tradeloom.errors import UserError
from tradeloom.plugins.execution.order_events import TradeFill, VenueOrder
from tradeloom.plugins.execution.order_state import OrderState
from tradeloom.runner.journal import Journal
from tradeloom.runner.live.bar_history import BarHistory, history_sha256
from tradeloom.runner.live.journal_state import ENGINE_TYPES, JournalState
from tradeloom.runner.live.replay_venue import ReplayVenue
from tradeloom.runner.live.session import KILL_CODE, LiveSession

if TYPE_CHECKING:
    from tradeloom.runner.live.exchange_venue import ExchangeVenue
    from tradeloom.runner.live.runner import LiveRunner

__all__ = ["RestartRefused", "restart"]

_log = structlog.get_logger("tradeloom.live")


class RestartRefused(UserError):
    """The journal, the data or the venue disagree: the run must not trade."""


class _PinnedClock:
    """The runner's clock, or during a replay the journaled wall time of the bar."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.pinned: pd.Timestamp | None = None

    def __call__(self) -> pd.Timestamp:
        return self.pinned if self.pinned is not None else self.clock()


class _SilentHook:
    """A hook relay that tells no observer anything (a replay's events were told)."""

    def __getattr__(self, name: str) -> Any:
        return lambda **kwargs: None


def restart(
    runner: LiveRunner, state: JournalState, bars: Bars, features: pd.DataFrame
) -> tuple[LiveSession, ExchangeVenue | None]:
    """Rebuild the run's session from ``state``; return it and the live venue (if live).

    Raises:
        RestartRefused: The history changed, the replay disagrees with the journal,
            or the venue disagrees with the journal's position.
    """
    assert runner.journal is not None and runner.recorder is not None
    started = state.started
    warm = state.warm_up
    first = int(warm.get("bars", 0))
    history = _history(runner, bars, features, first, warm)
    clock = _PinnedClock(runner.now)
    runner.now = clock
    exchange: ExchangeVenue | None = None
    if runner.mode == "live":
        from tradeloom.runner.live.venues import open_exchange_venue

        exchange, _ = open_exchange_venue(runner, started, after_trade_id=state.max_trade_id)
        replay_venue: Any = ReplayVenue(
            state,
            initial_cash=float(started["capital"]),
            fee_rate=exchange.fee_rate,
            dust=exchange.dust,
        )
    else:
        replay_venue = runner.p.venue
    recorder = runner.recorder
    real_journal, real_hook = recorder.journal, recorder.hook
    scratch = Journal(runner.run_dir / ".replay.sqlite", flush_every=1_000_000)
    recorder.journal, recorder.hook = scratch, _SilentHook()  # type: ignore[assignment]
    try:
        session = runner.build_session(history, replay_venue, str(started["run_key"]))
        session.replaying = True
        runner.warm_up(session)
        kills = list(state.kill_switch)
        _apply_kills(session, kills, first - 1)
        for live in state.bars:
            clock.pinned = live.wall_time
            session.step(live.time, live.values, given=live.verdict)
            _apply_kills(session, kills, live.index)
        clock.pinned = None
        session.replaying = False
        replayed = scratch.rows()
    finally:
        recorder.journal, recorder.hook = real_journal, real_hook
        scratch.close()
        (runner.run_dir / ".replay.sqlite").unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            (runner.run_dir / f".replay.sqlite{suffix}").unlink(missing_ok=True)
    extra = _compare(state, replayed)
    for bar, ts, kind, payload in extra:
        real_journal.append(
            kind,
            json.loads(payload),
            bar=bar,
            timestamp=ts and pd.Timestamp(ts),
            correlation_id="" if bar is None else f"bar-{bar}",
        )
    # the client-id counter: never below an id the journal holds (after a hot reload the
    # replay may have decided fewer orders than the run did)
    session.engine.sequence = max(
        session.engine.sequence, *(int(i.rsplit("-", 1)[-1]) for i in state.orders), 0
    )
    engine_venue: Any = session.engine.venue
    if exchange is not None:
        # The venue stamps what it learns from here on with the session's bar in
        # progress (`open_exchange_venue`'s bar clock), not bar 0.
        runner.session = session
        replay_venue.adopt_journaled(len(history) - 1)
        _track_pending(session, state, replay_venue, exchange)
        engine_venue.inner = exchange
    session.catch_up(state.training)
    recorder.note(
        "restarted",
        {
            "bars_replayed": len(state.bars),
            "rows_completed": len(extra),
            "position": session.engine.portfolio.position,
            "cash": session.engine.portfolio.cash,
            "state": str(session.checks.state.state),
            "wall_time": pd.Timestamp.now(tz="UTC").isoformat(),
        },
        bar=len(history) - 1,
    )
    real_journal.flush()
    if exchange is not None:
        _reconcile(runner, session, exchange, started)
    _log.info(
        "live_restarted",
        bars_replayed=len(state.bars),
        position=session.engine.portfolio.position,
        state=str(session.checks.state.state),
    )
    return session, exchange


def _history(
    runner: LiveRunner, bars: Bars, features: pd.DataFrame, first: int, warm: dict[str, Any]
) -> BarHistory:
    if first < 1 or len(bars) < first:
        raise RestartRefused(
            f"{runner.run_dir}: the journal's warm-up covers {first} bars, the data source "
            f"has {len(bars)}: not the history this run started from"
        )
    head = Bars(bars.frame.iloc[:first], bars.symbol, bars.timeframe, bars.timeframe_seconds)
    if history_sha256(head) != warm.get("sha256"):
        raise RestartRefused(
            f"{runner.run_dir}: the data source's first {first} bars are not the ones this "
            "run started from (their SHA-256 differs); the cache or data.start changed"
        )
    return BarHistory(head, features.iloc[:first])


def _apply_kills(session: LiveSession, kills: list[tuple[int, Any]], bar: int) -> None:
    while kills and kills[0][0] <= bar:
        _, change = kills.pop(0)
        if change is None:
            session.cancel_for_kill()
        elif change.code == KILL_CODE:
            session.kill(change.message)
        else:
            session.resume(change.message)


def _compare(
    state: JournalState, replayed: list[tuple[int, int | None, str | None, str, str, str]]
) -> list[tuple[int | None, str | None, str, str]]:
    """Check the replay's engine rows against the journal's, bar by bar.

    Bars up to the last hot reload were decided under older settings than the file
    replayed now: they are not compared (their fills come from the journal all the
    same). The last bar may have been cut short by the crash: the replay's rows of it
    beyond the journal's are returned, to be journaled.
    """
    mine = _by_bar((bar, ts, kind, text) for _, bar, ts, kind, _, text in replayed)
    theirs = _by_bar(state.engine_rows)
    last = state.bars[-1].index if state.bars else None
    settled = -1 if state.reloaded_at is None else state.reloaded_at
    extra: list[tuple[int | None, str | None, str, str]] = []
    for bar in sorted(set(mine) | set(theirs), key=lambda b: -1 if b is None else b):
        if bar is not None and bar <= settled:
            continue
        again, journaled = mine.get(bar, []), theirs.get(bar, [])
        common = min(len(again), len(journaled))
        for i in range(common):
            if again[i] != journaled[i]:
                raise RestartRefused(
                    f"the journal and a replay of its bars disagree at bar {bar}: journal "
                    f"{journaled[i][2]} {journaled[i][3][:160]}, replay {again[i][2]} "
                    f"{again[i][3][:160]}; the strategy file or tradeloom changed since the "
                    "run started: start a new run (another --out)"
                )
        if len(journaled) > common:
            raise RestartRefused(
                f"the journal has rows at bar {bar} the replay does not make "
                f"({journaled[common][2]}); the strategy file or tradeloom changed since the "
                "run started: start a new run (another --out)"
            )
        if len(again) > common:
            if bar != last:
                raise RestartRefused(
                    f"a replay of the journal makes a {again[common][2]} row at bar {bar} the "
                    f"journal does not have; only the last bar ({last}) may have been cut short"
                )
            extra.extend(again[common:])
    return extra


def _by_bar(
    rows: Iterable[tuple[int | None, str | None, str, str]],
) -> dict[int | None, list[tuple[int | None, str | None, str, str]]]:
    grouped: dict[int | None, list[tuple[int | None, str | None, str, str]]] = {}
    for row in rows:
        if row[2] in ENGINE_TYPES:
            grouped.setdefault(row[0], []).append(row)
    return grouped


def _track_pending(
    session: LiveSession, state: JournalState, replayed: ReplayVenue, exchange: ExchangeVenue
) -> None:
    """Hand the orders still pending after the replay to the exchange venue."""
    held: list[Fill | Cancellation] = []
    for order in replayed.pending():
        sent = state.sent.get(order.id)
        if sent is None:
            _log.warning("order_never_sent", client_id=order.id)
            held.append(
                Cancellation(order.id, order.bar, order.timestamp, order.quantity, "NOT_SENT")
            )
            continue
        fills = state.venue_fills.get(order.id, [])
        applied = state.engine_fills.get(order.id, 0)
        venue_id = next((f["venue_order_id"] for f in fills if f.get("venue_order_id")), None)
        request = _request(sent)
        finished = state.order_states.get(order.id) in ("filled", "cancelled", "rejected")
        if finished:
            exchange.adopt(order)
        else:
            exchange.venue.recover(
                request,
                sent_at=float(sent["sent_at"]),
                venue_id=venue_id,
                counted=[(str(f["trade_id"]), float(f["quantity"])) for f in fills],
            )
        for fill in fills[applied:]:
            held.append(exchange.book(_trade_fill(fill)))
    exchange.hold(held)


def _request(sent: dict[str, Any]) -> VenueOrder:
    fields = dict(sent["order"])
    fields["timestamp"] = pd.Timestamp(fields["timestamp"])
    fields["stop_price"] = math.nan if fields.get("stop_price") is None else fields["stop_price"]
    order = Order(**fields)
    return VenueOrder(
        order, sent["symbol"], sent["type"], sent["side"], sent["amount"], sent["price"]
    )


def _trade_fill(row: dict[str, Any]) -> TradeFill:
    fill = Fill(
        row["order_id"],
        int(row["bar"]),
        pd.Timestamp(row["timestamp"]),
        int(row["side"]),
        float(row["quantity"]),
        float(row["price"]),
        float(row["fee"] or 0.0),
        float(row["slippage"] or 0.0),
    )
    return TradeFill(
        str(row["trade_id"]),
        row.get("venue_order_id"),
        fill,
        float(row.get("fee_cost") or 0.0),
        row.get("fee_currency"),
    )


def _reconcile(
    runner: LiveRunner, session: LiveSession, exchange: ExchangeVenue, started: dict[str, Any]
) -> None:
    """Refuse to trade when the venue's base balance is not the journal's position."""
    exchange.refresh()
    venue = exchange.venue
    market = venue.client.market(venue.symbol)
    base = str(market["base"])
    position = session.engine.portfolio.position + exchange.undelivered_position()
    balance = venue.balance().get(base, 0.0)
    held = balance - float(started.get("base_at_start", 0.0))
    tolerance = runner.config.live.position_tolerance * abs(position) + exchange.dust
    # An order the venue did not answer a lookup for (it stays unknown, the next tick
    # asks again) may have filled anything up to what it has left.
    unknown = [view for view in venue.orders() if view.state is OrderState.UNKNOWN]
    moves = [view.request.order.side * max(view.quantity - view.filled, 0.0) for view in unknown]
    low, high = sum(min(m, 0.0) for m in moves), sum(max(m, 0.0) for m in moves)
    recorder = runner.recorder_or_fail
    row = {
        "position": position,
        "venue_position": held,
        "base_balance": balance,
        "tolerance": tolerance,
        "unknown_orders": [view.client_id for view in unknown],
    }
    recorder.note("reconciled", row, bar=len(session.history) - 1)
    assert runner.journal is not None
    runner.journal.flush()
    difference = held - position
    if not np.isfinite(held) or not low - tolerance <= difference <= high + tolerance:
        pending = f", {len(unknown)} order(s) unknown" if unknown else ""
        raise RestartRefused(
            f"{runner.run_dir}: the journal's position is {position:.8g} {base}, the venue "
            f"holds {held:.8g} {base} more than at the first start (tolerance {tolerance:.3g}"
            f"{pending}); refusing to trade: find the difference (a manual trade? another "
            "run on this account?) before restarting"
        )
    key = str(started["run_key"])
    tracked = {view.client_id for view in venue.orders()}
    for order in venue.open_orders():
        client_id = str(order.get("clientOrderId") or "")
        if f"-{key}-" in client_id and client_id not in tracked:
            raise RestartRefused(
                f"{runner.run_dir}: the venue has an open order {client_id} of this run "
                "that the journal does not know; refusing to trade"
            )
