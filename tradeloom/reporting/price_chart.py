"""The report's price chart: candles, volume, the strategy's indicators and every trade.

Panels, top to bottom, on one time axis (a zoom of one zooms all): the candles with the
features that declare ``plot: price`` drawn over them (moving averages, bands), the
volume, then one panel per feature that declares ``plot: panel`` (an oscillator: RSI,
MACD, stochastic). Entries and exits are marked on the candles; hovering one tells the
trade, its side and why it was entered or left.

One market is drawn as is. A universe draws every symbol's panels and trades, one
symbol shown at a time, chosen in a menu above the chart (`symbol_menu`); the first
symbol is shown when the page opens. A run written before ``bars.parquet`` existed
gets its close as a line instead of candles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tradeloom.reporting.charted import charted_note, most_traded
from tradeloom.reporting.charts import (
    Chart,
    json_text,
    json_text_array,
    layout,
    line,
    naive_times,
)
from tradeloom.reporting.downsample import candle_buckets
from tradeloom.reporting.fixed_text import fixed_texts
from tradeloom.reporting.run_data import RunData
from tradeloom.tables.grouping import per_distinct, positions_by_key

__all__ = [
    "charted_symbols",
    "market_traces",
    "price_chart",
    "symbol_menu",
]

_GREEN, _RED, _GREY = "#1a9850", "#d73027", "#555555"
_OVERLAY_COLORS = ("#2c7fb8", "#fd8d3c", "#6a3d9a", "#b15928", "#e7298a")
_PRICE_PX, _VOLUME_PX, _PANEL_PX, _GAP_PX = 360, 90, 130, 28
_GRID = "#e5e5e5"
_SIDES = pa.array(["short", "long"])


def price_chart(run: RunData) -> Chart:
    """Return the price, indicators and trades chart of a run (a menu of symbols for a
    universe)."""
    everyone = [str(s) for s in run.metrics.get("symbols") or ()]
    symbols = charted_symbols(run, everyone)
    markets = symbols or [str(run.metrics.get("symbol", ""))]
    columns = set() if run.features is None else set(run.features.columns)
    panels = _panels(run.plots, columns)
    overlays = [c for c, p in run.plots.items() if p == "price" and c in columns]
    has_volume = _has_volume(run.bars)
    groups: list[list[dict[str, Any]]] = []
    per_candle = 1
    # each table split by symbol once (a scan per symbol grew with the square of them)
    trades_of = _splitter(run.trades, as_text=False) if symbols else None
    bars_of = _splitter(run.bars, as_text=True) if symbols else None
    features_of = _splitter(run.features, as_text=True) if symbols else None
    for symbol in markets:
        own = trades_of(symbol) if trades_of else run.trades
        bars = bars_of(symbol) if bars_of else run.bars
        features = features_of(symbol) if features_of else run.features
        if bars is None or not len(bars):
            # no bars: the close of equity.csv (a universe's, in a run written before its
            # per-symbol series left that table; none in one written since)
            close = run.equity.get(f"close[{symbol}]" if symbols else "close")
            values = (
                np.full(len(run.equity), np.nan) if close is None else close.to_numpy(np.float64)
            )
            traces = market_traces(naive_times(run.equity), values, own)
        else:
            traces, k = _candle_traces(bars, has_volume)
            per_candle = max(per_candle, k)
            traces.extend(_marker_traces(own))
        if features is not None:
            traces.extend(_feature_traces(features, overlays, panels, has_volume))
        groups.append(traces)
    fig = layout(_height(len(panels), has_volume), **_axes(panels, has_volume))
    data = [trace for group in groups for trace in group]
    if symbols:
        fig["updatemenus"] = [symbol_menu(symbols, [len(g) for g in groups])]
        data = [dict(t, visible=s == 0) for s, group in enumerate(groups) for t in group]
    title = "Price and trades" if symbols else f"Price and trades ({markets[0]})"
    note = _note(run, symbols, per_candle, overlays, panels)
    if len(symbols) < len(everyone):
        note = f"{charted_note(len(symbols), len(everyone))}; {note}"
    return Chart(title, data, fig, note, link=True)


def _note(
    run: RunData,
    symbols: list[str],
    per_candle: int,
    overlays: list[str],
    panels: list[tuple[str, list[str]]],
) -> str:
    parts = []
    if symbols:
        parts.append(f"{len(symbols)} symbols: choose one in the menu")
    parts.append(f"{len(run.trades):,} trades, every one marked")
    if run.bars is None:
        parts.append("the close is drawn from its lows and highs (no bars.parquet in this run)")
    elif per_candle > 1:
        parts.append(f"each candle holds {per_candle} bars, for display (the run traded every bar)")
    if run.bars is not None and not _has_volume(run.bars):
        parts.append("no volume panel: the data has no volume")
    if overlays:
        parts.append("on the price: " + ", ".join(overlays))
    if panels:
        parts.append("below: " + ", ".join(" ".join(columns) for _, columns in panels))
    return "; ".join(parts)


def _has_volume(bars: pd.DataFrame | None) -> bool:
    """Return whether the bars have a volume to draw (a file without one reads as NaN)."""
    if bars is None or "volume" not in bars.columns:
        return False
    volume = bars["volume"].to_numpy(np.float64)
    return bool(np.any(np.isfinite(volume) & (volume > 0)))


def _panels(plots: dict[str, str], columns: set[str]) -> list[tuple[str, list[str]]]:
    """Return the lower panels, in file order: each feature's path and its columns."""
    panels: dict[str, list[str]] = {}
    for column, plot in plots.items():
        if plot.startswith("panel:") and column in columns:
            panels.setdefault(plot.partition(":")[2], []).append(column)
    return list(panels.items())


def _height(panels: int, volume: bool) -> int:
    return _PRICE_PX + (_VOLUME_PX + _GAP_PX) * volume + (_PANEL_PX + _GAP_PX) * panels


def _axes(panels: list[tuple[str, list[str]]], volume: bool) -> dict[str, Any]:
    """Return the y axes stacked top to bottom (domains in pixels turned into fractions) and
    the one time axis at the bottom."""
    total = _height(len(panels), volume)
    rows: list[tuple[str, int]] = [("price", _PRICE_PX)]
    if volume:
        rows.append(("volume", _VOLUME_PX))
    rows.extend((columns[0], _PANEL_PX) for _, columns in panels)  # the legend names the rest
    axes: dict[str, Any] = {}
    top = total
    for i, (title, height) in enumerate(rows):
        name = "yaxis" if i == 0 else f"yaxis{i + 1}"
        axes[name] = {
            "title": {"text": title, "font": {"size": 11}},
            "domain": [max(0.0, (top - height) / total), top / total],
            "gridcolor": _GRID,
            "tickformat": ".4~g" if i else None,
        }
        top -= height + _GAP_PX
    axes["xaxis"] = {
        "title": {"text": "time (UTC)"},
        "anchor": f"y{len(rows)}" if len(rows) > 1 else "y",
        "gridcolor": _GRID,
        "rangeslider": {"visible": False},
        "type": "date",
    }
    return axes


def _splitter(frame: pd.DataFrame | None, *, as_text: bool) -> Callable[[str], pd.DataFrame | None]:
    """Return a function giving ``frame``'s rows of a symbol (its ``symbol`` column read
    as text when ``as_text``), reset to 0.. (the whole frame without that column; None
    without a frame)."""
    if frame is None or not len(frame) or "symbol" not in frame.columns:
        return lambda symbol: frame
    keys = frame["symbol"].astype(str) if as_text else frame["symbol"]
    groups = positions_by_key(keys.to_numpy())
    none = frame.iloc[:0].reset_index(drop=True)

    def rows(symbol: str) -> pd.DataFrame:
        mine = groups.get(symbol)
        return none if mine is None else frame.take(mine).reset_index(drop=True)

    return rows


def _candle_traces(bars: pd.DataFrame, volume: bool) -> tuple[list[dict[str, Any]], int]:
    values = bars[["open", "high", "low", "close", "volume"]].to_numpy(np.float64)
    x, candles, k = candle_buckets(naive_times(bars), values)
    traces: list[dict[str, Any]] = [
        {
            "type": "candlestick",
            "name": "price" if k == 1 else f"price ({k} bars a candle)",
            "x": x,
            "open": candles[:, 0],
            "high": candles[:, 1],
            "low": candles[:, 2],
            "close": candles[:, 3],
            "increasing": {"line": {"color": _GREEN, "width": 1}},
            "decreasing": {"line": {"color": _RED, "width": 1}},
            "yaxis": "y",
        }
    ]
    if volume:
        up = candles[:, 3] >= candles[:, 0]
        traces.append(
            {
                "type": "bar",
                "name": "volume",
                "x": x,
                "y": candles[:, 4],
                "marker": {"color": np.where(up, _GREEN, _RED).tolist(), "line": {"width": 0}},
                "opacity": 0.6,
                "yaxis": "y2",
                "showlegend": False,
                "hovertemplate": "volume %{y:.4~g}<extra></extra>",
            }
        )
    return traces, k


def _feature_traces(
    features: pd.DataFrame,
    overlays: list[str],
    panels: list[tuple[str, list[str]]],
    volume: bool,
) -> list[dict[str, Any]]:
    x = naive_times(features)
    traces = []
    for i, column in enumerate(overlays):
        color = _OVERLAY_COLORS[i % len(_OVERLAY_COLORS)]
        traces.append(line(x, features[column].to_numpy(np.float64), column, color, yaxis="y"))
    first_panel = 3 if volume else 2  # y is the price, y2 the volume when there is one
    for p, (_, columns) in enumerate(panels):
        for i, column in enumerate(columns):
            color = _OVERLAY_COLORS[i % len(_OVERLAY_COLORS)]
            values = features[column].to_numpy(np.float64)
            traces.append(line(x, values, column, color, yaxis=f"y{first_panel + p}"))
    return traces


def charted_symbols(run: RunData, symbols: Sequence[str]) -> list[str]:
    """Return the symbols a universe's charts draw (`tradeloom.reporting.charted.most_traded`
    of its trades), in the universe's order."""
    return most_traded(run.trades, symbols)


def symbol_menu(symbols: Sequence[str], counts: Sequence[int]) -> dict[str, Any]:
    """Return a plotly dropdown that shows one symbol's traces at a time.

    Args:
        symbols: The symbols, in the order of their traces.
        counts: How many consecutive traces each symbol has.
    """
    owner = np.repeat(np.arange(len(symbols)), counts)
    buttons = [
        {"label": symbol, "method": "restyle", "args": [{"visible": (owner == s).tolist()}]}
        for s, symbol in enumerate(symbols)
    ]
    return {
        "buttons": buttons,
        "direction": "down",
        "showactive": True,
        "x": 1.0,
        "xanchor": "right",
        "y": 1.0,
        "yanchor": "bottom",
        "pad": {"b": 28},
    }


def market_traces(x: np.ndarray, close: np.ndarray, trades: pd.DataFrame) -> list[dict[str, Any]]:
    """Return one market's traces without its bars: its close, its entries and its exits."""
    return [line(x, close, "close", _GREY), *_marker_traces(trades)]


def _marker_traces(trades: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the entries by side and the exits, each with its reason in its hover text."""
    if not len(trades):
        return []
    data = []
    long = (trades["side"] == "long" if "side" in trades else trades["direction"] > 0).to_numpy()
    entry_t = trades["entry_time"].dt.tz_localize(None).to_numpy()
    exit_t = trades["exit_time"].dt.tz_localize(None).to_numpy()
    # the hover texts as their JSON (`json_text_array`): each part escaped once, each
    # text joined from the parts' columns in Arrow (a Python string a trade cost more)
    br = json_text("<br>")
    n = len(trades)
    numbers = pc.cast(pa.array(np.arange(1, n + 1)), pa.string())
    sides = _SIDES.take(pa.array(long.astype(np.int8)))
    text = pc.binary_join_element_wise(sides, " #", numbers, br, "")
    entered = _json_column(trades, "entry_reason", n, empty="signal")
    entry_text = pc.binary_join_element_wise(text, "entry: ", entered, "")
    for side, mask, marker, color in (
        ("long entry", long, "triangle-up", _GREEN),
        ("short entry", ~long, "triangle-down", _RED),
    ):
        if mask.any():
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": side,
                    "x": entry_t[mask],
                    "y": trades["entry_price"].to_numpy(np.float64)[mask],
                    "marker": {"symbol": marker, "size": 9, "color": color},
                    "text": json_text_array(entry_text.filter(pa.array(mask))),
                    "hovertemplate": "%{text}<br>at %{y:,.6g}<extra></extra>",
                    "yaxis": "y",
                }
            )
    pnl = trades["pnl"].to_numpy(np.float64)
    percent = fixed_texts(trades["return"].to_numpy(np.float64) * 100, 2, plus=True)
    reason = _json_column(trades, "exit_reason", n)
    exit_text = pc.binary_join_element_wise(text, "exit: ", reason, br, "return ", percent, "%", "")
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "exit",
            "x": exit_t,
            "y": trades["exit_price"].to_numpy(np.float64),
            "marker": {
                "symbol": "x",
                "size": 8,
                "color": np.where(pnl > 0, _GREEN, _RED),
                "line": {"width": 1},
            },
            "text": json_text_array(exit_text),
            "hovertemplate": "%{text}<br>at %{y:,.6g}<extra></extra>",
            "yaxis": "y",
        }
    )
    return data


def _json_column(trades: pd.DataFrame, key: str, n: int, empty: str = "") -> pa.Array:
    """Return a text column as the insides of JSON strings (`json_text`), each distinct
    text escaped once (``empty`` for an empty text; every row, without the column)."""
    if key not in trades:
        return pa.array([json_text(empty)]).take(pa.array(np.zeros(n, dtype=np.int8)))
    column = trades[key].astype(str)
    if isinstance(column.array, pd.arrays.ArrowStringArray) and not column.hasnans:
        # each distinct text found and escaped in Arrow's dictionary, no str per row
        coded = pc.dictionary_encode(pa.array(column, from_pandas=True))
        if isinstance(coded, pa.ChunkedArray):
            coded = coded.combine_chunks()
        words = [json_text(f"{value or empty}") for value in coded.dictionary.to_pylist()]
        return pa.array(words, pa.string()).take(coded.indices)
    texts = per_distinct(column, lambda value: json_text(f"{value or empty}"))
    return pa.array(texts, pa.string())
