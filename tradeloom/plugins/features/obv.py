"""The ``obv`` feature: on-balance volume, as TA-Lib's ``OBV`` computes it.

Step kernel state (`new_obv_state`, float64 array of 3): ``[1 once a bar was seen
else 0, previous close, on-balance volume]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from tradeloom.domain import Bar, Bars
from tradeloom.kernels.jit import kernel
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features._base import OneColumn, SingleColumnParams, new_columns, prices
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["Obv", "ObvParams", "build_obv", "new_obv_state", "obv", "obv_step"]


class ObvParams(SingleColumnParams):
    """Keys of ``obv``; the column is ``obv``."""


@kernel
def new_obv_state() -> np.ndarray:
    """Return the state of an OBV that has seen no bar."""
    return np.zeros(3)


@kernel
def obv_step(state: np.ndarray, close: float, volume: float) -> float:
    """Take a bar; return the on-balance volume (the first bar's is its volume)."""
    if state[0] == 0.0:
        state[0] = 1.0
        state[2] = volume
    elif close > state[1]:
        state[2] += volume
    elif close < state[1]:
        state[2] -= volume
    state[1] = close
    return state[2]  # type: ignore[no-any-return]


@kernel
def _obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    state = new_obv_state()
    out = np.empty(close.size)
    for t in range(close.size):
        out[t] = obv_step(state, close[t], volume[t])
    return out


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Return the on-balance volume: the first bar's volume, then each bar adds its
    volume when its close rose, subtracts it when it fell, and keeps it when flat."""
    c, v = (np.ascontiguousarray(a, dtype=np.float64) for a in (close, volume))
    return _obv(c, v)


class _ObvStep:
    """Per-bar driver of `Obv`."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = new_obv_state()

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's OBV."""
        return (obv_step(self._state, bar.close, bar.volume),)


@dataclass(frozen=True)
class Obv(OneColumn):
    """Compute the on-balance volume."""

    reads: ClassVar[tuple[str, ...]] = ("close", "volume")

    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the OBV; row t uses bars up to t."""
        return obv(prices(bars, "close"), prices(bars, "volume"))

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _ObvStep()


def build_obv(params: ObvParams, ctx: BuildContext) -> Obv:
    """Return the feature; its column must not be defined already."""
    return new_columns(Obv(params.column("obv")), ctx)
