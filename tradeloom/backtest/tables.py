"""A backtest's tables: each made from its result and written by a worker thread beside the
run (`tradeloom.backtest.run.run_strategy`), or, for a run held in memory, made when first
read or saved (`HeldTables`): the bars, equity, positions and Parquet tables, the orders,
fills and trades; what the report draws of them, read back as their files read.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.backtest.held_run import Output
from tradeloom.backtest.pipeline import BacktestResult, Curve
from tradeloom.domain import Universe
from tradeloom.engine.events import Recorder
from tradeloom.engine.features import feature_plots
from tradeloom.engine.frames import position_rows
from tradeloom.engine.wiring import Pipeline
from tradeloom.reporting import charted, exports
from tradeloom.reporting.run_data import as_read
from tradeloom.reporting.run_tables import (
    EQUITY,
    FILLS,
    ORDERS,
    POSITIONS,
    TRADES,
    TableFormat,
    table_format,
    table_name,
    write_table,
)
from tradeloom.reporting.trades import trade_frame
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.stage_times import WORKER, stage
from tradeloom.tables.grouping import positions_by_key
from tradeloom.tables.kept import Kept, column, times
from tradeloom.tables.text_columns import labelled, texts

__all__ = [
    "FILL_COLUMNS",
    "ORDER_COLUMNS",
    "HeldTables",
    "ParquetTable",
    "bars_table",
    "charted_symbols",
    "curve_positions",
    "drawn_equity",
    "event_tables",
    "features_table",
    "fills_table",
    "markets",
    "orders_table",
    "parquet_tables",
    "records",
    "trades_table",
    "unwrite",
    "unwritten",
    "write_curve",
    "write_equity",
    "write_event_tables",
    "write_parquet_tables",
    "write_positions",
]

_log = logger("tradeloom.run")


@dataclass(frozen=True)
class ParquetTable:
    """A run's Parquet table to write: its file name, rows, where the report draws its
    columns (`tradeloom.reporting.exports.write_parquet`), and whether the report draws
    it from memory."""

    name: str
    frame: pd.DataFrame
    plots: Mapping[str, str] | None = None
    drawn: bool = True


def parquet_tables(
    pipeline: Pipeline, result: BacktestResult, keep: Collection[str] | None = None
) -> list[ParquetTable]:
    """Return the per-bar Parquet tables of the run but its bars (`bars_table`): its
    features (``keep``'s symbols' alone: `charted_symbols`) and monitors."""
    rec = result.recorder
    tables = []
    if pipeline.config.outputs.features:
        with stage(exports.FEATURES_FILE):
            features = features_table(result, keep)
        tables.append(ParquetTable(exports.FEATURES_FILE, features, feature_plots(pipeline)))
    if rec.monitor_values:
        with stage(exports.MONITORING_FILE):
            frame = exports.monitoring_frame(rec.monitor_values, result.bars.frame.index)
        tables.append(ParquetTable(exports.MONITORING_FILE, frame, drawn=False))
    return tables


def bars_table(universe: Universe, keep: Collection[str] | None = None) -> ParquetTable:
    """Return ``bars.parquet``: the bars of each symbol (``keep``'s alone: `charted_symbols`)
    as they were read."""
    pairs = [
        (b.frame, s)
        for b, s in zip(universe.bars, universe.symbols, strict=True)
        if keep is None or s in keep
    ]
    frames, symbols = [f for f, _ in pairs], tuple(s for _, s in pairs)
    return ParquetTable(exports.BARS_FILE, exports.bars_frame(frames, symbols))


def charted_symbols(symbols: Sequence[str], trades: pd.DataFrame) -> frozenset[str] | None:
    """Return the symbols whose bars and features the run folder of a universe of more
    than `tradeloom.reporting.charted.CHARTED_SYMBOLS` keeps: those its report charts,
    the most traded (`tradeloom.reporting.charted.most_traded`); None (every symbol) up
    to that count. Each symbol's figures are in the other tables whatever its count; its
    bars are the data's."""
    if len(symbols) <= charted.CHARTED_SYMBOLS:
        return None
    return frozenset(charted.most_traded(trades, symbols))


def drawn_equity(equity: pd.DataFrame, form: TableFormat) -> Mapping[str, pd.DataFrame]:
    """Return the equity table's rows the report draws, by its file name: as either form
    reads back (times to the second: `as_read`), or as written (None: the report reads
    the file)."""
    read_back = as_read(equity, csv=True)
    return {table_name(EQUITY, form): equity if read_back is None else read_back}


def unwritten(
    run_dir: Path, names: Sequence[str], failure: BaseException, job: Future[None]
) -> None:
    """Remove the tables of a failed run's ``job`` once it ended (a done callback); the
    job's own error, where the run raised another (``failure``), is logged, not lost."""
    error = None if job.cancelled() else job.exception()
    if error is not None and error is not failure:
        _log.warning(
            "table_not_written",
            run_dir=str(run_dir),
            tables=list(names),
            error=f"{type(error).__name__}: {error}",
        )
    unwrite(run_dir, names)


def unwrite(run_dir: Path, names: Sequence[str]) -> None:
    """Remove the tables a failed run's workers wrote (once they stopped)."""
    for name in names:
        with contextlib.suppress(OSError):  # not written: its job failed or never started
            (run_dir / name).unlink()


def write_parquet_tables(run_dir: Path, tables: list[ParquetTable]) -> None:
    """Write the run's Parquet tables (in a worker thread)."""
    for table in tables:
        with stage(f"{WORKER}{table.name}"):
            exports.write_parquet(run_dir / table.name, table.frame, table.plots)


def features_table(result: BacktestResult, keep: Collection[str] | None = None) -> pd.DataFrame:
    """Return ``features.parquet``'s rows: per bar, or per bar and symbol (``symbol``
    first; ``keep``'s symbols alone, None: every one)."""
    rec, universe = result.recorder, result.universe
    if len(universe.symbols) == 1:
        return exports.features_frame(result.features, result.probability, rec.signal_events)
    present = universe.present()
    of_symbol = positions_by_key(rec.signal_symbols)  # one pass over the signals
    signals = {c: column(rec.signal_events, c) for c in ("bar", "direction", "confidence")}
    frames = []
    for s, symbol in enumerate(universe.symbols):
        if keep is not None and symbol not in keep:
            continue
        rows = np.asarray(of_symbol.get(symbol, ()), np.int64)
        kept: Kept[Any] = Kept()  # the symbol's signals, by their columns
        kept.add(len(rows), {c: v[rows] for c, v in signals.items()}, _taken(rec, rows))
        frame = exports.features_frame(
            result.symbol_features.clock[s], result.probabilities[symbol], kept
        )
        frame.insert(0, "symbol", symbol)
        frames.append(frame[present[:, s]])
    return pd.concat(frames).sort_index(kind="stable")


def write_curve(
    write: Callable[..., None], run_dir: Path, curve: Curve, setting: str
) -> tuple[pd.DataFrame, TableFormat]:
    """Hand the tables of a row per bar (equity, positions) to the workers (``write``) as
    soon as the core's curve is known (`run_backtest`'s ``curved``): written while the
    run's rows are journaled. Return the equity table's rows and the tables' format."""
    equity = curve.equity.reset_index(names="timestamp")
    form = table_format(setting, len(equity), len(curve.symbols))
    write([table_name(EQUITY, form)], write_equity, run_dir, equity.copy(deep=False), form)
    write([table_name(POSITIONS, form)], write_positions, run_dir, curve, form)
    return equity, form


def write_equity(run_dir: Path, equity: pd.DataFrame, form: TableFormat) -> None:
    """Write the equity table, as ``form``, in a worker thread."""
    with stage(f"{WORKER}{table_name(EQUITY, form)}"):
        write_table(run_dir, EQUITY, equity, form)


def write_positions(run_dir: Path, curve: Curve, form: TableFormat) -> None:
    """Write the table of every bar's positions, as ``form``, in a worker thread."""
    with stage(f"{WORKER}{table_name(POSITIONS, form)}"):
        write_table(run_dir, POSITIONS, curve_positions(curve), form)


def _taken(rec: Recorder, rows: npt.NDArray[np.int64]) -> Callable[[], list[Any]]:
    return lambda: [rec.signal_events[i] for i in rows.tolist()]


def event_tables(result: BacktestResult, form: TableFormat) -> dict[str, pd.DataFrame]:
    """Return the tables of events by file name: ``orders``, ``fills`` and ``trades``, as
    ``form`` names them (the per-bar tables' format; the report reads them)."""
    orders, fills = orders_table(result), fills_table(result)
    named = {table_name(ORDERS, form): orders, table_name(FILLS, form): fills}
    return {**named, **trades_table(result, form)}


def trades_table(result: BacktestResult, form: TableFormat) -> dict[str, pd.DataFrame]:
    """Return the trades table's rows by its file name (``trades.csv`` or ``.parquet``)."""
    rec = result.recorder
    with stage("trades"):
        trades = trade_frame(result.portfolio.trades, rec.orders, rec.fills, rec.order_symbols)
    return {table_name(TRADES, form): trades}


def orders_table(result: BacktestResult) -> pd.DataFrame:
    """Return ``orders.csv``'s rows."""
    rec = result.recorder
    with stage("orders"):
        orders = records(rec.orders, ORDER_COLUMNS)
        orders.insert(0, "symbol", _market_column(rec.orders, "id", rec.order_symbols))
    return orders


def fills_table(result: BacktestResult) -> pd.DataFrame:
    """Return ``fills.csv``'s rows."""
    rec = result.recorder
    with stage("fills"):
        fills = records(rec.fills, FILL_COLUMNS)
        fills.insert(0, "symbol", _market_column(rec.fills, "order_id", rec.order_symbols))
    return fills


def write_event_tables(run_dir: Path, tables: Mapping[str, pd.DataFrame]) -> None:
    """Write the tables of events (`event_tables`), CSV or Parquet as each one's file
    name says, in a worker thread."""
    for name, frame in tables.items():
        with stage(f"{WORKER}{name}"):
            stem, _, form = name.rpartition(".")
            write_table(run_dir, stem, frame, "parquet" if form == "parquet" else "csv")


def curve_positions(curve: Curve) -> pd.DataFrame:
    """Return every bar's non-zero position of each symbol, marked at its last close."""
    return position_rows(curve.equity.index, curve.closes, curve.positions, curve.symbols)


ORDER_COLUMNS = ("id", "bar", "timestamp", "side", "quantity", "reason", "reference_price")
FILL_COLUMNS = ("order_id", "bar", "timestamp", "side", "quantity", "price", "fee", "slippage")


def records(items: Sequence[Any], columns: tuple[str, ...]) -> pd.DataFrame:
    """Return one row per item of ``columns``, read as its attributes (a `Kept`'s from
    its columns, without an object per row)."""
    if not len(items):
        return pd.DataFrame([], columns=list(columns))
    data: dict[str, Any] = {}
    for c in columns:
        values = times(items, c) if c == "timestamp" else column(items, c)
        # texts (ids, reasons) as pandas infers them, without its inference
        data[c] = texts(values) if values.dtype == object else values
    return pd.DataFrame(data)


def markets(items: Sequence[Any], key: str, order_symbols: Mapping[str, str]) -> list[str]:
    """Return the market of each of ``items`` (orders, fills), by its order id ``key``."""
    return list(map(order_symbols.__getitem__, column(items, key).tolist()))


def _market_column(items: Sequence[Any], key: str, order_symbols: Mapping[str, str]) -> Any:
    """Return `markets` as a table's column (`tradeloom.tables.text_columns`): one market's
    without looking each row's up."""
    named = set(order_symbols.values())
    if len(named) == 1 and len(items):
        return labelled(np.zeros(len(items), np.int8), sorted(named))
    return texts(markets(items, key, order_symbols))


class HeldTables:
    """The tables of a held run (`hold_strategy`), each made once, when first read or
    written; ``equity``: the equity table's rows, ``trades``: the trades table's."""

    def __init__(
        self,
        pipeline: Pipeline,
        result: BacktestResult,
        universe: Universe,
        curve: Curve,
        equity: pd.DataFrame,
        form: TableFormat,
        trades: pd.DataFrame,
    ) -> None:
        self._pipeline = pipeline
        self._result = result
        self._universe = universe
        self._curve = curve
        self._equity = equity
        self._form = form
        self._trades = trades

    @functools.cached_property
    def _keep(self) -> frozenset[str] | None:
        return charted_symbols(self._universe.symbols, self._trades)

    @functools.cached_property
    def _bars(self) -> ParquetTable:
        return bars_table(self._universe, self._keep)

    @functools.cached_property
    def _parquet(self) -> list[ParquetTable]:
        return parquet_tables(self._pipeline, self._result, self._keep)

    @functools.cached_property
    def _positions(self) -> pd.DataFrame:
        return curve_positions(self._curve)

    @functools.cached_property
    def _orders(self) -> pd.DataFrame:
        return orders_table(self._result)

    @functools.cached_property
    def _fills(self) -> pd.DataFrame:
        return fills_table(self._result)

    def _events(self) -> dict[str, pd.DataFrame]:
        form = self._form
        return {
            table_name(ORDERS, form): self._orders,
            table_name(FILLS, form): self._fills,
            table_name(TRADES, form): self._trades,
        }

    def frames(self) -> dict[str, Callable[[], pd.DataFrame]]:
        """Return a function of each table's rows, by its file name."""
        made: dict[str, Callable[[], pd.DataFrame]] = {
            exports.BARS_FILE: lambda: self._bars.frame,
            table_name(EQUITY, self._form): lambda: self._equity,
            table_name(POSITIONS, self._form): lambda: self._positions,
        }
        for name in self._parquet_names():
            made[name] = functools.partial(self._parquet_frame, name)
        made[table_name(ORDERS, self._form)] = lambda: self._orders
        made[table_name(FILLS, self._form)] = lambda: self._fills
        made[table_name(TRADES, self._form)] = lambda: self._trades
        return made

    def outputs(self) -> list[Output]:
        """Return the tables' files, each written from its rows as `run_strategy` writes it."""
        form = self._form
        return [
            Output(
                (exports.BARS_FILE,), lambda run_dir: write_parquet_tables(run_dir, [self._bars])
            ),
            Output(
                (table_name(EQUITY, form),),
                lambda run_dir: write_equity(run_dir, self._equity.copy(deep=False), form),
            ),
            Output(
                (table_name(POSITIONS, form),),
                lambda run_dir: write_table(run_dir, POSITIONS, self._positions, form),
            ),
            Output(
                tuple(self._parquet_names()),
                lambda run_dir: write_parquet_tables(run_dir, self._parquet),
            ),
            Output(
                tuple(table_name(t, form) for t in (ORDERS, FILLS, TRADES)),
                lambda run_dir: write_event_tables(run_dir, self._events()),
            ),
        ]

    def drawn(self) -> dict[str, pd.DataFrame]:
        """Return the tables the report draws from memory, by file name (`run_strategy`'s)."""
        parquet = {t.name: t.frame for t in [self._bars, *self._parquet] if t.drawn}
        return {**parquet, **self._events()}

    def _parquet_names(self) -> list[str]:
        names = []
        if self._pipeline.config.outputs.features:
            names.append(exports.FEATURES_FILE)
        if self._result.recorder.monitor_values:
            names.append(exports.MONITORING_FILE)
        return names

    def _parquet_frame(self, name: str) -> pd.DataFrame:
        return next(t.frame for t in self._parquet if t.name == name)
