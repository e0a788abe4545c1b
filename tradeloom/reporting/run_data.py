"""Read a finished run's directory: the one place the reporting code reads a run from.

Everything comes from documented run-directory files (``metrics.json``, ``equity.csv`` or
``equity.parquet`` (`read_table`), ``trades.csv``, ``orders.csv``, ``fills.csv``,
``strategy.yaml``, ``bars.parquet``, ``features.parquet``, ``monitoring.parquet``),
except what only the journal holds: the timeline of events (folds, retrains, halts,
health changes, trading-state changes, and a paper or live run's starts, stops, operator
requests and reloads: `run_events`), and a paper or live run's bars and probabilities
(its ``live_bar`` events stand in for ``bars.parquet``, which only a backtest writes,
and for ``features.parquet``'s ``probability``: a paper or live run's holds its feature
rows only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tradeloom.errors import UserError
from tradeloom.files.reading import (
    NotAFile,
    read_csv,
    read_json,
    read_yaml,
    require_regular,
)
from tradeloom.journal import RunFailed, journal_path, read_events, read_frame
from tradeloom.reporting.allocation_figures import AllocationHistory, allocation_history
from tradeloom.reporting.book_figures import Books, journal_books
from tradeloom.reporting.exports import BARS_FILE, FEATURES_FILE, MONITORING_FILE, read_plots
from tradeloom.reporting.metrics import prediction_auc
from tradeloom.reporting.run_events import RunEvent, run_events
from tradeloom.reporting.run_tables import (
    EQUITY,
    FILLS,
    ORDERS,
    POSITIONS,
    RECOMPUTED,
    TRADES,
    table_file,
)
from tradeloom.reporting.tearsheet import Rolling
from tradeloom.runtime.lazy import pyarrow_parquet as pq

__all__ = [
    "RunData",
    "RunEvent",
    "as_read",
    "csv_table",
    "live_features",
    "load_run",
    "parquet_table",
    "read_table",
    "table_as_read",
]

_TIME_COLUMNS = ("timestamp", "entry_time", "exit_time")
_TEXT_COLUMNS = (
    *_TIME_COLUMNS,
    *("symbol", "side", "exit_reason", "strategy", "book", "id", "order_id", "reason"),
)
"""The columns of a run's CSV tables that hold text; every other one holds numbers."""


@dataclass(frozen=True)
class RunData:
    """Everything the report and ``compare`` show of one run."""

    run_dir: Path
    metrics: dict[str, Any]
    equity: pd.DataFrame
    trades: pd.DataFrame
    strategy: dict[str, Any]
    features: pd.DataFrame | None = None
    monitoring: pd.DataFrame | None = None
    events: tuple[RunEvent, ...] = field(default_factory=tuple)
    bars: pd.DataFrame | None = None
    """OHLCV per bar (``timestamp``, [``symbol``,] open, high, low, close, volume)."""
    plots: dict[str, str] = field(default_factory=dict)
    """Where the price chart draws each feature column (`tradeloom.reporting.exports`)."""
    rolling: Rolling | None = None
    """The rolling figures the run computed for its metrics, where it handed them over
    (`tradeloom.reporting.tearsheet.run_rolling`); None: the report computes them."""
    trades_file: str = "trades.csv"
    """The file that holds every trade (``trades.csv`` or ``trades.parquet``)."""
    allocations: AllocationHistory | None = None
    """The allocation layer's rebalances (the journal's ``allocation_decided`` rows);
    None: the run does not allocate."""
    books: Books | None = None
    """A paper or live run's champion and challengers side by side (its journal's shadow
    books: `tradeloom.reporting.book_figures`); None: it had no challenger."""

    @property
    def name(self) -> str:
        """Return the strategy's name (the run directory's name if unknown)."""
        return str(self.metrics.get("strategy") or self.run_dir.name)

    @property
    def mode(self) -> str:
        """Return ``backtest``, ``paper`` or ``live``."""
        return str(self.metrics.get("mode") or "backtest")


def load_run(
    run_dir: Path, *, per_bar: bool = True, written: Mapping[str, pd.DataFrame] | None = None
) -> RunData:
    """Read a run directory.

    Args:
        run_dir: The directory a backtest wrote.
        per_bar: Also read the per-bar tables and the journal's events (the report
            needs them; ``compare`` does not).
        written: Tables this process has just written into ``run_dir``, or is writing
            beside the report (``equity.csv``), by file name (``equity.parquet``,
            ``bars.parquet``, ``features.parquet``), as the frames it writes: taken as
            the file reads back (`as_read`) instead of read from disk.

    Raises:
        UserError: Not a directory, not a run, or a run that failed before its results.
    """
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory; give a run directory (runs/<name>-<time>)")
    written = written or {}
    missing = [] if (run_dir / "metrics.json").is_file() else ["metrics.json"]
    if table_file(run_dir, EQUITY, written) is None:
        missing.append("equity.csv")
    if missing:
        raise UserError(_missing_message(run_dir, missing))
    metrics = read_json(run_dir / "metrics.json", "a run's metrics")
    if not isinstance(metrics, dict):
        raise UserError(f"{run_dir}/metrics.json: expected an object of metrics")
    equity = read_table(run_dir, EQUITY, written)
    assert equity is not None  # (its file is there: checked above)
    trades = read_table(run_dir, TRADES, written)
    trades_file = table_file(run_dir, TRADES, written) or "trades.csv"
    if trades is not None:
        trades = _complete_trades(trades)
        trades = _entry_reasons(run_dir, trades, written)
    strategy = _strategy(run_dir / "strategy.yaml")
    if not per_bar:
        return RunData(
            run_dir, metrics, equity, _or_empty(trades), strategy, trades_file=trades_file
        )
    journal = journal_path(run_dir)
    plots = _plots(run_dir / FEATURES_FILE)
    # the columns the report draws: a long run's model inputs are many and not drawn
    drawn = ["timestamp", "symbol", "probability", *plots]
    bars = _parquet(run_dir / BARS_FILE, None, _columns(written.get(BARS_FILE)))
    features = _parquet(run_dir / FEATURES_FILE, drawn, _columns(written.get(FEATURES_FILE)))
    live = _live_bars(journal) if bars is None else None
    books = None
    if live is not None:  # a paper or live run: its bars and verdicts are in the journal
        bars = live.drop(columns=["probability"])
        verdicts = live[[c for c in ("timestamp", "symbol", "probability") if c in live]]
        metrics = {**metrics, **_journal_auc(metrics, verdicts, bars, strategy)}
        features = live_features(verdicts, features)
        books = journal_books(journal, equity, strategy)
    return RunData(
        run_dir,
        metrics,
        equity,
        _or_empty(trades),
        strategy,
        features=features,
        monitoring=_parquet(run_dir / MONITORING_FILE),
        events=tuple(run_events(journal, equity, str(metrics.get("mode") or "backtest"))),
        bars=bars,
        trades_file=trades_file,
        plots=plots,
        allocations=_allocations(journal, metrics, strategy),
        books=books,
    )


def _allocations(
    journal: Path, metrics: Mapping[str, Any], strategy: Mapping[str, Any]
) -> AllocationHistory | None:
    """Return the run's rebalances; None: it does not allocate (read only for one that
    does: its metrics count them, or its strategy file has ``allocation:``)."""
    allocates = metrics.get("allocation") or strategy.get("allocation")
    if not allocates or not journal.is_file():
        return None
    return allocation_history(read_frame(journal, "allocation_decided"))


def live_features(verdicts: pd.DataFrame, features: pd.DataFrame | None) -> pd.DataFrame:
    """Return a paper or live run's features: each live bar's probability from its journal,
    beside the feature rows it wrote to ``features.parquet`` (None: none written, as
    before the run wrote one, or with ``outputs.features: false``)."""
    if features is None or not len(features):
        return verdicts
    keys = [k for k in ("timestamp", "symbol") if k in verdicts and k in features]
    extra = [c for c in features.columns if c not in verdicts.columns or c in keys]
    return verdicts.merge(features[extra], how="left", on=keys)


def _plots(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        return read_plots(path)
    except (OSError, ValueError) as exc:  # pyarrow's errors are both
        raise UserError(f"{path}: unreadable ({exc})") from None


def _live_bars(journal: Path) -> pd.DataFrame | None:
    """Return a paper or live run's bars from its journal (None: none, or a backtest)."""
    if not journal.is_file():
        return None
    frame = read_frame(journal, "live_bar")
    if not len(frame):
        return None
    columns = ["timestamp", "open", "high", "low", "close", "volume", "probability"]
    if frame["symbol"].nunique() > 1:
        columns.insert(1, "symbol")
    return frame[columns].reset_index(drop=True)


def _journal_auc(
    metrics: dict[str, Any], features: pd.DataFrame, bars: pd.DataFrame, strategy: dict[str, Any]
) -> dict[str, Any]:
    """Return the AUC of a paper or live run's journaled probabilities whose outcome (the
    close ``model.label.horizon`` bars later) is known, and their count."""
    if metrics.get("auc") is not None or "symbol" in features:
        return {}
    model = strategy.get("model")
    label = model.get("label") if isinstance(model, dict) else None
    horizon = int(label.get("horizon") or 1) if isinstance(label, dict) else 1
    return prediction_auc(features["probability"], bars["close"], horizon)


def _entry_reasons(
    run_dir: Path, trades: pd.DataFrame, written: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """Add each trade's ``entry_reason``: the reason of the order whose fill opened it
    (from ``orders.csv`` and ``fills.csv``; a paper or live run, which writes neither:
    from its journal's orders and fills)."""
    if not len(trades) or "entry_bar" not in trades:
        return trades
    order_columns, fill_columns = ["id", "reason"], ["strategy", "symbol", "order_id", "bar"]
    read_orders = read_table(run_dir, ORDERS, written, order_columns)
    read_fills = read_table(run_dir, FILLS, written, fill_columns)
    if read_orders is not None and read_fills is not None:
        order_frame = read_orders[[c for c in order_columns if c in read_orders]]
        fill_frame = read_fills[[c for c in fill_columns if c in read_fills]].copy()
    else:
        journal = journal_path(run_dir)
        if not journal.is_file():
            return trades
        order_frame = read_frame(journal, "order")
        fill_frame = read_frame(journal, "fill")
        fill_frame = fill_frame[
            [c for c in ("symbol", "order_id", "bar") if c in fill_frame]
        ].copy()
    if not {"id", "reason"} <= set(order_frame) or "order_id" not in fill_frame:
        return trades
    # each fill's order, then the first fill of each trade's entry (its strategy,
    # symbol and bar): Arrow's vectorised lookups, not a merge
    of_fill = _order_of_fill(_arrow(order_frame["id"]), _arrow(fill_frame["order_id"]))
    keys = [k for k in ("strategy", "symbol") if k in fill_frame and k in trades]
    fill_codes, trade_codes = _joint_codes(
        [fill_frame[k] for k in [*keys, "bar"]], [trades[k] for k in [*keys, "entry_bar"]]
    )
    codes, first = np.unique(fill_codes, return_index=True)
    at = np.searchsorted(codes, trade_codes).clip(max=max(len(codes) - 1, 0))
    order = np.where(codes[at] == trade_codes, of_fill[first[at]], -1) if len(codes) else at - 1
    reasons = _arrow(order_frame["reason"].astype(str))
    entry = reasons.take(pa.array(order, mask=order < 0)).fill_null("")
    return trades.assign(entry_reason=pd.array(entry, dtype="str"))


def _arrow(column: pd.Series) -> pa.Array:
    """Return a column as one Arrow array (a text column read from a file is in chunks)."""
    values = pa.array(column, from_pandas=True)
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _order_of_fill(ids: pa.Array, order_ids: pa.Array) -> np.ndarray:
    """Return the row of each fill's order (the last order of an id; -1: none)."""
    if ids.type != order_ids.type:  # (no fills read back as floats) as Python values
        rows = {value: k for k, value in enumerate(ids.to_pylist())}
        return np.array([rows.get(v, -1) for v in order_ids.to_pylist()], dtype=np.int64)
    if _one_fill_each(ids, order_ids):
        return np.arange(len(ids))
    first_of_reversed = pc.index_in(order_ids, ids[::-1]).fill_null(len(ids))
    return np.asarray(len(ids) - 1 - first_of_reversed.to_numpy().astype(np.int64))


def _one_fill_each(ids: pa.Array, order_ids: pa.Array) -> bool:
    """Return whether the fills are a backtest's orders, each filled once: they name the
    orders in their order, whose ids increase (so are distinct)."""
    if len(ids) != len(order_ids) or not len(ids) or ids.null_count:
        return False
    if not pc.all(pc.equal(ids, order_ids)).as_py():
        return False
    return len(ids) == 1 or bool(pc.all(pc.greater(ids[1:], ids[:-1])).as_py())


def _joint_codes(left: list[pd.Series], right: list[pd.Series]) -> tuple[np.ndarray, np.ndarray]:
    """Return one integer per row of ``left`` and of ``right`` (columns of keys), equal
    where the rows' keys are (a missing key equals a missing key, as in a merge)."""
    n = len(left[0])
    codes = np.zeros(n + len(right[0]), dtype=np.int64)
    span = 1  # the codes so far are below it
    for a, b in zip(left, right, strict=True):
        mine, theirs = _arrow(a), _arrow(b)
        whole = _whole_codes(mine, theirs, (1 << 62) // max(span, 1))
        if whole is not None:
            column, count = whole
        elif mine.type == theirs.type:
            encoded = pc.dictionary_encode(pa.concat_arrays([mine, theirs]), "encode")
            column, count = encoded.indices.to_numpy(), len(encoded.dictionary)
        else:  # as a merge compares them: as Python values (1 == 1.0)
            column, uniques = pd.factorize(
                np.concatenate([a.to_numpy(object), b.to_numpy(object)]), use_na_sentinel=False
            )
            count = len(uniques)
        codes = codes * count + column
        span *= count
    return codes[:n], codes[n:]


def _whole_codes(mine: pa.Array, theirs: pa.Array, most: int) -> tuple[np.ndarray, int] | None:
    """Return integer keys of both sides as codes from zero (each value less the least)
    and how many there may be; None: not integers of one type without a missing one, or
    more than ``most`` apart (`_joint_codes`' product stays in 63 bits). A fill's bar
    needs no hash table."""
    if mine.type != theirs.type or not pa.types.is_signed_integer(mine.type):
        return None
    if mine.null_count or theirs.null_count or not len(mine) or not len(theirs):
        return None
    values = np.concatenate([mine.to_numpy(), theirs.to_numpy()]).astype(np.int64)
    low, high = int(values.min()), int(values.max())
    if high - low >= most:
        return None
    return values - low, high - low + 1


def _missing_message(run_dir: Path, missing: list[str]) -> str:
    names = " and ".join(missing)
    failure = _failure(journal_path(run_dir))
    if failure is not None:
        return f"{run_dir}: the run failed ({failure}), so it has no {names}; fix and run it again"
    if not journal_path(run_dir).exists() and not (run_dir / "strategy.yaml").exists():
        return f"{run_dir}: not a run directory (no {names}, no journal.sqlite)"
    return f"{run_dir}: no {names}; the run did not finish (still running, or killed)"


def _failure(path: Path) -> str | None:
    if not path.is_file():
        return None
    for event in read_events(path, ["run_failed"]):
        assert isinstance(event, RunFailed)
        return event.error
    return None


def read_table(
    run_dir: Path,
    table: str,
    written: Mapping[str, pd.DataFrame] | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame | None:
    """Return a run's per-bar table (``equity``, ``positions``) or table of events
    (``orders``, ``fills``, ``trades``) from whichever file holds it, CSV or Parquet
    (`tradeloom.reporting.run_tables`), its times as UTC times (as a CSV file's read back:
    to the second, where they are whole seconds); None: neither file.

    Args:
        written: As `load_run`'s: the table as this process writes it, by file name.
        columns: The columns wanted (those at least); None: all.

    Raises:
        UserError: The file is damaged or not a table.
    """
    written = written or {}
    name = table_file(run_dir, table, written)
    if name is None:
        return None
    path, frame = run_dir / name, written.get(name)
    if name.endswith(".csv"):
        return _timed(table, path, csv_table(path, frame, columns), columns)
    same = None if frame is None else as_read(frame, columns)
    if same is not None:
        return same
    if table == POSITIONS and columns is not None and RECOMPUTED in columns:
        columns = [*columns, "position", "close"]
    read = _parquet(path, columns)
    if read is None:
        return None
    if table == POSITIONS and RECOMPUTED not in read and {"position", "close"} <= set(read):
        # (`write_table` leaves it out): as the run computed it, ``position * close``
        read[RECOMPUTED] = read["position"].to_numpy() * read["close"].to_numpy()
    return _timed(table, path, _times_in_seconds(read), columns)


_NEEDED: dict[str, tuple[tuple[str, ...], ...]] = {
    EQUITY: (("timestamp",),),
    POSITIONS: (("timestamp",),),
    ORDERS: (("timestamp",),),
    FILLS: (("timestamp",),),
    TRADES: (("entry_time",), ("exit_time",), ("side", "direction")),
}
"""The columns every reader of a run's table needs, by table: one of each group (a run
written before ``side`` existed has ``direction``)."""


def _timed(table: str, path: Path, frame: pd.DataFrame, columns: list[str] | None) -> pd.DataFrame:
    """Return a run's table, refusing one without a column its readers need (damaged, or
    another file) among ``columns`` (None: all); a table without any column (no rows
    were ever written) is kept."""
    if not len(frame.columns):
        return frame
    for group in _NEEDED.get(table, ()):
        if columns is not None and not any(column in columns for column in group):
            continue
        if not any(column in frame.columns for column in group):
            named = " or ".join(group)
            raise UserError(f"{path}: no {named} column; damaged, or not a run's {table} table")
    return frame


def _times_in_seconds(read: pd.DataFrame) -> pd.DataFrame:
    """Return a Parquet table's times as a CSV file's read back (to the second, where
    they are whole seconds)."""
    for column in _TIME_COLUMNS:
        seconds = _in_seconds(read[column]) if column in read else None
        if seconds is not None:
            read = read.assign(**{column: seconds})
    return read


def table_as_read(name: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    """Return the rows a run's table file ``name`` written from ``frame`` reads back as
    (`read_table`, `csv_table`, `parquet_table`), without the file; None where that is not
    certain (`as_read`), for the file to be read."""
    if name.endswith(".csv"):
        return as_read(frame, csv=True)
    read = as_read(frame)
    if read is None or not name.startswith(_READ_TABLES):
        return read
    return _times_in_seconds(read)  # as `read_table` reads a Parquet table's


_READ_TABLES = tuple(f"{t}." for t in (EQUITY, POSITIONS, ORDERS, FILLS, TRADES))


def parquet_table(path: Path) -> pd.DataFrame:
    """Return a run's Parquet table (``features.parquet``...) as it reads back, its
    ``timestamp`` UTC times.

    Raises:
        UserError: No such file, or not a Parquet table (damaged, or another file).
    """
    frame = _parquet(path)
    if frame is None:
        raise UserError(f"{path}: no such file; is it a finished run folder?")
    return frame


def csv_table(
    path: Path, written: pd.DataFrame | None = None, columns: list[str] | None = None
) -> pd.DataFrame:
    """Return a run's CSV table (``trades.csv``, ``orders.csv``...) as it reads back, its
    numbers checked and its times UTC times (``written``: the frame this process wrote;
    ``columns``: those at least)."""
    same = None if written is None else as_read(written, columns, csv=True)
    if same is not None:
        return same
    frame = read_csv(path, "a run's table", text_columns=_TEXT_COLUMNS)
    for column in _TIME_COLUMNS:
        if column in frame.columns:
            try:
                frame[column] = pd.to_datetime(frame[column], utc=True)
            except (ValueError, TypeError) as exc:
                raise UserError(
                    f"{path}: column {column}: not times ({exc}); damaged, or not a run's table"
                ) from None
    return frame


def _complete_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """Add the columns a run written before they existed lacks (side, return, reason)."""
    if not len(trades.columns):
        return trades
    if "side" not in trades and "direction" in trades:
        trades["side"] = ["long" if d > 0 else "short" for d in trades["direction"]]
    if "return" not in trades and {"pnl", "quantity", "entry_price"} <= set(trades):
        trades["return"] = trades["pnl"] / (trades["quantity"] * trades["entry_price"])
    if "exit_reason" not in trades:
        trades["exit_reason"] = ""
    trades["exit_reason"] = trades["exit_reason"].fillna("").astype(str)
    return trades


def _or_empty(frame: pd.DataFrame | None) -> pd.DataFrame:
    return frame if frame is not None else pd.DataFrame()


def _columns(indexed: pd.DataFrame | None) -> pd.DataFrame | None:
    """Return a table written with its times as its index as it reads back: a column."""
    return None if indexed is None else indexed.reset_index()


def _parquet(
    path: Path, columns: list[str] | None = None, written: pd.DataFrame | None = None
) -> pd.DataFrame | None:
    """Return a run's Parquet table as it reads back (``columns``: those at least; None:
    no such file); ``written``: the frame this process wrote into it (`as_read`)."""
    same = None if written is None else as_read(written, columns)
    if same is not None:
        return same
    if not path.exists():
        return None
    require_regular(path, "a run's table")
    try:
        if columns is not None:
            names = set(pq.read_schema(path).names)
            columns = [c for c in columns if c in names]
        frame = pd.read_parquet(path, columns=columns)
    except (OSError, ValueError) as exc:  # pyarrow's errors are these
        raise UserError(f"{path}: not a parquet table ({exc}); damaged, or another file") from None
    for column in _TIME_COLUMNS:  # (a trades table's entry and exit times too)
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def as_read(
    frame: pd.DataFrame, columns: list[str] | None = None, *, csv: bool = False
) -> pd.DataFrame | None:
    """Return the frame a run's table reads back as (`csv_table`, `_parquet`), from the frame
    written into it (its timestamps as a ``timestamp`` column); None where that is not
    certain, for the file to be read instead.

    A table of float and integer columns and a ``timestamp`` column of UTC times reads
    back as it was written: floats are written in their shortest exact text (CSV) or as
    they are (Parquet), integers as integers, times in their unit (Parquet) or to the
    second (``csv``: its times are whole seconds, which a CSV reader reads as seconds).
    A CSV file's text column reads back as it was written where `_text_as_read` says so.
    Any other column (other text, booleans, objects; a float column with no number,
    which a CSV reader takes for text; a time with a fraction of a second, which CSV
    drops), or no rows, leaves the file to be read.
    """
    names = list(frame.columns) if columns is None else [c for c in columns if c in frame]
    if not len(frame) or not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        return None  # a CSV file of no rows reads back as columns of no type
    out = frame[names]  # no copy: the columns are the run's, read only from here
    for name in names:
        values = out[name]
        if name == "timestamp" or (csv and name in _TIME_COLUMNS):
            dtype = values.dtype
            if not isinstance(dtype, pd.DatetimeTZDtype) or dtype.tz != _UTC_SECONDS.tz:
                return None
            if csv and dtype != _UTC_SECONDS:  # (a table read back already: as it is)
                seconds = _in_seconds(values)
                if seconds is None:
                    return None
                out = out.assign(**{name: seconds})
        elif values.dtype == np.float64:
            numbers = values.to_numpy()  # a first number: not a column of none (no pass)
            if np.isnan(numbers[0]) and np.isnan(numbers).all():
                return None
        elif values.dtype == np.int64:
            continue
        elif not (csv and _text_as_read(values)):
            return None
    return out


def _in_seconds(values: pd.Series) -> pd.Series | None:
    """Return UTC times to the second (None: not UTC times, or one with a fraction)."""
    dtype = values.dtype
    if not isinstance(dtype, pd.DatetimeTZDtype) or dtype.tz != _UTC_SECONDS.tz:
        return None
    if dtype == _UTC_SECONDS:
        return values
    per_second = _PER_SECOND.get(dtype.unit)
    if per_second is None or (values.array.asi8 % per_second).any():
        return None
    return values.astype(_UTC_SECONDS)


def _text_as_read(values: pd.Series) -> bool:
    """Return whether a column of text reads back from a CSV file as itself: every cell
    a non-empty text that no reader takes for a missing value, and one cell that is no
    number, boolean or time (else the reader may take the column for one)."""
    if not isinstance(values.dtype, pd.StringDtype | np.dtypes.ObjectDType):
        return False
    if pd.api.types.infer_dtype(values, skipna=False) != "string":
        return False  # a missing cell, or an object that is not text
    if _any_missing_text(values):
        return False
    # the first cells say so in any table of words (each cell read costs a str)
    return _a_word(values.iloc[:64]) or _a_word(values)


def _any_missing_text(values: pd.Series) -> bool:
    """Return whether a cell of text is one a CSV reader reads as a missing value (an
    Arrow column's by Arrow's own lookup: pandas' isin boxes the set's texts each call)."""
    if isinstance(values.array, pd.arrays.ArrowStringArray):
        return bool(pc.any(pc.is_in(_arrow(values), value_set=_NA_ARROW)).as_py())
    return bool(values.isin(_NA_TEXT).any())


def _a_word(values: pd.Series) -> bool:
    cells = values.to_numpy(dtype=object)
    return any(_NOT_NUMBER.search(c) and c.lower().lstrip("+-") not in _WORDS for c in cells)


_NA_TEXT = frozenset(
    [
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    ]
)
"""The texts a CSV reader (pandas' ``read_csv``) reads as a missing value (pandas'
``STR_NA_VALUES``)."""
_NA_ARROW = pa.array(sorted(_NA_TEXT), pa.string())
_NOT_NUMBER = re.compile(r"[^0-9+\-.:eEtTzZ /]")
"""A character that no number or time holds (nor `_WORDS`'s)."""
_WORDS = frozenset(("nan", "inf", "infinity", "true", "false"))


_UTC_SECONDS = pd.DatetimeTZDtype("s", "UTC")
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _strategy(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        document = read_yaml(path, "a run's strategy file")
    except NotAFile:  # a FIFO, a device: the report shows the run without its settings
        return {}
    return document if isinstance(document, dict) else {}
