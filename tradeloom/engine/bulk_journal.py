"""A backtest's event rows into the journal in bulk: one column batch per kind.

The compiled core records what happened as rows of floats (`tradeloom.core.records`);
the one decoder (`tradeloom.core.columns.decode`) reads every kind's rows into the
columns of its typed event (`tradeloom.journal`), and `journal_batches` hands them to
the journal as they are (`tradeloom.journal.JournalStore.write_columns`), without a
Python object per event. The rarer kinds (rejections, halts, state changes,
liquidations, funding, sliced orders, trainings, Python's objects), whose rows the
decoder reads as objects, are written from those objects.

A paper or live run journals the same tables' objects one event at a time
(`tradeloom.engine.driver.Engine.flush`): the drivers' journals are identical
whichever path wrote them.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from tradeloom.core import records as R
from tradeloom.core.columns import RowContext, Table, Tables, Texts, decode
from tradeloom.domain import HealthAction, HealthChange, ModelTraining
from tradeloom.journal import (
    ColumnBatch,
    Event,
    FillEvent,
    FundingPayment,
    HaltEvent,
    HealthActionFired,
    HealthChanged,
    Liquidation,
    ModelTrained,
    OrderCancelled,
    OrderEvent,
    RegimeChanged,
    RejectionEvent,
    RiskDecision,
    SignalEvent,
    SlicedOrder,
    TradingStateChanged,
)
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["BulkRows", "journal_batches", "rows_to_batches"]


@dataclass(frozen=True)
class BulkRows:
    """A backtest's rows, converted.

    Attributes:
        batches: One per kind present, for `JournalStore.write_columns`.
        counts: Rows written, by kind name.
    """

    batches: list[ColumnBatch]
    counts: dict[str, int]


@dataclass(frozen=True)
class _Columns:
    """A kind journaled as columns: its event and the decoder's columns it takes."""

    event: type[Event]
    fields: tuple[str, ...]


_Rare = Callable[[dict[str, Any], Any, str], Event]
"""A rarer kind's journal event from its row's head (bar, time, correlation id), its
object (`tradeloom.core.columns.Table.objects`) and its market."""

_JOURNALED: dict[str, _Columns | _Rare] = R.dispatch(
    {
        R.SIGNAL: _Columns(SignalEvent, ("direction", "confidence", "probability")),
        R.DECISION: _Columns(
            RiskDecision, ("outcome", "reason", "target_fraction", "trend", "volatility")
        ),
        R.ORDER: _Columns(
            OrderEvent,
            (
                "id",
                "side",
                "quantity",
                "reason",
                "reference_price",
                "kind",
                "stop_price",
                "limit_price",
                "parent_id",
            ),
        ),
        R.FILL: _Columns(
            FillEvent,
            ("order_id", "side", "quantity", "price", "fee", "slippage", "liquidity"),
        ),
        R.CANCEL: _Columns(OrderCancelled, ("order_id", "remaining", "reason")),
        R.REGIME: _Columns(
            RegimeChanged,
            ("trend", "volatility", "previous_trend", "previous_volatility"),
        ),
        R.TRAINING: lambda head, value, market: _from(
            ModelTrained, value, {**head, "correlation_id": value.predict_start}
        ),
        R.EXTERNAL: lambda head, value, market: _external(value),
        # a built-in's rejection is at its row's bar; a plugin's at its own
        R.REJECT: lambda head, value, market: _from(
            RejectionEvent, value, {"symbol": market, "correlation_id": value.bar}
        ),
        R.HALT: lambda head, value, market: _from(HaltEvent, value, {"correlation_id": value.bar}),
        R.STATE: lambda head, value, market: TradingStateChanged(**head, **value),
        R.PARENT: lambda head, value, market: SlicedOrder(**head, symbol=market, **value),
        R.LIQUIDATION: lambda head, value, market: Liquidation(**head, symbol=market, **value),
        R.FUNDING: lambda head, value, market: FundingPayment(**head, symbol=market, **value),
    },
    without=(R.TRADE,),  # an output, not an event
)
"""How each kind is journaled: as columns, or each row's event built from its object."""
_COLUMNS = {kind: how for kind, how in _JOURNALED.items() if isinstance(how, _Columns)}


def rows_to_batches(
    rows: npt.NDArray[np.float64],
    ctx: RowContext,
    times_ns: npt.NDArray[np.int64],
    symbol: str,
) -> BulkRows:
    """Return the journal batches of ``rows`` (the core's, in the run's order): `decode`
    then `journal_batches`."""
    return journal_batches(decode(rows, ctx), ctx, times_ns, symbol)


def journal_batches(
    tables: Tables,
    ctx: RowContext,
    times_ns: npt.NDArray[np.int64],
    symbol: str,
) -> BulkRows:
    """Return the journal batches of rows read back (every kind but trades).

    Args:
        tables: The rows, decoded.
        ctx: The run's row context (the symbols' names).
        times_ns: Each bar's open time, UTC ns, by bar.
        symbol: The market of a one-symbol strategy; over several (``ctx.symbols``),
            each market event is stamped with its own row's symbol.
    """
    names = list(ctx.symbols)
    several = len(names) > 1
    # trades are outputs, not events: the others' places close up over them
    place = np.arange(tables.count, dtype=np.int64)
    trades = tables.get("trade")
    if trades is not None:
        kept = np.ones(tables.count, dtype=bool)
        kept[trades.positions] = False
        place = np.cumsum(kept) - 1
    batches: list[ColumnBatch] = []
    counts: dict[str, int] = {}
    for kind, how in _COLUMNS.items():
        table = tables.get(kind)
        if table is None:
            continue
        bars = table.bar
        columns: dict[str, Any] = {
            "bar": bars,
            "timestamp": times_ns[bars],
            "symbol": _markets(table.symbol, names) if several else symbol,
            "correlation_id": table.correlation,
        }
        for name in how.fields:
            value = table.columns[name]
            columns[name] = value.categorical() if isinstance(value, Texts) else value
        batches.append(ColumnBatch(how.event, place[table.positions], columns))
        counts[how.event.KIND] = counts.get(how.event.KIND, 0) + len(table)
    # the rarer kinds, from their objects: a batch per event class, in order of first row
    rare: list[tuple[int, Event]] = []
    for kind, table in tables.by_kind.items():
        journaled = _JOURNALED.get(kind)
        if journaled is None or isinstance(journaled, _Columns):
            continue
        markets = _row_markets(table, names, symbol, several)
        rare += [
            (p, _event(journaled, bar, value, times_ns, market))
            for p, bar, market, value in zip(
                place[table.positions].tolist(),
                table.bar.tolist(),
                markets,
                table.objects(),
                strict=True,
            )
        ]
    grouped: dict[type[Event], list[tuple[int, Event]]] = defaultdict(list)
    for p, event in sorted(rare, key=lambda item: item[0]):
        grouped[type(event)].append((p, event))
    for event_class, items in grouped.items():
        batches.append(ColumnBatch.of([e for _, e in items], [p for p, _ in items]))
        counts[event_class.KIND] = counts.get(event_class.KIND, 0) + len(items)
    return BulkRows(batches, counts)


def _markets(index: npt.NDArray[np.int64], names: list[str]) -> pd.Categorical:
    """Return each market row's symbol by its index (a market row always has one)."""
    if len(index) and index.min() < 0:
        raise RuntimeError("a market event row names no symbol")
    return pd.Categorical.from_codes(index, categories=names)


def _row_markets(table: Table, names: list[str], symbol: str, several: bool) -> list[str]:
    if not several:
        return [symbol] * len(table)
    return [symbol if s < 0 else names[s] for s in table.symbol.tolist()]


def _event(
    journaled: _Rare, bar: int, value: Any, times_ns: npt.NDArray[np.int64], market: str
) -> Event:
    """Return the journal event of one of the rarer rows, read back as ``value``."""
    ts = pd.Timestamp(int(times_ns[bar]), tz="UTC")
    return journaled({"bar": bar, "timestamp": ts, "correlation_id": bar}, value, market)


def _external(value: Any) -> Event:
    if isinstance(value, HealthChange):
        return _from(HealthChanged, value, {"correlation_id": value.bar})
    if isinstance(value, HealthAction):
        return _from(HealthActionFired, value, {"correlation_id": value.bar})
    if isinstance(value, Event):
        return value
    raise TypeError(f"cannot journal {value!r}")  # pragma: no cover


def _from(cls: type[Event], value: Any, header: Mapping[str, Any]) -> Event:
    if isinstance(value, cls):
        return dataclasses.replace(value, **header) if header else value
    names = [f.name for f in dataclasses.fields(value) if f.metadata.get("journal", True)]
    fields = {name: getattr(value, name) for name in names}
    fields.update(header)
    if isinstance(value, ModelTraining):
        fields.pop("reference", None)
    return cls(**fields)
