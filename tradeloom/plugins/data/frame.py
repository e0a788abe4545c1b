"""The ``frame`` data source: bars handed from Python as a pandas DataFrame.

`tradeloom.api.Strategy.with_data` runs a strategy on a DataFrame instead of its data
section's source: the section becomes ``kind: frame`` with every other setting kept
(``validation``, ``start``/``end``, ``calendar``, ``timeframe``, the symbols, the
auxiliary series...), and the frame is handed to the engine as it is, read and checked
by the file sources' own code (`tradeloom.plugins.data.files.FileSource`): a frame's
bars are the bars of the same frame written as a file and read by ``kind: csv`` or
``parquet``, with the same problems named the same way (a row is named by its position
in the frame, from 0).

The frame travels with the validated strategy (`FrameParams.with_frame`, bound by
`tradeloom.api.bars.bind_bars`), not in its document: a strategy file cannot name a
frame, and ``kind: frame`` in a file is refused in one line saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr, model_validator

from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.data.files import BarsParams, FileSource
from tradeloom.plugins.data.joined import build_joined
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "FRAME_SOURCE",
    "FrameParams",
    "FrameSource",
    "build_frame",
    "frame_symbols",
    "kept_settings",
    "timestamp_problem",
    "with_timestamps",
]

FRAME_SOURCE = "the DataFrame"
"""How messages name a frame's bars (``data: the DataFrame: 3 rows have high < low...``)."""


class FrameParams(BarsParams):
    """Keys of the ``frame`` data source: bars handed from Python
    (`tradeloom.api.Strategy.with_data`), which a strategy file cannot name."""

    _frame: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_long_frame(self) -> FrameParams:
        if self.symbols is not None and self.symbol_column is None:
            raise ValueError("symbols needs symbol_column (the frame's column of symbols)")
        return self

    @property
    def frame(self) -> pd.DataFrame | None:
        """Return the frame bound to these keys (`with_frame`), or None."""
        return self._frame

    def with_frame(self, bars: pd.DataFrame) -> FrameParams:
        """Return these keys with ``bars`` bound as their frame.

        The frame is held as it is with pandas' copy-on-write (a change the caller makes
        to it afterwards copies it first), else copied.
        """
        bound = self.model_copy()
        bound._frame = bars.copy(deep=not _copy_on_write())
        return bound


@dataclass(frozen=True)
class FrameSource(FileSource):
    """Load validated bars from a DataFrame, as `FileSource` loads a file's.

    ``path`` names the frame in messages (`FRAME_SOURCE`); ``frame`` is the frame, a
    timestamp column or a DatetimeIndex (any name) beside the OHLCV columns.
    """

    frame: pd.DataFrame | None = None

    def _read(self, path: Path) -> tuple[pd.DataFrame, np.ndarray]:
        bars = self._given()
        twice = bars.columns[bars.columns.duplicated()]
        if len(twice):
            names = ", ".join(sorted({str(c) for c in twice}))
            raise DataError(f"data: {FRAME_SOURCE}: the columns {names} appear twice; keep one")
        frame = with_timestamps(bars, self.params.timestamp_column)
        return frame, np.arange(len(frame))

    def _row_label(self) -> str:
        return "position"

    def _given(self) -> pd.DataFrame:
        assert self.frame is not None  # (built by build_frame, which refuses none)
        return self.frame

    def _header(self, path: Path) -> list[str] | None:
        bars = self._given()
        column = self.params.timestamp_column
        index = [] if _find(bars, column) is not None else [column]
        return [*index, *(str(c) for c in bars.columns)]

    def _rows_in(self, path: Path) -> int | None:
        return len(self._given())

    def informative_refusal(self, symbol: str) -> str | None:
        """Return why ``symbol``'s bars cannot be read beside the traded ones, or None:
        a long frame holds them as its rows of that symbol."""
        column = self.params.symbol_column
        if column is None:
            return (
                f"{FRAME_SOURCE} holds one market; to read {symbol} beside it, hand a long "
                "frame with a symbol column holding its rows too"
            )
        present = _symbols_of(self._given(), column)
        if present is not None and symbol not in present:
            return f"{FRAME_SOURCE} has no rows for symbol {symbol} in column '{column}'"
        return None


def build_frame(params: FrameParams, ctx: BuildContext) -> FrameSource:
    """Return the ``frame`` source of the frame bound to ``params`` (`FrameParams.with_frame`).

    Raises:
        ParamError: No frame is bound: a strategy file named ``kind: frame``.
    """
    bars = params.frame
    if bars is None:
        raise ParamError(
            "",
            "kind frame holds bars handed from Python (Strategy.with_data); a strategy "
            "file reads its bars from a file: kind csv or parquet with path",
        )
    auxiliary = build_joined(
        params.auxiliary, params.order_book, ctx, params.validation, exchange=False
    )
    return FrameSource(Path(FRAME_SOURCE), "parquet", params, auxiliary, bars)


def frame_symbols(bars: pd.DataFrame, column: str) -> list[str]:
    """Return the texts of ``bars``' column ``column`` (any case), in order of appearance."""
    found = _find(bars, column)
    assert found is not None
    texts = bars[found].astype("string").str.strip().dropna()  # as FileSource groups them
    return [str(s) for s in pd.unique(texts)]


def _symbols_of(bars: pd.DataFrame, column: str) -> set[str] | None:
    return None if _find(bars, column) is None else set(frame_symbols(bars, column))


def _find(bars: pd.DataFrame, column: str) -> Any:
    wanted = column.strip().lower()
    return next((c for c in bars.columns if str(c).strip().lower() == wanted), None)


def with_timestamps(bars: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return ``bars`` with its DatetimeIndex as the timestamp column, where it has no
    column of that name (its columns as they are, not copied)."""
    if _find(bars, column) is not None or not isinstance(bars.index, pd.DatetimeIndex):
        return bars
    data = {column: bars.index.array}  # arrays, not Series: no index to align
    data.update({c: bars[c].array for c in bars.columns})
    return pd.DataFrame(data, copy=False)


def timestamp_problem(bars: pd.DataFrame, column: str) -> str | None:
    """Return why ``bars`` has no times (no column ``column``, no DatetimeIndex), or None."""
    if _find(bars, column) is not None or isinstance(bars.index, pd.DatetimeIndex):
        return None
    return (
        f"no {column} column and no DatetimeIndex; set one "
        "(df.set_index(pd.to_datetime(df['time'], utc=True)))"
    )


def kept_settings(section: Any, kind: str) -> dict[str, Any]:
    """Return the settings of a data section that a frame keeps: its keys that
    `FrameParams` has, but those by which its kind made or fetched the bars (a synthetic
    market's ``timeframe`` and ``start``, a download's ``timeframe``, ``start`` and
    ``end``: the frame's bars are its own)."""
    if not isinstance(section, dict):
        return {}
    made = _MADE_BY.get(kind, ())
    return {k: v for k, v in section.items() if k in FrameParams.model_fields and k not in made}


_MADE_BY: dict[str, Sequence[str]] = {
    "synthetic": ("timeframe", "start"),
    "ccxt": ("timeframe", "start", "end"),
}


def _copy_on_write() -> bool:
    """Return whether pandas copies a frame on write (pandas 3, or the option set)."""
    major = int(pd.__version__.split(".")[0])
    return major >= 3 or getattr(pd.options.mode, "copy_on_write", False) is True
