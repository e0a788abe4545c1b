"""The run against its replay, difference by difference (`Comparison`): each difference's
cause from the journaled facts (`Context`), each fill's P&L split into causes, orders
paired with the replay's (`tradeloom.diagnostics.parity`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.diagnostics.parity_allocation import late_decisions
from tradeloom.diagnostics.parity_journal import ParityJournal
from tradeloom.diagnostics.parity_knock_on import ExplainedSoFar
from tradeloom.journal import journal_path, read_rows

__all__ = [
    "Comparison",
    "Context",
    "as_text",
    "by_bar",
    "close_enough",
    "context",
    "journal_rows",
    "order_pairs",
    "pick",
    "same_lists",
]


@dataclass
class Context:
    """The journaled facts that explain a difference, by the run's bar (a venue's
    refusal: by bar and symbol)."""

    times: dict[int, pd.Timestamp]
    late: set[int]
    reload_bar: float
    kill_bar: float
    refused: dict[tuple[int, str], str]
    late_decided: dict[int, str] = field(default_factory=dict)


def context(journal: ParityJournal, tolerances: Mapping[str, float]) -> Context:
    """Return the journaled facts that explain differences in the run (`Context`)."""
    live = journal.live
    times = {r.bar: pd.Timestamp(r.timestamp) for r in live}
    step = _step(live)
    late: set[int] = set()
    previous: int | None = None
    for r in _first_rows(live):
        close = pd.Timestamp(r.timestamp) + step
        played = r.values.get("wall_time")
        # the run's clock: the wall's, or the simulated one's (an emulator's market time)
        lag = (pd.Timestamp(played) - close) / step if played is not None else 0.0
        # played a bar after its close: its order went out once the next bar had closed
        if (lag > 0 and lag >= tolerances["late"]) or (
            previous is not None and r.bar != previous + 1
        ):
            late.add(r.bar)
        previous = r.bar
    for r in journal.rows["restarted"]:
        late.add(r.bar + 1)
    reloads = [r.bar for r in journal.rows["config_reloaded"]]
    kills = [
        r.bar
        for r in journal.rows["control_request"]
        if r.values.get("action") in ("kill", "flatten")
    ] + [r.bar for r in journal.rows["trading_state"] if r.values.get("code") == "KILL_SWITCH"]
    refused: dict[tuple[int, str], str] = {}
    venue_said = {  # what the venue answered an order it refused (code: message)
        r.values["client_id"]: str(r.values.get("reason") or r.values.get("code"))
        for r in journal.rows["order_state"]
        if r.values.get("state") == "rejected"
    }
    for r in journal.rows["order_cancelled"]:
        said = venue_said.get(r.values.get("order_id"))
        refused.setdefault((r.bar, r.symbol), said or str(r.values.get("reason") or "CANCELLED"))
    children = {r.values["order_id"] for r in journal.rows["route_decision"]}
    for r in journal.rows["order_state"]:  # a router's child a venue refused: routed on
        if r.values.get("state") == "rejected" and r.values["client_id"] in children:
            refused.setdefault((r.bar, r.symbol), venue_said[r.values["client_id"]])
    return Context(
        times,
        late,
        float(min(reloads)) if reloads else math.inf,
        float(min(kills)) if kills else math.inf,
        refused,
        late_decisions(journal.rows["allocation_decided"]),
    )


def _first_rows(live: Sequence[Any]) -> list[Any]:
    """Each bar's first live row, in order (a universe journals a row per symbol)."""
    first: dict[int, Any] = {}
    for r in live:
        first.setdefault(r.bar, r)
    return list(first.values())


def _step(live: Sequence[Any]) -> pd.Timedelta:
    times = pd.DatetimeIndex([pd.Timestamp(r.timestamp) for r in _first_rows(live)])
    if len(times) < 2:
        return pd.Timedelta(hours=1)
    return pd.Timedelta((times[1:] - times[:-1]).min())


def _event_cause(
    bar: int, symbol: str, ctx: Context, *, filled: bool = False, sized: bool = False
) -> tuple[str, str] | None:
    """The journaled event that explains a difference at ``bar`` in ``symbol`` (None:
    none). A decision is late at a late bar or the bar after one; a fill (``filled``)
    only after one: a late bar's own open fill was ordered on time, before it. A fill's
    quantity (``sized``) is never late's: a late order is sent with its size."""
    if (bar, symbol) in ctx.refused:
        return "rejection", ctx.refused[bar, symbol]
    if bar in ctx.late_decided:
        return "late_decision", ctx.late_decided[bar]
    if not sized and (bar - 1 in ctx.late or (bar in ctx.late and not filled)):
        return "late_bars", ""
    if bar >= ctx.kill_bar:
        return "kill", ""
    if bar > ctx.reload_bar:
        return "hot_reload", ""
    return None


def close_enough(a: float, b: float, tolerances: Mapping[str, float]) -> bool:
    """Return whether ``a`` and ``b`` are equal within the tolerances."""
    return math.isclose(a, b, rel_tol=tolerances["relative"], abs_tol=tolerances["absolute"])


def journal_rows(path: Path, kind: str) -> list[Any]:
    """Return the rows of ``kind`` of the journal of the run folder ``path``."""
    return list(read_rows(journal_path(path), [kind]))


class Comparison:
    """The differences found so far and each cause's P&L at every live bar's close.

    A fill moves the equity at close c by ``-s q p - f + s q c`` (side s, quantity q,
    price p, fee f): its difference from the replay's fill is split exactly into causes
    (`fill_pair`), and a fill one side has and the other has not counts whole
    (`unmatched`); what the causes leave of the equity gap is ``unexplained``. In a
    universe each fill moves its own symbol's close; each cause's P&L is kept by symbol
    too (``by_symbol``, at the last close).
    """

    def __init__(self, journal: ParityJournal, ctx: Context, limits: Mapping[str, float]) -> None:
        self.ctx = ctx
        self.limits = limits
        self.venue = journal.mode == "live"
        self.dust = journal.dust
        self.bars = [r.bar for r in _first_rows(journal.live)]
        self.index = {bar: i for i, bar in enumerate(self.bars)}
        self.closes: dict[str, np.ndarray] = {}  # a bar a symbol misses: its last close
        for symbol in journal.symbols:
            closes = pd.Series(np.nan, index=self.bars)
            mine = [r for r in journal.live if r.symbol == symbol]
            closes.loc[[r.bar for r in mine]] = [float(r.values["close"]) for r in mine]
            self.closes[symbol] = closes.ffill().fillna(0.0).to_numpy(np.float64)
        self.differences: list[dict[str, Any]] = []
        self.explained = ExplainedSoFar()  # what `explain` reads of them
        self.apart: dict[str, float] = {}  # the position only one side holds, by symbol
        self.apart_cause: dict[str, tuple[str, str]] = {}
        self.pnl: dict[str, np.ndarray] = {}
        self.by_symbol: dict[str, dict[str, float]] = {s: {} for s in journal.symbols}
        self.by_venue: dict[str, dict[str, float]] = {}  # a router's: by venue
        # by order and venue (a router's: what its children at the venue were sent)
        routes = {r.values["order_id"]: r for r in journal.rows["route_decision"]}
        self.ordered: dict[tuple[str, str], float] = {}
        for r in journal.rows["order"]:
            self.ordered[str(r.values["id"]), ""] = float(r.values["quantity"])
        for r in routes.values():
            key = (str(r.values["parent_id"]), str(r.values["venue"]))
            self.ordered[key] = self.ordered.get(key, 0.0) + float(r.values["quantity"])
        self.in_base: dict[tuple[str, str], float] = {}  # a buy's fee taken from the base
        for r in journal.rows["venue_fill"]:
            if r.values.get("fee_currency") == r.symbol.split("/")[0]:
                route = routes.get(r.values["order_id"])
                key = (
                    (str(r.values["order_id"]), "")
                    if route is None
                    else (str(route.values["parent_id"]), str(route.values["venue"]))
                )
                self.in_base[key] = self.in_base.get(key, 0.0) + float(r.values["fee_cost"])

    def note(
        self,
        bar: int,
        symbol: str,
        name: str,
        mine: Any,
        theirs: Any,
        cause: str,
        code: str = "",
        venue: str = "",
    ) -> dict[str, Any]:
        row = {
            "timestamp": self.ctx.times.get(bar, pd.NaT),
            "bar": bar,
            "symbol": symbol,
            "venue": venue,
            "field": name,
            "run": mine,
            "reference": theirs,
            "cause": cause,
            "code": code,
            "pnl": 0.0,
        }
        self.differences.append(row)
        self.explained.add(bar, name, cause)
        return row

    def explain(
        self,
        bar: int,
        symbol: str,
        *,
        decided: bool = False,
        filled: bool = False,
        sized: bool = False,
    ) -> tuple[str, str]:
        """The journaled event that explains a difference at ``bar`` (a fill's, with
        ``filled``; a fill's quantity, with ``sized``) in ``symbol``; else a knock-on of
        an explained difference before it (in any symbol: they share the equity; a
        decision, made at the bar's close, follows the fills at its open); else
        unexplained."""
        event = _event_cause(bar, symbol, self.ctx, filled=filled, sized=sized)
        if event is not None:
            return event
        earlier = self.explained.before(bar, decided=decided)
        return ("knock_on", "") if earlier else ("unexplained", "")

    def book(
        self, cause: str, at: _Fill, constant: float, quantity: float, bar: int | None = None
    ) -> float:
        """Add ``constant + quantity * close`` (the close of ``at``'s symbol) to
        ``cause``'s P&L from ``bar`` (default: ``at``'s) on; return it at the last close,
        counted to ``at``'s symbol and venue too."""
        series = self.pnl.setdefault(cause, np.zeros(len(self.bars)))
        closes = self.closes[at.symbol]
        i = self.index.get(at.bar if bar is None else bar, len(self.bars))
        series[i:] += constant + quantity * closes[i:]
        last = constant + quantity * float(closes[-1])
        for key, by in ((at.symbol, self.by_symbol), (at.venue, self.by_venue)):
            if key:
                causes = by.setdefault(key, {})
                causes[cause] = causes.get(cause, 0.0) + last
        return last

    def order_fills(self, mine: Sequence[Any], theirs: Sequence[Any]) -> None:
        """Split the difference of one order's fills, the run's against the replay's.

        The replay's fills are taken as one (quantity ``q'``, mean price ``p'``, fee
        ``f'``, at its first fill's bar), shared among the run's fills by quantity. Each
        run fill (``s q p f`` at its bar) against its share, with the replay's fee rate
        ``k = f' / (q' p')``, differs by exactly ``-(s + k) q (p - p')`` (the price)
        ``+ s (q - q') (c - p') - k (q - q') p'`` (the quantity) ``- (f - k q p)`` (the
        fee). The quantity's part is split at ``o``, the fill's share of what the run
        ordered: ``o - q'`` is the order's own size (a knock-on, a reload), ``q - o`` what
        the venue delivered of it (a partial fill, a fee taken in the base asset, the
        lot); a share filled at another bar than the replay's moves from that bar to its
        own (a partial fill's rest, a late order). The price of an order's later parts
        is the partial fill's, its first part's the venue's (slippage).

        A paper run's venue is the simulated one: its price and fee differ only for a
        journaled reason (a reload), else they are unexplained.
        """
        side = float(mine[0].values["side"])
        order = (str(mine[0].values["order_id"]), mine[0].venue)
        symbol, venue = mine[0].symbol, mine[0].venue
        q_ref = math.fsum(float(r.values["quantity"]) for r in theirs)
        cash_ref = math.fsum(float(r.values["quantity"]) * float(r.values["price"]) for r in theirs)
        f_ref = math.fsum(float(r.values["fee"]) for r in theirs)
        p_ref = cash_ref / q_ref if q_ref > 0 else 0.0
        k = f_ref / cash_ref if cash_ref > 0 else 0.0
        at_ref = theirs[0].bar_run
        total = math.fsum(float(r.values["quantity"]) for r in mine)
        spread = len(mine) > 1  # filled in parts
        parts: dict[str, list[Any]] = {"fill.price": [], "fill.quantity": [], "fill.fee": []}
        for n, row in enumerate(mine):
            q, p, f = (float(row.values[x]) for x in ("quantity", "price", "fee"))
            share = q / total if total > 0 else 0.0
            q2, f2 = share * q_ref, share * f_ref
            bar = row.bar
            if bar != at_ref:  # this share of the replay's fill, moved to the run's bar
                cause, code = (
                    ("partial_fill", "filled over several bars")
                    if spread
                    else self._moved(bar, at_ref, symbol)
                )
                constant, held = -side * q2 * p_ref - f2, side * q2
                self.book(cause, row, constant, held)
                self.book(cause, row, -constant, -held, bar=at_ref)
            if not close_enough(p, p_ref, self.limits):
                if n > 0:  # the rest of an order filled in parts, at a later price
                    cause, code = "partial_fill", "filled in parts"
                elif row.order_bar in self.ctx.late or bar in self.ctx.late:
                    cause, code = "late_bars", "sent at a late bar's price"
                elif bar > at_ref and not spread:
                    cause, code = self._moved(bar, at_ref, symbol)
                else:
                    cause, code = (
                        ("slippage", "") if self.venue else self.explain(bar, symbol, filled=True)
                    )
                pnl = self.book(cause, row, -(side + k) * q * (p - p_ref), 0.0)
                parts["fill.price"].append((bar, p, p_ref, cause, code, pnl))
            if not close_enough(q, q2, self.limits):  # what the run ordered against the
                # replay's, then what the venue delivered of it (this fill's share of each)
                ordered = self.ordered.get(order, total)
                sent = share * ordered  # within the market's lot: the venue's rounding
                sent = q2 if abs(sent - q2) <= self._lot(symbol, ordered) else sent
                for a, b, delivered in ((sent, q2, False), (q, sent, True)):
                    if a == b:
                        continue
                    cause, code = (
                        self._quantity_cause(bar, symbol, order, total)
                        if delivered
                        else self.explain(bar, symbol, filled=True, sized=True)
                    )
                    pnl = self.book(cause, row, -(side + k) * (a - b) * p_ref, side * (a - b))
                    parts["fill.quantity"].append((bar, a, b, cause, code, pnl))
            if not close_enough(f, k * q * p, self.limits):
                cause, code = ("fee", "") if self.venue else self.explain(bar, symbol, filled=True)
                pnl = self.book(cause, row, -(f - k * q * p), 0.0)
                parts["fill.fee"].append((bar, f, k * q * p, cause, code, pnl))
        for name, found in parts.items():  # one row per field and cause of the order
            for cause, code in dict.fromkeys((c, d) for _, _, _, c, d, _ in found):
                some = [x for x in found if (x[3], x[4]) == (cause, code)]
                mine_value = math.fsum(x[1] for x in some) if name != "fill.price" else some[0][1]
                theirs_value = math.fsum(x[2] for x in some) if name != "fill.price" else some[0][2]
                noted = self.note(
                    some[0][0], symbol, name, mine_value, theirs_value, cause, code, venue
                )
                noted["pnl"] = math.fsum(x[5] for x in some)

    def _moved(self, bar: int, at_ref: int, symbol: str) -> tuple[str, str]:
        """The cause of an order the run filled whole at another bar than the replay: a
        journaled event's; else, later, the venue's latency (the order went out on time,
        the venue filled it at a later open: `tradeloom.core.latency`'s rule on a venue
        slower than the strategy declares); else as `explain` says."""
        event = _event_cause(bar, symbol, self.ctx, filled=True)
        if event is None and bar > at_ref:
            return "latency", f"filled {bar - at_ref} bar(s) after the replay's fill"
        return event if event is not None else self.explain(bar, symbol, filled=True)

    def _lot(self, symbol: str, ordered: float) -> float:
        """The market's lot, that an order of ``ordered`` may be rounded to."""
        return max(self.dust.get(symbol, 0.0), 1e-6 * ordered)

    def _quantity_cause(
        self, bar: int, symbol: str, order: tuple[str, str], filled: float
    ) -> tuple[str, str]:
        """The cause of what the venue delivered of an order differing from what the run
        ordered (``filled`` of it)."""
        ordered = self.ordered.get(order, filled)
        short = ordered - filled  # what the venue did not deliver
        lot = self._lot(symbol, ordered)
        if order in self.in_base and short - self.in_base[order] <= lot:
            return "fee", "paid in the base currency"
        if short > lot:
            return "partial_fill", ""
        cause = self.explain(bar, symbol, filled=True, sized=True)
        if cause[0] == "unexplained" and self.venue and short > 0.0:
            # nothing before it: the venue rounded the order down to the market's lot
            return "partial_fill", "rounded to the market's lot"
        return cause

    def funding(self, bar: int, symbol: str, mine: float, theirs: float) -> None:
        """Count the difference of a bar's funding in ``symbol`` (cash, at its bar)."""
        at = _Fill({}, bar, bar, symbol)
        pnl = self.book("funding", at, mine - theirs, 0.0)
        self.note(bar, symbol, "funding", mine, theirs, "funding")["pnl"] = pnl

    def unmatched(self, row: Any, sign: float) -> None:
        """Count a fill only the run (``sign`` 1) or only the replay (-1) has, whole.

        Its cause: the journaled event at its order's bar (a venue's rejection, a late
        bar) or its own; a fill that closes a position only one side holds takes the
        cause of the fill that opened it (a rejected entry's exit is the rejection's).
        """
        v = row.values
        bar, symbol = row.bar_run, row.symbol
        side, q, p, fee = (float(v[k]) for k in ("side", "quantity", "price", "fee"))
        delta = sign * side * q
        apart = self.apart.get(symbol, 0.0)
        if apart * delta < 0 and symbol in self.apart_cause:
            cause, code = self.apart_cause[symbol]
        else:
            cause, code = self.explain(row.order_bar, symbol)
            if cause in ("knock_on", "unexplained"):
                cause, code = self.explain(bar, symbol, filled=True)
            self.apart_cause[symbol] = (cause, code)
        self.apart[symbol] = apart = apart + delta
        if abs(apart) <= max(self.dust.get(symbol, 0.0), 1e-9 * q):
            self.apart[symbol] = 0.0
            self.apart_cause.pop(symbol, None)
        pnl = self.book(cause, row, sign * (-side * q * p - fee), delta)
        text = as_text([pick(row, ("side", "quantity", "price"))])
        mine, theirs = (text, "") if sign > 0 else ("", text)
        self.note(bar, symbol, "fill", mine, theirs, cause, code, row.venue)["pnl"] = pnl


@dataclass(frozen=True)
class _Fill:
    """A fill row, with its symbol, its bar and its order's bar as the run numbers them."""

    values: dict[str, Any]
    bar_run: int
    order_bar: int
    symbol: str
    venue: str = ""
    """A router's venue that filled it ('' without a router)."""

    @property
    def bar(self) -> int:
        return self.bar_run


def order_pairs(
    journal: ParityJournal, reference: Path, to_run: Mapping[int, int]
) -> tuple[list[tuple[list[_Fill], list[_Fill]]], list[_Fill], list[_Fill]]:
    """Pair the run's orders with the replay's (by bar, symbol, side and reason, in order);
    return each pair's fills (a router's: venue by venue) and the fills of orders (or an
    order's venues) only one side has."""
    keyed: dict[tuple[int, str, int, str], list[str]] = {}
    for r in journal_rows(reference, "order"):
        bar = to_run.get(r.bar, r.bar)
        key = (bar, r.symbol, int(r.values["side"]), str(r.values["reason"]))
        keyed.setdefault(key, []).append(str(r.values["id"]))
    paired: dict[str, str] = {}
    for r in journal.rows["order"]:
        key = (r.bar, r.symbol, int(r.values["side"]), str(r.values["reason"]))
        if keyed.get(key):
            paired[str(r.values["id"])] = keyed[key].pop(0)
    ref = {kind: journal_rows(reference, kind) for kind in ("fill", "route_decision", "venue_fill")}
    theirs: dict[str, list[_Fill]] = {}
    for r, venue in zip(ref["fill"], _venues(ref), strict=True):
        fill = _Fill(
            dict(r.values),
            to_run.get(r.bar, r.bar),
            to_run.get(r.correlation_id, r.correlation_id),
            r.symbol,
            venue,
        )
        theirs.setdefault(str(r.values["order_id"]), []).append(fill)
    mine: dict[str, list[_Fill]] = {}
    for r, venue in zip(journal.rows["fill"], _venues(journal.rows), strict=True):
        mine.setdefault(str(r.values["order_id"]), []).append(
            _Fill(dict(r.values), r.bar, r.correlation_id, r.symbol, venue)
        )
    pairs = []
    only_mine: list[_Fill] = []
    for order, fills in mine.items():
        other = theirs.pop(paired.get(order, ""), [])
        for venue in dict.fromkeys(f.venue for f in [*fills, *other]):
            a = [f for f in fills if f.venue == venue]
            b = [f for f in other if f.venue == venue]
            if a and b:
                pairs.append((a, b))
            else:
                only_mine.extend(a)
                theirs.setdefault("", []).extend(b)
    only_theirs = [f for fills in theirs.values() for f in fills]
    return pairs, only_mine, only_theirs


def _venues(rows: Mapping[str, Sequence[Any]]) -> list[str]:
    """The venue of each fill row: a router reports its children's trades as the
    parent's fills, each journaled first as a ``venue_fill`` row of a child whose
    ``route_decision`` row names its venue; a fill is its parent's trade of that price,
    at its bar or the nearest ('' without a router). A partial fill's rest, traded at the
    next open, is booked with the first part when the run hears of both at once."""
    venue_of = {r.values["order_id"]: r.values for r in rows["route_decision"]}
    trades: dict[str, list[tuple[float, int, str]]] = {}
    for r in rows["venue_fill"]:
        route = venue_of.get(r.values["order_id"])
        if route is not None:
            trade = (float(r.values["price"]), r.bar, str(route["venue"]))
            trades.setdefault(str(route["parent_id"]), []).append(trade)
    venues = []
    for r in rows["fill"]:
        found = trades.get(str(r.values["order_id"]), [])
        price, bar = float(r.values["price"]), r.bar
        at = min(
            range(len(found)),
            key=lambda i: (abs(found[i][0] - price), abs(found[i][1] - bar)),
            default=None,
        )
        venues.append("" if at is None else found.pop(at)[2])
    return venues


def by_bar(rows: Sequence[Any], bar_of: Any) -> dict[tuple[int, str], list[Any]]:
    """Return ``rows`` by (``bar_of`` their bar, symbol)."""
    out: dict[tuple[int, str], list[Any]] = {}
    for r in rows:
        out.setdefault((int(bar_of(r.bar)), r.symbol), []).append(r)
    return out


def pick(row: Any, keys: Sequence[str]) -> tuple[Any, ...]:
    """Return ``row``'s values of ``keys``."""
    return tuple(row.values.get(k) for k in keys)


def same_lists(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]], limits: Any) -> bool:
    """Return whether ``a`` and ``b`` hold the same values, numbers within ``limits``."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) and isinstance(v, float):
                if not close_enough(u, v, limits):
                    return False
            elif u != v:
                return False
    return True


def as_text(values: list[tuple[Any, ...]]) -> str:
    """Return ``values`` as a difference's text (``1 0.5; -1 0.25``)."""
    return "; ".join(
        " ".join(f"{x:.10g}" if isinstance(x, float) else str(x) for x in v) for v in values
    )
