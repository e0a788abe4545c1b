"""The ``csv`` and ``parquet`` data sources: OHLCV bars from a file.

Columns ``timestamp open high low close volume`` are found in any case; extra
numeric columns (a precomputed probability, for example) are kept as float64;
other extra columns are dropped with a warning in the log. Timestamps are
ISO 8601 (naive ones are UTC) or epoch seconds or milliseconds, told apart by
magnitude. A first column without a header (a pandas index written to CSV, read
back as ``Unnamed: 0``) is the timestamp when no column is named ``timestamp``.
``volume`` may be missing: the bars then have no volume (NaN), and a feature that
reads volume is refused when the strategy is validated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tradeloom.domain import OHLCV, Bars, Universe
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError, Params
from tradeloom.plugins.data.auxiliary import Auxiliary, AuxiliarySeries, join_asof
from tradeloom.plugins.data.csv_lines import csv_header, csv_line_numbers, csv_row_count
from tradeloom.plugins.data.joined import AuxiliaryKey, OrderBookKey, build_joined
from tradeloom.plugins.data.timestamps import parse_timestamps, parse_utc_timestamp, utc_nanoseconds
from tradeloom.plugins.data.universe import (
    MarketSymbol,
    Symbols,
    one_market_only,
    symbol_file_part,
    universe_of,
)
from tradeloom.plugins.data.validation import DataValidationError, ValidationPolicy, validate_bars
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.time.calendars import get_calendar
from tradeloom.time.timeframes import format_timestamp, parse_timeframe

_log = logger("tradeloom.data")

__all__ = [
    "BarsParams",
    "CsvParams",
    "FileFormat",
    "FileParams",
    "FileSource",
    "ParquetParams",
    "build_csv",
    "build_parquet",
    "timeframe_text",
]

FileFormat = Literal["csv", "parquet"]

_SHOWN_VALUE = 40
_TEMPLATE = "{symbol}"
_TIMESTAMP_HELP = (
    "expected ISO 8601 such as 2024-03-01T04:00:00Z, or epoch seconds or milliseconds, "
    "between 1677-09-21 and 2262-04-11"
)


class BarsParams(Params):
    """Keys of a source of bars given whole (a file, or a frame handed from Python): which
    markets, which times, how bad rows are met and when the market trades."""

    symbol: MarketSymbol | None = Field(
        default=None,
        description="Market symbol; defaults to the file's stem (or symbols: a universe).",
    )
    symbols: Symbols = None
    symbol_column: str | None = Field(
        default=None,
        min_length=1,
        description="A column naming each row's symbol (any case): one long file holding "
        "several symbols; the rows of symbol, or of each of symbols, are read.",
    )
    timeframe: str | None = Field(
        default=None,
        description="Bar length such as 1h; inferred from the most common timestamp step "
        "when omitted, checked against it when given.",
    )
    timestamp_column: str = Field(
        default="timestamp", min_length=1, description="Name of the timestamp column (any case)."
    )
    validation: ValidationPolicy = Field(
        default="reject",
        description="reject: bad rows are an error; repair: drop them and report.",
    )
    start: str | None = Field(
        default=None, description="Keep bars at or after this UTC time (inclusive)."
    )
    end: str | None = Field(default=None, description="Keep bars before this UTC time (exclusive).")
    calendar: str | dict[str, Any] = Field(
        default="crypto",
        description="When the market trades: crypto (24/7), forex (24/5, Sunday to Friday "
        "17:00 New York), an exchange code such as XNYS (its sessions and holidays), or a "
        "mapping of timezone, weekdays, open, close and holidays. A closure is not a gap, "
        "and metrics are annualized over the calendar's year.",
    )

    auxiliary: AuxiliaryKey = Field(default_factory=list)
    order_book: OrderBookKey = None

    @model_validator(mode="after")
    def _check_markets(self) -> BarsParams:
        if self.symbols is not None and self.symbol is not None:
            raise ValueError("set symbol (one market) or symbols (a universe), not both")
        if self.symbol_column is not None and self.symbol is None and self.symbols is None:
            raise ValueError("symbol_column needs symbol or symbols: which rows to read")
        return self

    @field_validator("calendar")
    @classmethod
    def _check_calendar(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        get_calendar(value)
        return value

    @field_validator("timeframe")
    @classmethod
    def _check_timeframe(cls, value: str | None) -> str | None:
        if value is not None:
            parse_timeframe(value)
        return value

    @field_validator("start", "end")
    @classmethod
    def _check_time(cls, value: str | None) -> str | None:
        if value is not None:
            utc_nanoseconds(value)
        return value

    @model_validator(mode="after")
    def _check_range(self) -> BarsParams:
        if self.start is not None and self.end is not None:
            start, end = utc_nanoseconds(self.start), utc_nanoseconds(self.end)
            if end <= start:
                raise ValueError(f"end must be after start; was start {self.start}, end {self.end}")
        return self


class FileParams(BarsParams):
    """Keys shared by the file sources."""

    path: str = Field(
        min_length=1,
        description="The file; a relative path is relative to the strategy file. With "
        "symbols, a template holding {symbol} (one file per symbol, the symbol written "
        "with / as - and : as _: BTC/USDT -> BTC-USDT), or one long file with symbol_column.",
    )

    @model_validator(mode="after")
    def _check_symbol_keys(self) -> FileParams:
        template = _TEMPLATE in self.path
        if template and self.symbols is None:
            raise ValueError(f"path holds {_TEMPLATE}, which needs symbols: [...] to fill it")
        if template and self.symbol_column is not None:
            raise ValueError(
                f"path holds {_TEMPLATE} (one file per symbol) and symbol_column is set (one "
                "long file); keep one"
            )
        if self.symbols is not None and not template and self.symbol_column is None:
            raise ValueError(
                f"symbols needs a path holding {_TEMPLATE} (one file per symbol) or "
                "symbol_column (one long file)"
            )
        return self


class CsvParams(FileParams):
    """Keys of the ``csv`` data source."""


class ParquetParams(FileParams):
    """Keys of the ``parquet`` data source."""


@dataclass(frozen=True)
class FileSource:
    """Load validated bars from CSV or Parquet files.

    Attributes:
        path: The file, absolute; with a ``{symbol}`` template, the template.
        file_format: ``csv`` or ``parquet``.
        params: The component's keys.
        auxiliary: The series of ``auxiliary``.
    """

    path: Path
    file_format: FileFormat
    params: BarsParams
    auxiliary: Auxiliary = field(default_factory=Auxiliary)

    def load(self) -> Bars:
        """Read, check and return the bars.

        Raises:
            DataError: The file cannot be read, a column is missing, a value cannot be
                parsed, no rows are left, or the rows fail validation; the source lists
                ``symbols`` (use `load_universe`).
        """
        if self.params.symbols is not None:
            raise one_market_only(self.params.symbols)
        raw, rows = self._read(self.path)
        symbol = self.params.symbol or self.path.stem
        if self.params.symbol_column is None:
            bars = self._bars(raw, rows, str(self.path), symbol)
        else:
            bars = self._from_long(raw, rows, [symbol])[0]
        if not self.auxiliary:
            return bars
        return join_asof(bars, self.auxiliary.load([symbol]), self.auxiliary.documents())

    def load_universe(self) -> Universe:
        """Read every symbol's bars (a file each, or one long file) on one clock.

        Raises:
            DataError: As `load`, naming the symbol; a symbol with no file or no rows.
        """
        symbols = self.params.symbols
        if symbols is None:
            return universe_of([self.load()])
        if self.params.symbol_column is not None:
            raw, rows = self._read(self.path)
            bars = self._from_long(raw, rows, symbols)
        else:
            bars = []
            for symbol in symbols:
                path = self.path_of(symbol)
                raw, rows = self._read(path)
                bars.append(self._bars(raw, rows, str(path), symbol))
        series = self.auxiliary.load(symbols) if self.auxiliary else ()
        documents = self.auxiliary.documents()
        return universe_of([join_asof(b, series, documents) for b in bars])

    def informative_refusal(self, symbol: str) -> str | None:
        """Return why ``symbol``'s bars cannot be read beside the traded ones, or None.

        A ``{symbol}`` template names its file, a ``symbol_column`` its rows of the long
        file; one file of one market names no other.
        """
        if _TEMPLATE in str(self.path):
            path = self.path_of(symbol)
            return None if path.is_file() else f"no file for symbol {symbol}: {path}"
        if self.params.symbol_column is None:
            return (
                f"data kind {self.file_format} reads one market from {self.path}; to read "
                f"{symbol} beside it, write data.path with {_TEMPLATE} (one file per symbol) "
                "and data.symbols, or set data.symbol_column (one long file)"
            )
        present = _symbols_in(self.path, self.file_format, self.params.symbol_column)
        if present is not None and symbol not in present:
            return (
                f"{self.path} has no rows for symbol {symbol} in column "
                f"'{self.params.symbol_column}'; add them or remove symbol:"
            )
        return None

    def load_informative(self, symbol: str) -> Bars:
        """Read and check ``symbol``'s bars: its file (a template), or its rows (a long file).

        Raises:
            DataError: As `load`, naming the symbol.
        """
        if self.params.symbol_column is not None:
            raw, rows = self._read(self.path)
            return self._from_long(raw, rows, [symbol])[0]
        path = self.path_of(symbol)
        raw, rows = self._read(path)
        return self._bars(raw, rows, str(path), symbol)

    def auxiliary_series(self) -> tuple[AuxiliarySeries, ...]:
        """Return the declared auxiliary series as read (for `check_lookahead`)."""
        return self.auxiliary.load(self._symbols())

    def path_of(self, symbol: str) -> Path:
        """Return the file of ``symbol`` (the ``{symbol}`` template filled in)."""
        return Path(str(self.path).replace(_TEMPLATE, symbol_file_part(symbol)))

    def _symbols(self) -> list[str]:
        if self.params.symbols is not None:
            return list(self.params.symbols)
        return [self.params.symbol or self.path.stem]

    def _files(self) -> list[Path]:
        if _TEMPLATE in str(self.path):
            return [self.path_of(s) for s in self._symbols()]
        return [self.path]

    def _from_long(self, raw: pd.DataFrame, rows: np.ndarray, symbols: list[str]) -> list[Bars]:
        column = self.params.symbol_column
        assert column is not None
        source = str(self.path)
        raw = _columns_from_index(raw, self.params.timestamp_column)
        found = _find_column(raw, column, source)
        groups = _rows_by_name(raw[found])  # one pass, not a scan of every row per symbol
        raw = raw.drop(columns=[found])
        out = []
        for symbol in symbols:
            mine = groups.get(symbol)
            if mine is None:
                raise DataError(
                    f"data: {source}: no rows for symbol {symbol} in column '{found}'; add "
                    "them or remove the symbol from data.symbols"
                )
            part = raw.take(mine).reset_index(drop=True)
            out.append(self._bars(part, rows[mine], f"{source} ({symbol})", symbol))
        return out

    def _row_label(self) -> str:
        """Return what a row is called in messages: a CSV file's line, a Parquet row."""
        return "line" if self.file_format == "csv" else "row"

    def _bars(self, raw: pd.DataFrame, rows: np.ndarray, source: str, symbol: str) -> Bars:
        label = self._row_label()
        raw = _columns_from_index(raw, self.params.timestamp_column)
        raw = _unnamed_timestamp(raw, self.params.timestamp_column)
        columns = _find_columns(raw, self.params.timestamp_column, source)
        stamps, frame = _parse(raw, columns, rows, source, label)
        keep = np.ones(len(stamps), dtype=bool)
        start = None if self.params.start is None else parse_utc_timestamp(self.params.start)
        end = None if self.params.end is None else parse_utc_timestamp(self.params.end)
        if start is not None:
            keep &= stamps >= start.value
        if end is not None:
            keep &= stamps < end.value
        if not keep.all():
            if not keep.any():
                raise DataError(_no_rows(source, stamps, start, end))
            stamps, frame, rows = stamps[keep], frame[keep], rows[keep]
        if len(stamps) == 0:
            raise DataError(f"data: {source}: no rows")
        timeframe, seconds = _timeframe(stamps, self.params.timeframe, source)
        index = pd.DatetimeIndex(stamps, name="timestamp", dtype="datetime64[ns, UTC]")
        return validate_bars(
            frame.set_axis(index),
            source=source,
            symbol=symbol,
            timeframe=timeframe,
            timeframe_seconds=seconds,
            policy=self.params.validation,
            row_numbers=rows,
            row_label=label,
            calendar=get_calendar(self.params.calendar),
        )

    def bar_count(self) -> int | None:
        """Return at most how many bars a symbol's file holds (rows, before start/end and
        validation), from its lines or its metadata; None if it cannot be read."""
        counts = [self._rows_in(path) for path in self._files()]
        if any(c is None for c in counts):
            return None
        return max(c for c in counts if c is not None)

    def _rows_in(self, path: Path) -> int | None:
        try:
            if self.file_format == "csv":
                # no header pandas can read (a binary file): not "0 bars", load() says why
                return None if csv_header(path) is None else csv_row_count(path)
            import pyarrow.parquet as pq

            return int(pq.read_metadata(path).num_rows)
        except Exception:  # unreadable: load() says why, with the file's name
            return None

    def has_volume(self) -> bool:
        """Return whether every file has a volume column (reads only headers or schemas)."""
        headers = [self._header(path) for path in self._files()]
        return all(
            names is None or any(n.strip().lower() == "volume" for n in names) for names in headers
        )

    def symbol_count(self) -> int:
        """Return how many symbols it loads, known before loading (validation's checks)."""
        return len(self._symbols())

    def extra_columns(self) -> set[str] | None:
        """Return the columns beside OHLCV its bars will have (the files' other columns and
        the auxiliary series), from headers or schemas only; None if a file is unreadable."""
        found = self.auxiliary.names()
        skip = {*OHLCV, self.params.timestamp_column.lower()}
        if self.params.symbol_column is not None:
            skip.add(self.params.symbol_column.lower())
        for path in self._files():
            names = self._header(path)
            if names is None:
                return None
            found.update(n for n in names if n.strip().lower() not in skip)
        return found

    def _header(self, path: Path) -> list[str] | None:
        if self.file_format == "csv":
            return csv_header(path)
        try:
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        except Exception:  # unreadable: load() says why, with the file's name
            return None
        return [str(n) for n in names]

    def _read(self, path: Path) -> tuple[pd.DataFrame, np.ndarray]:
        source = str(path)
        try:
            if self.file_format == "csv":
                raw = pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=True)
                return raw, csv_line_numbers(path, len(raw))
            raw = pd.read_parquet(path)
        except FileNotFoundError:
            raise DataError(f"data: {source}: file not found") from None
        except Exception as exc:  # any reader failure is the file's, not ours
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(
                f"data: {source}: cannot read it as {self.file_format.upper()}: {reason}"
            ) from exc
        return raw, np.arange(1, len(raw) + 1)


def build_csv(params: CsvParams, ctx: BuildContext) -> FileSource:
    """Return the ``csv`` source; the file (each symbol's) must exist."""
    return _build(params, ctx, "csv")


def build_parquet(params: ParquetParams, ctx: BuildContext) -> FileSource:
    """Return the ``parquet`` source; the file (each symbol's) must exist."""
    return _build(params, ctx, "parquet")


def _build(params: FileParams, ctx: BuildContext, file_format: FileFormat) -> FileSource:
    auxiliary = build_joined(
        params.auxiliary, params.order_book, ctx, params.validation, exchange=False
    )
    if _TEMPLATE not in params.path:
        path = _existing(params.path, ctx)
        if params.symbol_column is not None:
            _check_listed(path, file_format, params)
        return FileSource(path, file_format, params, auxiliary)
    source = FileSource(ctx.resolve_path(params.path), file_format, params, auxiliary)
    for symbol in params.symbols or []:
        path = source.path_of(symbol)
        if not path.is_file():
            raise ParamError("path", f"no file for symbol {symbol}: {path}")
    return source


def timeframe_text(seconds: int) -> str:
    """Return a bar length in seconds as a timeframe in its largest whole unit (``4h``)."""
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _symbols_in(path: Path, file_format: FileFormat, column: str) -> set[str] | None:
    """Return the symbols in the long file's ``column`` (reads that column only); None:
    unreadable (load() says why, with the file's name).

    Raises:
        ParamError: The file has no such column.
    """
    wanted = column.strip().lower()
    try:
        if file_format == "csv":
            raw = pd.read_csv(
                path, usecols=lambda c: str(c).strip().lower() == wanted, encoding="utf-8-sig"
            )
        else:
            import pyarrow.parquet as pq

            names = [n for n in pq.read_schema(path).names if n.strip().lower() == wanted]
            raw = pd.read_parquet(path, columns=names[:1])
    except Exception:  # unreadable: load() says why, with the file's name
        return None
    if raw.shape[1] == 0:
        raise ParamError("symbol_column", f"{path} has no column '{column}'")
    distinct = pd.Index(raw.iloc[:, 0].unique())  # each value made text once, not per row
    return set(distinct.astype("string").str.strip().dropna())


def _check_listed(path: Path, file_format: FileFormat, params: FileParams) -> None:
    """Refuse a listed symbol that the long file has no row of (reads one column)."""
    column = params.symbol_column or ""
    present = _symbols_in(path, file_format, column)
    if present is None:
        return
    listed = [(f"symbols.{i}", s) for i, s in enumerate(params.symbols or [])]
    if params.symbol is not None:
        listed.append(("symbol", params.symbol))
    for key, symbol in listed:
        if symbol not in present:
            raise ParamError(
                key,
                f"{path} has no rows for symbol {symbol} in column '{column}'; add them or "
                "remove the symbol",
            )


def _existing(path: str, ctx: BuildContext) -> Path:
    resolved = ctx.resolve_path(path)
    if not resolved.exists():
        raise ParamError("path", f"file not found: {resolved}")
    if not resolved.is_file():
        raise ParamError("path", f"not a file: {resolved}")
    return resolved


def _rows_by_name(column: pd.Series) -> dict[str, np.ndarray]:
    """Return the rows of each name of a long file's symbol column (its text stripped;
    missing values left out), in increasing order.

    The column is hashed as it is stored and each distinct value made text once: a text
    per row (5,000,000 rows: ~300 MB of Python strings) was most of a universe's read."""
    codes, uniques = pd.factorize(column)
    names = pd.Index(uniques).astype("string").str.strip()
    name_codes, distinct = pd.factorize(names)  # two values may strip to one name
    key = np.where(codes >= 0, name_codes[np.maximum(codes, 0)], -1)
    order = np.argsort(key, kind="stable")
    ranks = np.arange(len(distinct))
    starts = np.searchsorted(key[order], ranks, side="left")
    ends = np.searchsorted(key[order], ranks, side="right")
    return {
        str(distinct[k]): order[start:end]
        for k, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))
    }


def _columns_from_index(raw: pd.DataFrame, timestamp_column: str) -> pd.DataFrame:
    # A frame written by pandas keeps its DatetimeIndex in Parquet; treat it as a column.
    names = [n for n in raw.index.names if n is not None]
    wanted = timestamp_column.strip().lower()
    if any(str(n).strip().lower() == wanted for n in names):
        return raw.reset_index()
    return raw


def _unnamed_timestamp(raw: pd.DataFrame, timestamp_column: str) -> pd.DataFrame:
    # pandas writes its index to CSV under an empty header, read back as "Unnamed: 0"
    names = [str(c).strip().lower() for c in raw.columns]
    if timestamp_column.strip().lower() in names or not len(raw.columns):
        return raw
    first = str(raw.columns[0])
    if first.strip() == "" or first.startswith("Unnamed: 0"):
        return raw.rename(columns={raw.columns[0]: timestamp_column})
    return raw


def _find_column(raw: pd.DataFrame, name: str, source: str) -> str:
    matches = [c for c in raw.columns if str(c).strip().lower() == name.strip().lower()]
    if not matches:
        present = ", ".join(str(c) for c in raw.columns) or "none"
        raise DataError(f"data: {source}: no column '{name}' (data.symbol_column); found {present}")
    return str(matches[0])


def _find_columns(raw: pd.DataFrame, timestamp_column: str, source: str) -> dict[str, str]:
    by_name: dict[str, list[str]] = {}
    for column in raw.columns:
        by_name.setdefault(str(column).strip().lower(), []).append(column)
    wanted = {"timestamp": timestamp_column.strip().lower(), **{c: c for c in OHLCV}}
    found: dict[str, str] = {}
    missing: list[str] = []
    problems: list[str] = []
    for role, name in wanted.items():
        matches = by_name.get(name, [])
        if len(matches) > 1:
            listed = " and ".join(f"'{m}'" for m in matches)
            problems.append(f"data: {source}: columns {listed} both match {name}; keep one")
        elif matches:
            found[role] = matches[0]
        elif role != "volume":  # optional: a feature that needs it is refused at validation
            missing.append(timestamp_column if role == "timestamp" else name)
    if missing:
        expected = ", ".join([timestamp_column, *OHLCV[:-1]]) + " and volume if the data has it"
        present = ", ".join(str(c) for c in raw.columns) or "none"
        noun = "column" if len(missing) == 1 else "columns"
        problems.insert(
            0,
            f"data: {source}: missing {noun} {', '.join(missing)}; found {present}; "
            f"expected {expected} (any case)",
        )
    if problems:
        raise DataValidationError(problems)
    return found


def _parse(
    raw: pd.DataFrame, columns: dict[str, str], rows: np.ndarray, source: str, label: str
) -> tuple[np.ndarray, pd.DataFrame]:
    problems: list[str] = []
    stamp_column = columns["timestamp"]
    stamps, bad = parse_timestamps(raw[stamp_column])
    if bad.any():
        problems.append(
            f"data: {source}: column '{stamp_column}' has "
            f"{_count_values(bad, 'unparsable timestamp')} "
            f"{_first_bad(raw[stamp_column], bad, rows, label)}; {_TIMESTAMP_HELP}"
        )
    data: dict[str, np.ndarray] = {}
    for role in OHLCV:
        if role not in columns:  # no volume column: no volume
            data[role] = np.full(len(raw), np.nan)
            continue
        values, bad = _numbers(raw[columns[role]])
        if bad.any():
            problems.append(
                f"data: {source}: column '{columns[role]}' has "
                f"{_count_values(bad, 'non-numeric value')} "
                f"{_first_bad(raw[columns[role]], bad, rows, label)}; expected numbers"
            )
        data[role] = values
    if problems:
        raise DataValidationError(problems)
    used = set(columns.values())
    for column in raw.columns:
        if column in used:
            continue
        values, bad = _numbers(raw[column])
        if not bad.any() and not pd.api.types.is_datetime64_any_dtype(raw[column].dtype):
            data[str(column)] = values
        else:
            # not silent: a probability column with one typo'd cell would vanish here
            _log.warning(
                "column_dropped",
                source=str(source),
                column=str(column),
                reason="not numeric",
                first=_first_bad(raw[column], bad, rows, label) if bad.any() else "dates",
            )
    return stamps, pd.DataFrame(data, copy=False)  # validation copies the columns once


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    if values.dtype == np.float64:  # numpy's: its values as they are (validation copies them)
        return values.to_numpy(), np.zeros(len(values), bool)
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(values), bool)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return np.full(len(values), np.nan), np.ones(len(values), bool)
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = np.asarray(text.notna() & (text != "") & numbers.isna(), dtype=bool)
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan), bad


def _count_values(bad: np.ndarray, noun: str) -> str:
    count = int(bad.sum())
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _first_bad(values: pd.Series, bad: np.ndarray, rows: np.ndarray, label: str) -> str:
    position = int(np.flatnonzero(bad)[0])
    value = values.iloc[position]
    where = f"{label} {rows[position]}"
    first = "" if bad.sum() == 1 else "first "
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return f"({first}an empty cell at {where})"
    text = str(value)
    if len(text) > _SHOWN_VALUE:
        text = text[: _SHOWN_VALUE - 3] + "..."
    return f"({first}'{text}' at {where})"


def _no_rows(
    source: str, stamps: np.ndarray, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> str:
    window = []
    if start is not None:
        window.append(f"at or after {format_timestamp(start)}")
    if end is not None:
        window.append(f"before {format_timestamp(end)}")
    has = f"{format_timestamp(int(stamps.min()))} to {format_timestamp(int(stamps.max()))}"
    return (
        f"data: {source}: no rows {' and '.join(window)} (the file has {has}); "
        "change data.start / data.end"
    )


def _timeframe(stamps: np.ndarray, given: str | None, source: str) -> tuple[str, int]:
    steps = np.diff(stamps)
    if not (steps > 0).all():  # unsorted or repeated: validation names them later
        steps = np.diff(np.unique(stamps))
    if len(steps) == 0:
        if given is not None:
            return given, parse_timeframe(given)
        raise DataError(
            f"data: {source}: cannot infer the timeframe from 1 row; set data.timeframe"
        )
    if (steps == steps[0]).all():  # a regular clock: no count to take
        common_ns = int(steps[0])
    else:
        values, counts = np.unique(steps, return_counts=True)
        common_ns = int(values[np.argmax(counts)])  # ties: the shortest step
    if common_ns % 1_000_000_000:
        raise DataError(
            f"data: {source}: bars are mostly {common_ns / 1e9:g}s apart, not a whole number "
            "of seconds; resample the file"
        )
    common = common_ns // 1_000_000_000
    if given is None:
        return timeframe_text(common), common
    seconds = parse_timeframe(given)
    if seconds != common:
        raise DataError(
            f"data: {source}: bars are mostly {timeframe_text(common)} apart, but "
            f"data.timeframe is {given}; fix data.timeframe or resample the file"
        )
    return given, seconds
