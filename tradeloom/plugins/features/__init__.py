"""Built-in features: log_return, rsi, bb_width, volatility, volume_zscore, lags.

A plugin module like any third-party one: it provides its components through
``tradeloom_components``. Every feature at bar t uses bars <= t only; warm-up rows
are NaN and every column is float64. Each module also exports its computation as
a plain function of numpy arrays (`log_return`, `rsi`, ...).
"""

from __future__ import annotations

from tradeloom.plugins.component import Component
from tradeloom.plugins.features.bollinger import BollingerWidthParams, build_bb_width
from tradeloom.plugins.features.lags import LagsParams, build_lags
from tradeloom.plugins.features.returns import LogReturnParams, build_log_return
from tradeloom.plugins.features.rsi import RsiParams, build_rsi
from tradeloom.plugins.features.volatility import VolatilityParams, build_volatility
from tradeloom.plugins.features.volume import VolumeZScoreParams, build_volume_zscore
from tradeloom.plugins.hookspecs import hookimpl

__all__ = ["tradeloom_components"]


@hookimpl
def tradeloom_components() -> list[Component]:
    """Return the built-in features."""
    return [
        Component(
            layer="features",
            kind="log_return",
            params=LogReturnParams,
            factory=build_log_return,
            summary="ln(close_t / close_{t-period}) -> log_return_{period}",
        ),
        Component(
            layer="features",
            kind="rsi",
            params=RsiParams,
            factory=build_rsi,
            summary="Wilder's RSI (TA-Lib definition), 0-100 -> rsi_{window}",
        ),
        Component(
            layer="features",
            kind="bb_width",
            params=BollingerWidthParams,
            factory=build_bb_width,
            summary="Bollinger band width / middle band -> bb_width_{window}",
        ),
        Component(
            layer="features",
            kind="volatility",
            params=VolatilityParams,
            factory=build_volatility,
            summary="Rolling std of 1-bar log returns, annualized -> volatility_{window}",
        ),
        Component(
            layer="features",
            kind="volume_zscore",
            params=VolumeZScoreParams,
            factory=build_volume_zscore,
            summary="Z-score of volume in its rolling window -> volume_zscore_{window}",
        ),
        Component(
            layer="features",
            kind="lags",
            params=LagsParams,
            factory=build_lags,
            summary="Earlier feature columns k bars ago -> {column}_lag_{k}",
        ),
    ]
