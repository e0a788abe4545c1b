"""Import a vendor's CSV or Parquet file of bars into the local cache (``tradeloom data import``).

The file is read and checked by the ``csv`` and ``parquet`` sources' own code
(`tradeloom.plugins.data.files.FileSource`, then `validate_bars`): the vendor's columns
are renamed to ``timestamp open high low close volume`` by a column map, its other
columns are left out, and whatever the data policy refuses in a strategy's file is
refused here, naming the file's line (CSV) or row (Parquet). What passes is written to
`tradeloom.plugins.data.ohlcv_cache.OhlcvCache`, the store ``tradeloom data fetch``
fills, in its format and atomically, with the file it came from recorded as its
``origin``; ``tradeloom data list`` and a strategy's ``data: {kind: catalog}`` read it
from there.

A column map reads ``time=Date,open=Open,...``: each of ``time open high low close
volume`` (``volume`` optional) named by the vendor's header, or by its column number
from 1 in a file without a header (``--no-header``). Times are read as the file sources
read them (ISO 8601, epoch seconds/ms/us by magnitude); a ``time_format`` (strptime
codes) reads any other way of writing them, and a ``timezone`` says where naive times
are (default UTC).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeloom.domain import OHLCV, Bars
from tradeloom.errors import DataError, UserError
from tradeloom.plugins.data.files import CsvParams, FileFormat, FileSource, ParquetParams
from tradeloom.plugins.data.ohlcv_cache import CacheKey, OhlcvCache
from tradeloom.plugins.data.validation import REPAIR, DataValidationError, ValidationPolicy
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["ROLES", "Imported", "VendorFile", "import_bars", "parse_column_map"]

ROLES = ("time", *OHLCV)
"""What a column map names: the time column and the OHLCV columns."""

_DEFAULT_MAP = {"time": "timestamp", **{c: c for c in OHLCV}}


def parse_column_map(text: str | None, *, header: bool) -> dict[str, str]:
    """Return the column map ``time=Date,open=Open,...`` as ``{role: vendor column}``.

    Roles not given keep their own name (``open`` is read from a column named ``open``,
    any case); a file without a header must name every role it has by number.

    Raises:
        UserError: An unknown role, a role given twice, no ``=``, a number that is not
            one where the file has no header.
    """
    found: dict[str, str] = {}
    for part in [] if not text else text.split(","):
        role, sep, column = (p.strip() for p in part.partition("="))
        if not sep or not role or not column:
            raise UserError(f"--map: '{part.strip()}' is not ROLE=COLUMN (time=Date)")
        if role not in ROLES:
            raise UserError(f"--map: unknown role '{role}'; the roles are {', '.join(ROLES)}")
        if role in found:
            raise UserError(f"--map: {role} given twice")
        if not header and not (column.isdigit() and int(column) >= 1):
            raise UserError(
                f"--map: {role}={column}: a file without a header names its columns by "
                "number from 1 (time=1)"
            )
        found[role] = column
    if not header:
        missing = [r for r in ROLES[:-1] if r not in found]
        if missing:
            raise UserError(
                f"--map: a file without a header needs the column number of "
                f"{', '.join(missing)} (e.g. time=1,open=2,high=3,low=4,close=5,volume=6)"
            )
        return found
    return {**{r: _DEFAULT_MAP[r] for r in ROLES if r != "volume"}, **found}


@dataclass(frozen=True)
class VendorFile(FileSource):
    """A vendor's file read as the file sources read theirs, through a column map.

    Attributes:
        columns: ``{role: vendor column}`` (`parse_column_map`).
        header: Whether a CSV file's first line names its columns.
        time_format: strptime codes of the time column; None: ISO 8601 or epoch numbers.
        timezone: Where naive times are (an IANA name); times with an offset keep it.
    """

    columns: Mapping[str, str] | None = None
    header: bool = True
    time_format: str | None = None
    timezone: str = "UTC"

    def _read(self, path: Path) -> tuple[pd.DataFrame, np.ndarray]:
        if self.file_format == "csv" and not self.header:
            try:
                raw = pd.read_csv(path, header=None, skipinitialspace=True, dtype=str)
            except FileNotFoundError:
                raise DataError(f"data: {path}: file not found") from None
            except Exception as exc:  # any reader failure is the file's, not ours
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise DataError(f"data: {path}: cannot read it as CSV: {reason}") from exc
            raw.columns = [str(i + 1) for i in range(raw.shape[1])]
            rows = np.arange(1, len(raw) + 1)
            raw = raw.apply(_numbers_where_all, axis=0)
        else:
            raw, rows = super()._read(path)
        return self._mapped(raw, rows, path), rows

    def _mapped(self, raw: pd.DataFrame, rows: np.ndarray, path: Path) -> pd.DataFrame:
        assert self.columns is not None
        by_name = {str(c).strip().lower(): c for c in raw.columns}
        data: dict[str, Any] = {}
        missing: list[str] = []
        for role, name in self.columns.items():
            column = by_name.get(name.strip().lower())
            if column is None:
                if role != "volume":
                    missing.append(f"{role}={name}")
                continue
            data["timestamp" if role == "time" else role] = raw[column]
        if missing:
            found = ", ".join(str(c) for c in raw.columns) or "none"
            raise DataError(
                f"data: {path}: no column for {', '.join(missing)}; the file has {found}; "
                "give --map ROLE=COLUMN for each"
            )
        frame = pd.DataFrame(data)
        if self.time_format is not None or self.timezone != "UTC":
            frame["timestamp"] = self._times(frame["timestamp"], rows, path)
        return frame

    def _times(self, values: pd.Series, rows: np.ndarray, path: Path) -> pd.Series:
        text = values.astype("string").str.strip()
        if self.time_format is not None:
            parsed = pd.to_datetime(text, format=self.time_format, errors="coerce")
        else:
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        bad = np.asarray(parsed.isna(), dtype=bool)
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            label = self._row_label()
            expected = (
                f"expected --time-format {self.time_format}"
                if self.time_format is not None
                else "expected ISO 8601 times"
            )
            raise DataValidationError(
                [
                    f"data: {path}: {int(bad.sum())} unparsable "
                    f"{'timestamp' if bad.sum() == 1 else 'timestamps'} (first "
                    f"'{text.iloc[at]}' at {label} {rows[at]}); {expected}"
                ]
            )
        index = pd.DatetimeIndex(parsed)
        if index.tz is None:
            try:
                index = index.tz_localize(self.timezone, ambiguous="raise", nonexistent="raise")
            except Exception as exc:  # a local time that happens twice or never
                raise DataError(
                    f"data: {path}: {exc}; times in {self.timezone} that repeat or do not "
                    "exist at a clock change cannot be placed; export the file in UTC"
                ) from None
        return pd.Series(index.tz_convert("UTC"), index=values.index)


def _numbers_where_all(column: pd.Series) -> pd.Series:
    # A header-less file is read as text (a header line would otherwise turn a column of
    # numbers to text silently); a column whose every cell is an integer, such as an
    # epoch time, is read as integers, keeping every millisecond.
    text = column.str.strip()
    if text.notna().all() and text.str.fullmatch(r"-?\d{1,18}").all():
        return text.astype("int64")
    return column


@dataclass(frozen=True)
class Imported:
    """What an import did.

    Attributes:
        key: The series written (venue, symbol, timeframe).
        bars: The bars written.
        path: The cache file.
        unchanged: The series held exactly these bars already: nothing was written.
        replaced: An earlier series of that key was replaced.
    """

    key: CacheKey
    bars: Bars
    path: Path
    unchanged: bool = False
    replaced: bool = False


def import_bars(
    path: Path,
    cache: OhlcvCache,
    *,
    venue: str,
    symbol: str,
    columns: Mapping[str, str],
    header: bool = True,
    file_format: FileFormat | None = None,
    timeframe: str | None = None,
    time_format: str | None = None,
    timezone: str = "UTC",
    validation: ValidationPolicy = "reject",
    calendar: str = "crypto",
    replace: bool = False,
) -> Imported:
    """Read, check and write a vendor's file into ``cache`` as the series ``venue symbol tf``.

    Re-importing the same bars changes nothing; other bars for a series already in the
    cache are refused unless ``replace``.

    Raises:
        DataError: The file cannot be read, a mapped column is missing, a value cannot
            be parsed, the bars fail the data policy (one line each, naming the file's
            line or row), or the series exists with other bars and ``replace`` is off.
    """
    kind: FileFormat = file_format or ("parquet" if path.suffix.lower() == ".parquet" else "csv")
    params_type = CsvParams if kind == "csv" else ParquetParams
    params = params_type(
        path=str(path),
        symbol=symbol,
        timeframe=timeframe,
        validation=validation,
        calendar=calendar,
    )
    source = VendorFile(
        path,
        kind,
        params,
        columns=columns,
        header=header,
        time_format=time_format,
        timezone=timezone,
    )
    try:
        bars = source.load()
    except DataError as exc:
        lines = _for_the_command(exc.lines(), columns, header)
        if isinstance(exc, DataValidationError):
            raise DataValidationError(lines, exc.issues) from None
        raise DataError("\n".join(lines)) from None
    key = CacheKey(venue, symbol, bars.timeframe)
    frame = bars.frame[list(OHLCV)]
    start = int(frame.index[0].value // 1_000_000)
    end = int(frame.index[-1].value // 1_000_000) + bars.timeframe_seconds * 1000
    held = cache.read(key)
    if held is not None:
        same = held.frame.equals(frame) and (held.start_ms, held.end_ms) == (start, end)
        if same:
            return Imported(key, bars, held.path, unchanged=True)
        if not replace:
            raise DataError(
                f"data: the catalog already holds {key} ({len(held.frame)} bars) in "
                f"{held.path}, other than these; add --replace to overwrite it, or import "
                "under another --venue"
            )
    origin = {
        "file": str(path),
        "sha256": _digest(path),
        "columns": dict(columns),
        "calendar": calendar,
        "validation": validation,
    }
    written = cache.write(key, frame, start, end, origin=origin)
    return Imported(key, bars, written, replaced=held is not None)


def _for_the_command(lines: Sequence[str], columns: Mapping[str, str], header: bool) -> list[str]:
    # the data policy's remedy said as this command's option, a column as the file names it
    out = []
    for line in lines:
        line = line.replace(REPAIR, "add --validation repair")
        line = line.replace("data.timeframe", "--timeframe")
        for role, vendor in columns.items():
            internal = "timestamp" if role == "time" else role
            shown = f"'{vendor}'" if header else vendor
            line = line.replace(f"column '{internal}' has", f"column {shown} ({role}) has")
        out.append(line)
    return out


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
