"""``tradeloom status`` of a one-market paper or live run, from the journal's rows.

`tradeloom.engine.status` computes a run's status over the journal's frames (pandas):
what the console follows, with the equity curve. A status in a watch loop wants only the
text, and importing pandas (and pyarrow with it) was most of its time. This reader gives
the same `RunStatus`, value for value, from the rows as the journal's source returns
them (`tradeloom.journal.source`), in plain Python and numpy:

- the same conventions as the frames (a missing float NaN, a missing time the
  journal's NaT, `NAT`, times in nanoseconds);
- sums by group as pandas' groupby sums them (Kahan-compensated, `_group_sums`) and the
  cash flows as numpy sums them, so that each figure is the same to the bit.

A run whose status needs a table file or several markets' closes (a backtest: its
equity table, CSV or Parquet; a universe's live bars) is read by the frames' reader,
which imports pandas there only.
"""

from __future__ import annotations

import datetime
import itertools
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tradeloom.engine.status import (
    _ENDED,
    _ERROR_KINDS,
    _KINDS,
    _TERMINAL_ORDER_STATES,
    ERRORS_SHOWN,
    _Status,
    _worst,
    read_run,
)
from tradeloom.engine.status_figures import _EPS, NAT, _average_cost, _iso, equity_curve
from tradeloom.engine.status_text import error_line
from tradeloom.engine.status_values import OpenOrder, Position, RunStatus
from tradeloom.errors import UserError
from tradeloom.journal import journal_path, verify_again
from tradeloom.journal.errors import JournalDamaged
from tradeloom.journal.schema import Codec, Schema, schema_of, value_decoder
from tradeloom.journal.source import open_source
from tradeloom.reporting.monitor_labels import monitor_label
from tradeloom.reporting.refusals import count_refusals

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_status"]

_Rows = list[dict[str, Any]]
_DAY_NS = 86_400 * 1_000_000_000


def read_status(run_dir: Path, *, now: pd.Timestamp | None = None) -> RunStatus:
    """Read what the run in ``run_dir`` is doing (or did) from its journal: from the
    journal's rows for a one-market paper or live run (no pandas imported), else from its
    frames (`tradeloom.engine.status.read_run`).

    Raises:
        UserError: Not a run directory (one line naming it).
        JournalError: The journal is of another format version, damaged or truncated.
    """
    journal = journal_path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory; give a run directory (runs/<name>-...)")
    if not journal.exists():
        raise UserError(
            f"{run_dir}: not a run directory (no journal.sqlite); give the folder a "
            "'tradeloom run' wrote"
        )
    source = open_source(journal)
    try:
        meta = dict(source.meta)
        if meta.get("mode") == "backtest":  # its closes are in its equity table
            source.close()
            return read_run(run_dir, now=now).status
        verify_again(journal)  # a cut, broken or another run's journal shows nothing
        source.snapshot()  # one read transaction: the rows of one moment
        rows = {kind: _rows(source, schema_of(kind)) for kind in _KINDS}
        # and after the read (the rows since the check only): a row committed between the
        # check and the read is checked before it is shown
        verify_again(journal)
    finally:
        source.close()
    symbols = {row["symbol"] for row in rows["live_bar"]}
    if len(symbols) > 1 or any(row["timestamp"] == NAT for row in rows["live_bar"]):
        return read_run(run_dir, now=now).status  # a universe: every symbol's closes
    if rows["challenger_bar"]:  # the books side by side: Sharpe and AUC over the curves
        return read_run(run_dir, now=now).status
    now_ns = time.time_ns() if now is None else int(now.value)
    return _RowStatus(run_dir, rows, meta.get("mode", ""), meta.get("strategy", ""), now_ns).build()


def _rows(source: Any, schema: Schema) -> _Rows:
    """The kind's rows as the frames hold them: by column name, ``seq`` first."""
    names = ["seq", *(c.name for c in schema.columns)]
    decoders = [_decoder(c.codec) for c in schema.columns]
    out: _Rows = []
    for raw in source.rows(schema):
        if not isinstance(raw[0], int):
            raise JournalDamaged(f"{source.path}: a {schema.table} row has no sequence number")
        values: list[Any] = [raw[0]]
        for j, decode in enumerate(decoders, start=1):
            try:
                values.append(decode(raw[j]))
            except (TypeError, ValueError) as exc:
                column = schema.columns[j - 1].name
                raise JournalDamaged(
                    f"{source.path}: {schema.table}.{column} cannot be decoded ({exc})"
                ) from None
        out.append(dict(zip(names, values, strict=True)))
    return out


def _decoder(codec: Codec) -> Any:
    if codec is Codec.FLOAT:
        return lambda v: math.nan if v is None else float(v)
    if codec is Codec.BOOL:
        return lambda v: True if v is None else bool(int(v))  # NULL: NaT's int, non-zero
    if codec in (Codec.INT, Codec.TIME):
        return lambda v: NAT if v is None else int(v)
    if codec is Codec.ID:
        return lambda v: -1 if v is None else int(v)
    if codec in (Codec.JSON, Codec.FLOAT_MAP):
        return value_decoder(codec)
    return lambda v: v


def _group_sums(pairs: Iterable[tuple[Any, float]]) -> dict[Any, float]:
    """Sum the values of each key (None: no key) as pandas' groupby ``sum`` does, to the
    bit: rows already in key order and no NaN are summed by ``np.add.reduceat`` (pandas
    2.3 on), any others skipping NaN, Kahan-compensated (its Cython ``group_sum``).
    `tests/engine/test_status_rows.py` holds it to pandas' answer."""
    listed = list(pairs)
    keys = sorted({key for key, _ in listed if key is not None})
    if not keys:
        return {}
    rank = {key: i for i, key in enumerate(keys)}
    ids = [-1 if key is None else rank[key] for key, _ in listed]
    values = np.array([value for _, value in listed], dtype=np.float64)
    if all(a <= b for a, b in itertools.pairwise(ids)) and not np.isnan(values).any():
        skipped = ids.count(-1)  # the rows of no key come first
        starts = [ids.index(i) - skipped for i in range(len(keys))]
        sums = np.add.reduceat(values[skipped:], starts)
        return {key: float(sums[i]) for i, key in enumerate(keys)}
    found: dict[Any, list[float]] = {}
    for key, value in listed:
        if key is None or value != value:
            continue
        acc = found.setdefault(key, [0.0, 0.0])  # sum, compensation
        y = value - acc[1]
        t = acc[0] + y
        acc[1] = t - acc[0] - y
        if acc[1] != acc[1]:  # an infinite value: pandas resets the compensation
            acc[1] = 0.0
        acc[0] = t
    return {key: found[key][0] if key in found else 0.0 for key in keys}


class _RowStatus(_Status):
    """`_Status` over rows (lists of dicts by kind) for one market, with no table file."""

    f: dict[str, _Rows]
    now: int

    def _count(self, kind: str) -> int:
        return len(self.f[kind])

    def _first(self, kind: str) -> Any:
        rows = self.f[kind]
        return rows[0] if rows else None

    def _last(self, kind: str) -> Any:
        rows = self.f[kind]
        return rows[-1] if rows else None

    def _column(self, kind: str, name: str) -> list[Any]:
        return [row[name] for row in self.f[kind]]

    def _records(self, kind: str) -> list[Mapping[str, Any]]:
        return list(self.f[kind])

    def build(self) -> RunStatus:
        process, detail, pid = self._process()
        state, code, reason, since = self._state()
        bars = self.f["live_bar"]
        capital = self._capital()
        marks = self._marks()
        last_close = float(bars[-1]["close"]) if bars else None
        if last_close is not None and math.isnan(last_close):
            last_close = None
        cash = equity = total = day_pnl = day_return = None
        day = None
        if capital is not None:
            flows = np.array([m[3] for m in marks], dtype=np.float64)
            cash = capital - float(flows.sum()) if marks else capital  # numpy's sum, as pandas'
            if bars:
                curve = equity_curve(
                    np.array([b["bar"] for b in bars], dtype=np.int64),
                    np.array([b["close"] for b in bars], dtype=np.float64),
                    np.array([m[0] for m in marks], dtype=np.int64),
                    np.array([m[2] for m in marks], dtype=np.float64),
                    flows,
                    capital,
                )
                equity = float(curve[-1])
                day, start = _day_start(
                    [b["timestamp"] for b in bars],
                    curve,
                    capital,
                    self.seconds,
                    ended=process in _ENDED,
                )
                day_pnl = equity - start
                day_return = day_pnl / start if start else None
            elif any(abs(q) > _EPS for q in _quantities(marks).values()):
                pass  # held, and no close yet: the equity is not known
            else:
                equity = cash
            total = equity / capital - 1.0 if equity is not None and capital else None
        last = bars[-1] if bars else None
        close_time = None if last is None else last["timestamp"] + self.seconds * 1_000_000_000
        now = self._run_now()
        age = None if close_time is None else (now - close_time) / 1_000_000_000
        symbol = self._symbol_of(bars)
        return self._run_status(
            (process, detail, pid),
            (state, code, reason, since),
            last_bar=None if last is None else int(last["bar"]),
            last_time=None if last is None else last["timestamp"],
            close_time=close_time,
            age=age,
            last_close=last_close,
            bars=len(bars),
            money=(capital, cash, equity, total, day, day_pnl, day_return),
            symbol=symbol,
            positions=self._positions_of(marks, symbol, last_close),
            refused=self._refusals(),
        )

    def _marks(self) -> list[tuple[int, str, float, float]]:
        """As `tradeloom.engine.status_figures._fill_marks`: (bar, symbol, signed, flow) of each
        fill and funding payment, in journal order."""
        found: list[tuple[int, int, str, float, float]] = []
        for fill in self.f["fill"]:
            signed = float(fill["side"]) * fill["quantity"]
            flow = signed * fill["price"] + fill["fee"]
            found.append((fill["seq"], fill["bar"], fill["symbol"], signed, flow))
        for paid in self.f["funding"]:
            found.append((paid["seq"], paid["bar"], paid["symbol"], 0.0, -paid["amount"]))
        found.sort(key=lambda mark: mark[0])
        return [(bar, symbol, signed, flow) for _, bar, symbol, signed, flow in found]

    def _symbol_of(self, bars: _Rows) -> str:
        if bars and bars[-1]["symbol"]:
            return str(bars[-1]["symbol"])
        loaded = self.f["data_loaded"]
        if len(loaded) > 1:  # a universe: every symbol, in order
            return ", ".join(dict.fromkeys(str(row["symbol"]) for row in loaded))
        for kind in ("data_loaded", "warm_up", "order"):
            row = self._last(kind)
            if row is not None and row["symbol"]:
                return str(row["symbol"])
        return ""

    def _positions_of(
        self, marks: list[tuple[int, str, float, float]], symbol: str, last_close: float | None
    ) -> list[Position]:
        out = []
        for market, quantity in _quantities(marks).items():
            if abs(quantity) <= _EPS:
                continue
            fills = (
                (f["side"], f["quantity"], f["price"])
                for f in self.f["fill"]
                if f["symbol"] == market
            )
            cost = _average_cost(fills)
            mark = last_close if market == symbol else self._closes.get(market)
            if mark is None and ":" in market:  # a portfolio's book: STRATEGY:SYMBOL
                mark = self._closes.get(market.split(":", 1)[1])
            unrealized = None if mark is None or cost is None else quantity * (mark - cost)
            out.append(Position(market, quantity, cost, mark, unrealized))
        return out

    def _open_orders(self) -> list[OpenOrder]:
        orders = self.f["order"]
        if not orders:
            return []
        filled_by = _group_sums((f["order_id"], f["quantity"]) for f in self.f["fill"])
        cancelled = _group_sums((c["order_id"], c["remaining"]) for c in self.f["order_cancelled"])
        gone_ids = {row["order_id"] for row in self.f["order_expired"]}
        last_state: dict[Any, Any] = {}
        for row in self.f["order_state"]:
            if row["client_id"] is not None and row["state"] is not None:
                last_state[row["client_id"]] = row["state"]
        gone_ids |= {str(k) for k, v in last_state.items() if v in _TERMINAL_ORDER_STATES}
        out = []
        for order in orders:
            id_ = str(order["id"])
            quantity = float(order["quantity"])
            filled = filled_by.get(id_, 0.0)
            bound = quantity if quantity != quantity else max(quantity, 1.0)  # np.maximum's
            if not quantity - filled - cancelled.get(id_, 0.0) > _EPS * bound or id_ in gone_ids:
                continue
            out.append(
                OpenOrder(
                    id=id_,
                    symbol=str(order["symbol"]),
                    bar=int(order["bar"]),
                    timestamp=_iso(order["timestamp"]),
                    side="buy" if int(order["side"]) > 0 else "sell",
                    quantity=quantity,
                    filled=float(filled),
                    reason=str(order["reason"]),
                )
            )
        return out

    def _run_now(self) -> int:
        live = self.f["live_bar"]
        if not self.simulated or not live:
            return self.now
        return int(max(row["wall_time"] for row in live))

    def _health(self) -> tuple[str | None, list[str], dict[str, str]]:
        last: dict[str, str] = {}
        for row in self.f["health"]:
            symbol = row.get("symbol")
            label = monitor_label(str(row["monitor"]), "" if symbol is None else str(symbol))
            if row["status"] is not None:
                last[label] = str(row["status"])
        return _worst(self._with_declared(dict(sorted(last.items()))))

    def _errors(self) -> list[dict[str, Any]]:
        rows: list[tuple[int, dict[str, Any]]] = []
        for kind in _ERROR_KINDS:
            for row in self.f[kind][-ERRORS_SHOWN:]:
                rows.append((int(row["seq"]), {"kind": kind, **error_line(kind, row)}))
        rows.sort(key=lambda item: item[0])
        return [entry for _, entry in rows[-ERRORS_SHOWN:]]

    def _refusals(self) -> Any:
        rejections: dict[tuple[str, str], int] = {}
        for row in self.f["rejection"]:
            purpose = row.get("purpose")
            pair = (str(row["code"]), "" if purpose is None else str(purpose))
            rejections[pair] = rejections.get(pair, 0) + 1
        cancelled, orders = self.f["order_cancelled"], self.f["order"]
        return count_refusals(
            rejections,
            [str(row["order_id"]) for row in cancelled],
            [str(row["reason"]) for row in cancelled],
            [str(row["id"]) for row in orders],
            [str(row["reason"]) for row in orders],
        )


def _quantities(marks: list[tuple[int, str, float, float]]) -> dict[str, float]:
    sums = _group_sums((symbol, signed) for _, symbol, signed, _ in marks)
    return {str(k): float(v) for k, v in sorted(sums.items())}


def _day_start(
    times: list[int], curve: np.ndarray, capital: float, seconds: int, *, ended: bool = False
) -> tuple[str, float]:
    """As `tradeloom.engine.status_figures._day_start`, over times in nanoseconds."""
    shift = seconds * 1_000_000_000
    last = times[-1] + shift - (1 if ended else 0)
    day = last - last % _DAY_NS
    before = [i for i, t in enumerate(times) if t + shift <= day]
    start = float(curve[before[-1]]) if before else capital
    when = datetime.datetime.fromtimestamp(day // 1_000_000_000, tz=datetime.UTC)
    return when.strftime("%Y-%m-%d"), start
