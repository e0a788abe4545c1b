"""Data revised after the fact: the bars a run saw beside the history given later
(``tradeloom parity RUN_DIR --data FILE``).

The run journaled every bar as it saw it (``live_bar``). `read_revision` reads a history
of the same markets (a CSV or Parquet table: ``timestamp``, ``symbol`` for a universe,
``open``, ``high``, ``low``, ``close``, ``volume``), takes its bar at each time the run
saw, and lists each field that differs (the run's value, the history's and by how much).
Parity then replays the run twice: on the bars the run saw (every other cause is found
there) and on the history's bars, with the same probabilities; the equity between the
two replays is the P&L of the cause ``data_revised`` (`book_revision`), and the gap is
the run's equity against the replay on the history's bars. Revised bars of one symbol
are that symbol's P&L (``by_symbol``; a portfolio's book: its strategy's).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from tradeloom.errors import UserError
from tradeloom.files.reading import read_csv, require_regular

__all__ = ["FIELDS", "Revision", "book_revision", "read_revision"]

FIELDS = ("open", "high", "low", "close", "volume")
"""A bar's fields compared."""

_WHAT = "a history of the run's bars (timestamp, symbol, open, high, low, close, volume)"


class _Comparison(Protocol):
    """What `book_revision` writes into: parity's comparison so far."""

    pnl: dict[str, np.ndarray]
    bars: list[int]
    index: dict[int, int]
    by_symbol: dict[str, dict[str, float]]

    def note(
        self, bar: int, symbol: str, name: str, mine: Any, theirs: Any, cause: str, code: str
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Revision:
    """The history given beside the bars the run saw.

    Attributes:
        file: The history's file.
        live: The run's ``live_bar`` rows with the history's OHLCV (its probabilities
            kept): what the second replay plays.
        revised: Each field that differs: ``(bar, symbol, field, run, history)``.
    """

    file: Path
    live: list[Any]
    revised: list[tuple[int, str, str, float, float]]

    @property
    def bars(self) -> int:
        """Return how many of the run's bars the history revises (any symbol)."""
        return len({(bar, symbol) for bar, symbol, *_ in self.revised})


def read_revision(
    file: Path,
    live: Sequence[Any],
    symbols: Mapping[str, str],
    tolerances: Mapping[str, float],
) -> Revision:
    """Return the history in ``file`` beside the run's ``live`` rows.

    Args:
        symbols: Each symbol of the run's rows, with the market the file names it by
            (a portfolio's book ``STRATEGY:SYMBOL``: its symbol).

    Raises:
        UserError: A file that is not a table of bars, of other symbols than the run's,
            or missing a bar the run saw (its range named).
    """
    frame = _read(file)
    markets = sorted(set(symbols.values()))
    if "symbol" in frame.columns:
        frame["symbol"] = frame["symbol"].astype(str)
        named = sorted(set(frame["symbol"]))
        if named != markets:
            raise UserError(
                f"{file}: bars of {', '.join(named)}; the run traded {', '.join(markets)}"
            )
    elif len(markets) == 1:
        frame["symbol"] = markets[0]
    else:
        raise UserError(
            f"{file}: no symbol column; the run traded {', '.join(markets)}: give each bar's symbol"
        )
    times = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce")
    if times.isna().any():
        row = int(times.isna().to_numpy().argmax())
        was = frame["timestamp"].iloc[row]
        raise UserError(f"{file}:{row + 2}: timestamp: expected a time, was {was!r}")
    frame["timestamp"] = times
    bars = frame.drop_duplicates(["timestamp", "symbol"], keep="last").set_index(
        ["timestamp", "symbol"]
    )
    first, last = pd.Timestamp(live[0].timestamp), pd.Timestamp(live[-1].timestamp)
    of = bars[list(FIELDS)].to_numpy(np.float64)
    at = {key: k for k, key in enumerate(bars.index)}
    rows, revised = [], []
    for r in live:
        time = pd.Timestamp(r.timestamp).tz_convert("UTC")
        market = symbols[r.symbol]
        k = at.get((time, market))
        if k is None:
            span = f"{times.min().isoformat()}..{times.max().isoformat()}"
            raise UserError(
                f"{file}: no {market} bar at {time.isoformat()}, a bar the run saw "
                f"(bar {r.bar}); the file spans {span}, the run saw "
                f"{first.isoformat()}..{last.isoformat()}"
            )
        values = dict(r.values)
        for j, name in enumerate(FIELDS):
            mine, theirs = float(r.values[name]), float(of[k, j])
            if not math.isfinite(theirs):
                raise UserError(f"{file}: the {market} bar at {time.isoformat()} has no {name}")
            close = math.isclose(
                mine, theirs, rel_tol=tolerances["relative"], abs_tol=tolerances["absolute"]
            )
            if not close:
                revised.append((r.bar, r.symbol, name, mine, theirs))
            values[name] = theirs
        rows.append(dataclasses.replace(r, values=values))
    return Revision(file, rows, revised)


def _read(file: Path) -> pd.DataFrame:
    if file.suffix.lower() in (".parquet", ".pq"):
        require_regular(file, _WHAT)
        try:
            frame = pd.read_parquet(file)
        except (OSError, ValueError) as exc:
            raise UserError(f"{file}: not a Parquet table ({exc}); give {_WHAT}") from None
        if "timestamp" not in frame.columns and frame.index.name == "timestamp":
            frame = frame.reset_index()
    else:
        frame = read_csv(file, _WHAT, text_columns=("timestamp", "symbol"))
    missing = [c for c in ("timestamp", *FIELDS) if c not in frame.columns]
    if missing:
        raise UserError(f"{file}: no {', '.join(missing)} column; give {_WHAT}")
    if frame.empty:
        raise UserError(f"{file}: no bars; give {_WHAT}")
    return frame


def book_revision(
    seen: _Comparison,
    revision: Revision,
    replayed: np.ndarray,
    on_history: np.ndarray,
) -> None:
    """Count the history's revisions as the cause ``data_revised``: its P&L at each bar is
    the replay's equity on the run's bars less the replay's on the history's bars; each
    revised field is a difference, the P&L that arose from its bar up to the next
    revised bar written on its bar's first field. When every revised bar is of one
    symbol (a portfolio's: one book), the whole P&L is that symbol's (``by_symbol``);
    bars of several symbols revised move one equity that sizes them all, so it is not
    split between them."""
    series = replayed - on_history
    seen.pnl["data_revised"] = series
    symbols = {symbol for _, symbol, *_ in revision.revised}
    if len(symbols) == 1 and len(series):
        (symbol,) = symbols
        seen.by_symbol.setdefault(symbol, {})["data_revised"] = float(series[-1])
    at = sorted({seen.index[bar] for bar, *_ in revision.revised})
    ends = [*at[1:], len(seen.bars)]
    arose = {
        seen.bars[i]: float(series[end - 1] - (series[i - 1] if i > 0 else 0.0))
        for i, end in zip(at, ends, strict=True)
    }
    for bar, symbol, name, mine, theirs in revision.revised:
        change = theirs - mine
        share = f"{change / mine:+.4%}" if mine else "from 0"
        row = seen.note(
            bar, symbol, f"bar.{name}", mine, theirs, "data_revised", f"{change:+.10g} ({share})"
        )
        row["pnl"] = arose.pop(bar, 0.0)
