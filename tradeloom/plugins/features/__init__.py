"""Built-in features: returns, oscillators, bands, volatility, z-scores, averages, lags,
and cross-sectional ones over a universe (`tradeloom.plugins.features.cross`).

A plugin module like any third-party one: it provides its components through
``tradeloom_components``. Every feature at bar t uses bars <= t only; warm-up rows
are NaN and every column is float64.

Each feature is a compiled step kernel over explicit state (``*_step``, with its
state layout documented in its module) with two drivers: ``compute`` runs all bars
inside compiled code (the backtest), ``stepper`` returns a per-bar driver
(`tradeloom.plugins.protocols_steps`) that calls the step kernel one bar at a time
(paper and live). Both give the same numbers bit for bit. Each module also exports
its batch computation as a plain function of numpy arrays (`rsi`, `bb_width`, ...).
"""

from __future__ import annotations

from tradeloom.plugins.component import Component
from tradeloom.plugins.features.adx import AdxParams, build_adx
from tradeloom.plugins.features.atr import AtrParams, build_atr
from tradeloom.plugins.features.bollinger import BollingerWidthParams, build_bb_width
from tradeloom.plugins.features.bollinger_bands import BollingerBandsParams, build_bollinger
from tradeloom.plugins.features.book import (
    BookDepthParams,
    BookImbalanceParams,
    SpreadBpsParams,
    build_book_depth,
    build_book_imbalance,
    build_spread_bps,
)
from tradeloom.plugins.features.cross import (
    CrossParams,
    build_cross_mean,
    build_cross_rank,
    build_cross_zscore,
)
from tradeloom.plugins.features.donchian import DonchianParams, build_donchian
from tradeloom.plugins.features.ema import EmaParams, build_ema
from tradeloom.plugins.features.lags import LagsParams, build_lags
from tradeloom.plugins.features.macd import MacdParams, build_macd
from tradeloom.plugins.features.obv import ObvParams, build_obv
from tradeloom.plugins.features.returns import (
    LogReturnParams,
    ReturnsParams,
    build_log_return,
    build_returns,
)
from tradeloom.plugins.features.rsi import RsiParams, build_rsi
from tradeloom.plugins.features.series import SeriesParams, build_series
from tradeloom.plugins.features.sessions import (
    TimeFeaturesParams,
    VwapParams,
    build_time_features,
    build_vwap,
)
from tradeloom.plugins.features.sma import SmaParams, build_sma
from tradeloom.plugins.features.stochastic import StochasticParams, build_stochastic
from tradeloom.plugins.features.volatility import VolatilityParams, build_volatility
from tradeloom.plugins.features.volume import VolumeZScoreParams, build_volume_zscore
from tradeloom.plugins.features.zscore import ZScoreParams, build_zscore
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
            kind="returns",
            params=ReturnsParams,
            factory=build_returns,
            summary="close_t / close_{t-period} - 1 -> returns_{period}",
        ),
        Component(
            layer="features",
            kind="rsi",
            params=RsiParams,
            factory=build_rsi,
            summary="Wilder's RSI (TA-Lib definition), 0-100 -> rsi_{window}",
            plot="panel",
        ),
        Component(
            layer="features",
            kind="bb_width",
            params=BollingerWidthParams,
            factory=build_bb_width,
            summary="Bollinger band width / middle band -> bb_width_{window}",
            plot="panel",
        ),
        Component(
            layer="features",
            kind="bollinger",
            params=BollingerBandsParams,
            factory=build_bollinger,
            summary="Bollinger bands: SMA +/- std x population std -> bb_upper_{window}, "
            "bb_middle_{window}, bb_lower_{window}",
            plot="price",
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
            kind="zscore",
            params=ZScoreParams,
            factory=build_zscore,
            summary="Rolling z-score of an earlier feature column -> {of}_zscore_{window}",
        ),
        Component(
            layer="features",
            kind="ema",
            params=EmaParams,
            factory=build_ema,
            summary="EMA of the close, SMA-seeded (TA-Lib definition) -> ema_{period}",
            plot="price",
        ),
        Component(
            layer="features",
            kind="macd",
            params=MacdParams,
            factory=build_macd,
            summary="EMA(fast) - EMA(slow), signal EMA, histogram -> macd_{fast}_{slow}, ...",
            plot="panel",
        ),
        Component(
            layer="features",
            kind="sma",
            params=SmaParams,
            factory=build_sma,
            summary="Simple moving average of the close (TA-Lib SMA) -> sma_{window}",
            plot="price",
        ),
        Component(
            layer="features",
            kind="adx",
            params=AdxParams,
            factory=build_adx,
            summary="Wilder's average directional index (TA-Lib ADX), 0-100 -> adx_{window}",
            plot="panel",
        ),
        Component(
            layer="features",
            kind="obv",
            params=ObvParams,
            factory=build_obv,
            summary="On-balance volume (TA-Lib OBV) -> obv",
            plot="panel",
        ),
        Component(
            layer="features",
            kind="donchian",
            params=DonchianParams,
            factory=build_donchian,
            summary="Donchian channel: highest high, midpoint, lowest low of the last window "
            "bars -> donchian_upper_{window}, donchian_middle_{window}, donchian_lower_{window}",
            plot="price",
        ),
        Component(
            layer="features",
            kind="vwap",
            params=VwapParams,
            factory=build_vwap,
            summary="Volume-weighted average typical price of the bar's session so far "
            "(the calendar's session; around the clock the UTC day) -> vwap",
            plot="price",
        ),
        Component(
            layer="features",
            kind="time_features",
            params=TimeFeaturesParams,
            factory=build_time_features,
            summary="Hour, weekday, month (calendar's local time), session open and close "
            "flags (calendar's sessions) -> hour, weekday, month, session_open, session_close",
        ),
        Component(
            layer="features",
            kind="atr",
            params=AtrParams,
            factory=build_atr,
            summary="Wilder's average true range (TA-Lib definition) -> atr_{window}",
            plot="panel",
        ),
        Component(
            layer="features",
            kind="stochastic",
            params=StochasticParams,
            factory=build_stochastic,
            summary="Fast stochastic %K and SMA %D -> stoch_k_{k}, stoch_d_{k}_{d}",
            plot="panel",
        ),
        Component(
            layer="features",
            kind="lags",
            params=LagsParams,
            factory=build_lags,
            summary="Earlier feature columns k bars ago -> {column}_lag_{k}",
        ),
        Component(
            layer="features",
            kind="series",
            params=SeriesParams,
            factory=build_series,
            summary="An auxiliary series (data.auxiliary) as a feature: level, diff or z-score",
        ),
        Component(
            layer="features",
            kind="spread_bps",
            params=SpreadBpsParams,
            factory=build_spread_bps,
            summary="Best ask - best bid of the recorded book (data.order_book), in bps of "
            "the mid -> spread_bps",
        ),
        Component(
            layer="features",
            kind="book_imbalance",
            params=BookImbalanceParams,
            factory=build_book_imbalance,
            summary="(bid size - ask size) / (bid size + ask size) over the first levels of "
            "the recorded book -> book_imbalance_{levels}",
        ),
        Component(
            layer="features",
            kind="book_depth",
            params=BookDepthParams,
            factory=build_book_depth,
            summary="Size resting within within_bps of the mid in the recorded book, per side "
            "or both -> book_depth_{side}_{within_bps}",
        ),
        Component(
            layer="features",
            kind="cross_rank",
            params=CrossParams,
            factory=build_cross_rank,
            summary="Percentile rank of a column across the universe's symbols at each bar "
            "-> {of}_cross_rank",
        ),
        Component(
            layer="features",
            kind="cross_zscore",
            params=CrossParams,
            factory=build_cross_zscore,
            summary="Z-score of a column across the universe's symbols at each bar "
            "-> {of}_cross_zscore",
        ),
        Component(
            layer="features",
            kind="cross_mean",
            params=CrossParams,
            factory=build_cross_mean,
            summary="Mean of a column over the universe's symbols at each bar (of a "
            "return: the universe's mean return) -> {of}_cross_mean",
        ),
    ]
