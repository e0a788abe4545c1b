"""Features of the calendar: ``vwap`` (per session) and ``time_features``.

Both read the market's trading calendar (`tradeloom.time.calendars`, ``data.calendar``):
its sessions (`TradingCalendar.sessions`: each bar's trading day and that session's
close) and its local time. Around the clock (``crypto``, the default) a session is
the UTC day. A bar is placed by its open time; nothing after the bar is read (a
session's close is the calendar's, known in advance).

``vwap`` step state (`new_vwap_state`, float64 array of 3): ``[session day (NaN
before the first bar), sum of typical price x volume, sum of volume]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field

from tradeloom.domain import Bar, Bars
from tradeloom.kernels.jit import kernel
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.features._base import (
    OneColumn,
    ReadsBars,
    SingleColumnParams,
    check_name,
    column_frame,
    new_columns,
    prices,
)
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.time.calendars import TradingCalendar

__all__ = [
    "TIME_FIELDS",
    "TimeFeatures",
    "TimeFeaturesParams",
    "Vwap",
    "VwapParams",
    "build_time_features",
    "build_vwap",
    "new_vwap_state",
    "time_features",
    "vwap",
    "vwap_step",
]

_DAY_NS = 86_400 * 1_000_000_000

TimeField = Literal["hour", "weekday", "month", "session_open", "session_close"]
TIME_FIELDS: tuple[TimeField, ...] = ("hour", "weekday", "month", "session_open", "session_close")


class VwapParams(SingleColumnParams):
    """Keys of ``vwap``; the column is ``vwap``."""


@kernel
def new_vwap_state() -> np.ndarray:
    """Return the state of a VWAP that has seen no bar."""
    state = np.zeros(3)
    state[0] = math.nan
    return state


@kernel
def vwap_step(
    state: np.ndarray, high: float, low: float, close: float, volume: float, day: float
) -> float:
    """Take a bar of session ``day``; return the session's VWAP so far (NaN: no volume yet).

    A new session starts both sums again. The typical price is ``(high + low + close) / 3``.
    """
    if day != state[0]:
        state[0] = day
        state[1] = 0.0
        state[2] = 0.0
    state[1] += (high + low + close) / 3.0 * volume
    state[2] += volume
    if not state[2] > 0.0:
        return math.nan
    return state[1] / state[2]  # type: ignore[no-any-return]


@kernel
def _vwap(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, day: np.ndarray
) -> np.ndarray:
    state = new_vwap_state()
    out = np.empty(close.size)
    for t in range(close.size):
        out[t] = vwap_step(state, high[t], low[t], close[t], volume[t], day[t])
    return out


def _stamps(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.tz_convert("UTC").tz_localize(None).as_unit("ns").asi8)


def vwap(bars: Bars) -> np.ndarray:
    """Return the volume-weighted average typical price of each bar's session so far.

    ``sum((high + low + close) / 3 * volume) / sum(volume)`` over the session's bars up
    to this one; NaN while the session has traded no volume.
    """
    step_ns = bars.timeframe_seconds * 1_000_000_000
    day, _ = bars.calendar.sessions(_stamps(bars.frame.index), step_ns)
    high, low, close, volume = (prices(bars, k) for k in ("high", "low", "close", "volume"))
    return _vwap(high, low, close, volume, np.asarray(day, dtype=np.float64))


class _VwapStep:
    """Per-bar driver of `Vwap`."""

    __slots__ = ("_calendar", "_state", "_step_ns")

    def __init__(self, calendar: TradingCalendar, step_ns: int) -> None:
        self._state = new_vwap_state()
        self._calendar = calendar
        self._step_ns = step_ns

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's session VWAP."""
        stamp = np.array([bar.timestamp.value], np.int64)
        day, _ = self._calendar.sessions(stamp, self._step_ns)
        return (vwap_step(self._state, bar.high, bar.low, bar.close, bar.volume, float(day[0])),)


@dataclass(frozen=True)
class Vwap(OneColumn):
    """Compute the session VWAP."""

    reads: ClassVar[tuple[str, ...]] = ("high", "low", "close", "volume")

    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the VWAP; row t uses the bars of its session up to t."""
        return vwap(bars)

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _VwapStep(context.calendar, context.timeframe_seconds * 1_000_000_000)


def build_vwap(params: VwapParams, ctx: BuildContext) -> Vwap:
    """Return the feature; its column must not be defined already."""
    return new_columns(Vwap(params.column("vwap")), ctx)


class TimeFeaturesParams(Params):
    """Keys of ``time_features``; a column per field, named as the field (or prefixed)."""

    fields: list[TimeField] = Field(
        default_factory=lambda: list(TIME_FIELDS),
        min_length=1,
        description="Which columns: hour (0-23), weekday (0 Monday - 6 Sunday) and month "
        "(1-12) of the bar's open in the calendar's local time (bars of a day or more: "
        "of the session's date, the bar's label, at hour 0); session_open (1 on a "
        "session's first bar: its trading day differs from the bar before's) and "
        "session_close (1 on the bar whose span reaches its session's close, from the "
        "calendar; around the clock: UTC midnight).",
    )
    prefix: str | None = Field(
        default=None, description="Prefix of the columns, {prefix}_{field} (e.g. t)."
    )

    def columns(self) -> list[str]:
        """Return the columns, in the order of ``fields``."""
        prefix = check_name(self.prefix)
        return [f"{prefix}_{f}" if prefix else f for f in self.fields]


def time_features(
    stamps: np.ndarray,
    step_ns: int,
    calendar: TradingCalendar,
    fields: tuple[TimeField, ...],
    previous_day: float = math.nan,
) -> np.ndarray:
    """Return the ``fields`` of bars opening at ``stamps`` (UTC ns), a column each.

    Args:
        stamps: The bars' open times, in order.
        step_ns: The bars' length.
        calendar: Their market's calendar.
        fields: Which columns.
        previous_day: The session day of the bar before the first (NaN: none).
    """
    stamps = np.asarray(stamps, dtype=np.int64)
    day, close = calendar.sessions(stamps, step_ns)
    if step_ns >= _DAY_NS:
        # a daily bar is its trading day (its label): the session's date, at its midnight
        # (its open's time in the calendar's zone is the evening before, west of UTC)
        local = pd.DatetimeIndex(np.asarray(day, np.int64).astype("datetime64[D]"))
    else:
        local = pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC")
        local = local.tz_convert(calendar.timezone)
    day = np.asarray(day, dtype=np.float64)
    before = np.r_[previous_day, day[:-1]]
    values = {
        "hour": np.asarray(local.hour, dtype=np.float64),
        "weekday": np.asarray(local.day_of_week, dtype=np.float64),
        "month": np.asarray(local.month, dtype=np.float64),
        "session_open": (day != before).astype(np.float64),
        "session_close": ((stamps < close) & (stamps + step_ns >= close)).astype(np.float64),
    }
    return (
        np.column_stack([values[f] for f in fields]) if len(stamps) else np.empty((0, len(fields)))
    )


class _TimeStep:
    """Per-bar driver of `TimeFeatures`."""

    __slots__ = ("_calendar", "_day", "_fields", "_step_ns")

    def __init__(self, fields: tuple[TimeField, ...], context: StepContext) -> None:
        self._fields = fields
        self._calendar = context.calendar
        self._step_ns = context.timeframe_seconds * 1_000_000_000
        self._day = math.nan

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's fields."""
        stamp = np.array([bar.timestamp.value], np.int64)
        row = time_features(stamp, self._step_ns, self._calendar, self._fields, self._day)
        self._day = float(self._calendar.sessions(stamp, self._step_ns)[0][0])
        return tuple(float(v) for v in row[0])


@dataclass(frozen=True)
class TimeFeatures(ReadsBars):
    """Compute the hour, weekday, month and session flags of each bar."""

    fields: tuple[TimeField, ...]
    names: tuple[str, ...]

    def columns(self) -> list[str]:
        """Return the columns."""
        return list(self.names)

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the fields; row t reads bar t's open time and the calendar."""
        step_ns = bars.timeframe_seconds * 1_000_000_000
        out = time_features(_stamps(bars.frame.index), step_ns, bars.calendar, self.fields)
        return column_frame(bars, {name: out[:, k] for k, name in enumerate(self.names)})

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _TimeStep(self.fields, context)


def build_time_features(params: TimeFeaturesParams, ctx: BuildContext) -> TimeFeatures:
    """Return the feature; its columns must not be defined already."""
    fields = tuple(params.fields)
    return new_columns(TimeFeatures(fields, tuple(params.columns())), ctx, "fields")
