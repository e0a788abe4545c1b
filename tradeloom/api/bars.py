"""Bars handed to the Python API as a DataFrame (`Strategy.with_data`): the data section
that reads them (``kind: frame``, the section's other settings kept), or the file they
are written to (``kind: csv`` or ``parquet``), and the checks of the arguments that
name their market and bar length.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.api.calls import as_path, kind_of
from tradeloom.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.schemas.config import StrategyConfig

__all__ = [
    "bind_bars",
    "check_symbol",
    "check_timeframe",
    "frame_section",
    "new_file",
    "reread_section",
    "written_section",
]

_OHLC = ("open", "high", "low", "close")


def check_symbol(symbol: Any, argument: str) -> None:
    from tradeloom.plugins.data.universe import symbol_problem

    if not isinstance(symbol, str):
        raise UserError(
            f"{argument}: expected a market symbol such as BTC/USDT, was {kind_of(symbol)}"
        )
    problem = symbol_problem(symbol)
    if problem is not None:
        raise UserError(
            f"{argument}: {problem}; write a market symbol such as BTC/USDT, was {symbol!r}"
        )


def check_timeframe(timeframe: Any) -> None:
    from tradeloom.time.timeframes import parse_timeframe

    if not isinstance(timeframe, str):
        raise UserError(f"timeframe: expected a bar length such as 1h, was {kind_of(timeframe)}")
    try:
        parse_timeframe(timeframe)
    except ValueError as exc:
        raise UserError(f"timeframe: {exc}") from None


def frame_section(
    bars: pd.DataFrame, old: Any, kind: str, params: Any, symbol: str | None
) -> dict[str, Any]:
    """Return the data section of ``bars`` handed as a frame: ``kind: frame`` and the
    settings of the section ``old`` (of ``kind``, its keys ``params``) a frame keeps
    (`tradeloom.plugins.data.frame.kept_settings`); its market (``symbol``, else the
    section's), or a universe of the frame's symbol column (``symbol``: that one's rows;
    a long file's section: the rows it chose).

    Raises:
        UserError: The frame is not bars: no rows, no times, a column missing or twice,
            a symbol that is not a market symbol.
    """
    from tradeloom.plugins.data.frame import frame_symbols, kept_settings, timestamp_problem

    section: dict[str, Any] = {"kind": "frame", **kept_settings(old, kind)}
    names = [str(c).strip().lower() for c in bars.columns]
    twice = sorted({str(c) for c, n in zip(bars.columns, names, strict=True) if names.count(n) > 1})
    if twice:
        raise UserError(f"bars: the columns {', '.join(twice)} appear twice (names in any case)")
    missing = [c for c in _OHLC if c not in names]
    if missing:
        raise UserError(
            f"bars: no {', '.join(missing)} column; expected timestamp, open, high, low, "
            f"close (volume optional), was {', '.join(map(str, bars.columns)) or 'none'}"
        )
    problem = timestamp_problem(bars, str(section.get("timestamp_column", "timestamp")))
    if problem is not None:
        raise UserError(f"bars: {problem}")
    if not len(bars):
        raise UserError("bars: the DataFrame has no rows")
    # a long file's section chose its rows (a frame's section took the frame's symbols)
    long = kind != "frame" and isinstance(old, dict) and isinstance(old.get("symbol_column"), str)
    column = next(
        (c for c in (section.get("symbol_column"), "symbol") if c and str(c).lower() in names),
        None,
    )
    if column is None:  # one market: the section's
        section.pop("symbol_column", None)
        section.pop("symbols", None)
        section["symbol"] = (
            symbol if symbol is not None else section.get("symbol") or _market(params)
        )
        return section
    section["symbol_column"] = column
    if symbol is not None:  # that market's rows
        section.pop("symbols", None)
        section["symbol"] = symbol
    elif not long:  # a universe of the frame's symbols
        section.pop("symbol", None)
        symbols = frame_symbols(bars, column)
        for found in symbols:
            check_symbol(found, f"bars: column {column}")
        if not symbols:
            raise UserError(f"bars: column {column} names no symbol")
        section["symbols"] = symbols
    return section


def _market(params: Any) -> str:
    """Return the market a data section named, or its file's (the csv source's default)."""
    symbol = getattr(params, "symbol", None)
    if isinstance(symbol, str):
        return symbol
    path = getattr(params, "path", None)
    if isinstance(path, str) and "{symbol}" not in path:
        return Path(path).stem
    raise UserError("symbol: name the market of the bars (with_data(bars, symbol='BTC/USDT'))")


def new_file(path: Any) -> Path:
    file = as_path(path, "path", "a new file").resolve()
    if file.exists() or file.is_symlink():  # never written over: it may be the user's own
        raise UserError(f"path: {file} exists; give a new file to write the bars to")
    return file


def bind_bars(config: StrategyConfig, bars: pd.DataFrame) -> StrategyConfig:
    """Return ``config`` (whose data is ``kind: frame``) with ``bars`` as its data
    (`tradeloom.plugins.data.frame.FrameParams.with_frame`)."""
    from dataclasses import replace

    from tradeloom.plugins.data.frame import FrameParams

    params = config.data.params
    assert isinstance(params, FrameParams)
    return replace(config, data=replace(config.data, params=params.with_frame(bars)))


def written_section(bars: pd.DataFrame, file: Path, section: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``bars`` into ``file`` (``.parquet``: Parquet, else CSV, its times UTC ISO
    8601) and return ``section`` reading them from there (``kind: parquet`` or ``csv``)."""
    import pandas as pd

    from tradeloom.plugins.data.frame import with_timestamps

    column = str(section.get("timestamp_column", "timestamp"))
    frame = with_timestamps(bars, column)
    kind = "parquet" if file.suffix.lower() == ".parquet" else "csv"
    file.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        frame.to_parquet(file, index=False)
    else:
        times = next(c for c in frame.columns if str(c).strip().lower() == column.lower())
        values = frame[times]
        if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
            values.dtype
        ):
            stamps = pd.DatetimeIndex(values)
            stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
            frame = frame.assign(**{str(times): stamps.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        frame.to_csv(file, index=False)
    rest = {k: v for k, v in section.items() if k != "kind"}
    return {"kind": kind, "path": str(file), **rest}


def reread_section(config: StrategyConfig, file: Path) -> dict[str, Any] | None:
    """Return the data section by which another process reads ``config``'s bars: None when
    it reads them from its source already, else (bars handed as a DataFrame) the section
    reading them from ``file``, where they are written (`written_section`)."""
    bars = getattr(config.data.params, "frame", None)  # (`FrameParams.frame`)
    if bars is None:
        return None
    return written_section(bars, file, dict(config.document.get("data") or {}))
