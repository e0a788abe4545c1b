"""What the data layer promises of a bar: checks 1-6 of the data validation, one row each.

A data source returns validated bars (`tradeloom.plugins.data.validation.validate_bars`
drops or refuses a row with any of these problems), and a live tick runs no bar that
the validation would not keep (`tradeloom.live.tick.ticker`): both read the one definition
here, so a bar the backtest would drop is never traded live. The checks, in order (a
row is blamed on its first):

1. ``missing_values``: NaN (or infinity) in open, high, low, close or volume.
2. ``non_positive_price``: a price <= 0.
3. ``out_of_range``: a price above `tradeloom.bounds.MAX_PRICE` or a volume above
   `tradeloom.bounds.MAX_VOLUME`.
4. ``high_below_low``: high < low.
5. ``open_close_outside_range``: open or close outside [low, high].
6. ``non_positive_volume``: volume <= 0.
"""

from __future__ import annotations

from collections.abc import Mapping

from tradeloom.bounds import MAX_PRICE, MAX_VOLUME
from tradeloom.domain import OHLCV
from tradeloom.runtime.lazy import numpy as np

__all__ = ["row_problems", "sound_bars", "sound_columns", "unsound_bars"]

_PRICES = ("open", "high", "low", "close")
_OUT_OF_RANGE = f"a price above {MAX_PRICE:.0e} or a volume above {MAX_VOLUME:.0e}"


def row_problems(values: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray, str]]:
    """Return checks 1-6 of the module's list over OHLCV columns, in order: each kind's
    code, which rows have it (a row may have several), and what they have.

    A source without volume gives NaN on every row: no volume, not missing values (and
    no volume check). The data validation blames each row on its first kind; a live
    tick drops a bar with any (`unsound_bars`).
    """
    measured = [c for c in OHLCV if c != "volume" or not np.isnan(values[c]).all()]
    missing_by_column = {c: ~np.isfinite(values[c]) for c in measured}
    columns = ", ".join(c for c in measured if missing_by_column[c].any())
    problems = [
        (
            "missing_values",
            np.logical_or.reduce(list(missing_by_column.values())),
            f"missing or infinite values in {columns}",
        )
    ]
    with np.errstate(invalid="ignore"):
        non_positive = np.logical_or.reduce([values[c] <= 0 for c in _PRICES])
        huge = np.logical_or.reduce([values[c] > MAX_PRICE for c in _PRICES])
        outside = np.logical_or.reduce(
            [(values[c] < values["low"]) | (values[c] > values["high"]) for c in ("open", "close")]
        )
        problems += [
            ("non_positive_price", non_positive, "a price <= 0"),
            ("out_of_range", huge | (values["volume"] > MAX_VOLUME), _OUT_OF_RANGE),
            ("high_below_low", values["high"] < values["low"], "high < low"),
            ("open_close_outside_range", outside, "open or close outside [low, high]"),
        ]
        if "volume" in measured:
            problems.append(("non_positive_volume", values["volume"] <= 0, "volume <= 0"))
    return problems


def unsound_bars(rows: np.ndarray) -> list[str | None]:
    """Return, for each OHLCV row of ``rows`` (2-D, columns in `OHLCV`'s order), the
    first problem it has as ``code: what`` (checks 1-6), or None for a sound bar: a live
    tick runs no bar that the backtest's validation would not keep."""
    found: list[str | None] = [None] * len(rows)
    if sound_bars(rows):  # a tick's every bar: ~8 us, where the checks' lines take ~37
        return found
    values = {c: rows[:, i] for i, c in enumerate(OHLCV)}
    for code, bad, what in row_problems(values):
        for i in np.flatnonzero(bad).tolist():
            found[i] = found[i] or f"{code}: {what}"
    return found


def sound_columns(values: Mapping[str, np.ndarray]) -> bool:
    """Return whether no row of the OHLCV columns ``values`` has any of `row_problems`:
    `sound_bars`' verdict over columns, in a dozen array operations where the checks
    take thirty (a NaN fails every comparison; a test holds it to `row_problems`)."""
    o, h, low, c, v = (values[k] for k in OHLCV)
    with np.errstate(invalid="ignore"):
        prices = (low > 0) & (h <= MAX_PRICE) & (o >= low) & (o <= h) & (c >= low) & (c <= h)
        if not prices.all():
            return False
        return bool(((v > 0) & (v <= MAX_VOLUME)).all() or np.isnan(v).all())


def sound_bars(rows: np.ndarray) -> bool:
    """Return whether no OHLCV row of ``rows`` (as `unsound_bars` takes them) has any of
    `row_problems`: every price in (0, `MAX_PRICE`] and within [low, high], every volume
    in (0, `MAX_VOLUME`] or none measured (all NaN). The same verdict in a few array
    operations (a NaN fails every comparison); a test holds it to `row_problems`."""
    if len(rows) <= _FEW_ROWS and rows.dtype == np.float64:
        return _sound_rows(rows.tolist())
    prices, volume = rows[:, :4], rows[:, 4]
    low, high = rows[:, 2:3], rows[:, 1:2]
    if not ((prices > 0) & (prices <= MAX_PRICE) & (prices >= low) & (prices <= high)).all():
        return False
    return bool(((volume > 0) & (volume <= MAX_VOLUME)).all() or np.isnan(volume).all())


_FEW_ROWS = 4
"""Rows that `sound_bars` checks as Python floats: a tick's bar or two, where the
array operations' fixed cost (~8 us) is most of the check."""


def _sound_rows(rows: list[list[float]]) -> bool:
    """`sound_bars` over a few float64 rows, as Python floats: the same comparisons of the
    same values (a NaN fails every comparison here too)."""
    for row in rows:
        high, low = row[1], row[2]
        for price in row[:4]:
            if not (price > 0 and price <= MAX_PRICE and price >= low and price <= high):
                return False
    # every volume in range, or none measured (every volume NaN), in one loop (a
    # tick's row or two: the comprehension and generators cost more than the checks)
    in_range = none_measured = True
    for row in rows:
        v = row[4]
        if not (v > 0 and v <= MAX_VOLUME):
            in_range = False
        if v == v:
            none_measured = False
    return in_range or none_measured
