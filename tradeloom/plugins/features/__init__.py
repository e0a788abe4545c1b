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

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog

__all__ = ["tradeloom_components"]


tradeloom_components = catalog(
    LazyComponent(
        layer="features",
        kind="log_return",
        module="tradeloom.plugins.features.returns",
        params="LogReturnParams",
        factory="build_log_return",
        summary="ln(close_t / close_{t-period}) -> log_return_{period}",
    ),
    LazyComponent(
        layer="features",
        kind="returns",
        module="tradeloom.plugins.features.returns",
        params="ReturnsParams",
        factory="build_returns",
        summary="close_t / close_{t-period} - 1 -> returns_{period}",
    ),
    LazyComponent(
        layer="features",
        kind="rsi",
        module="tradeloom.plugins.features.rsi",
        params="RsiParams",
        factory="build_rsi",
        summary="Wilder's RSI (TA-Lib definition), 0-100 -> rsi_{window}",
        plot="panel",
    ),
    LazyComponent(
        layer="features",
        kind="bb_width",
        module="tradeloom.plugins.features.bollinger",
        params="BollingerWidthParams",
        factory="build_bb_width",
        summary="Bollinger band width / middle band -> bb_width_{window}",
        plot="panel",
    ),
    LazyComponent(
        layer="features",
        kind="bollinger",
        module="tradeloom.plugins.features.bollinger_bands",
        params="BollingerBandsParams",
        factory="build_bollinger",
        summary="Bollinger bands: SMA +/- std x population std -> bb_upper_{window}, "
        "bb_middle_{window}, bb_lower_{window}",
        plot="price",
    ),
    LazyComponent(
        layer="features",
        kind="volatility",
        module="tradeloom.plugins.features.volatility",
        params="VolatilityParams",
        factory="build_volatility",
        summary="Rolling std of 1-bar log returns, annualized -> volatility_{window}",
    ),
    LazyComponent(
        layer="features",
        kind="volume_zscore",
        module="tradeloom.plugins.features.volume",
        params="VolumeZScoreParams",
        factory="build_volume_zscore",
        summary="Z-score of volume in its rolling window -> volume_zscore_{window}",
    ),
    LazyComponent(
        layer="features",
        kind="zscore",
        module="tradeloom.plugins.features.zscore",
        params="ZScoreParams",
        factory="build_zscore",
        summary="Rolling z-score of an earlier feature column -> {of}_zscore_{window}",
    ),
    LazyComponent(
        layer="features",
        kind="ema",
        module="tradeloom.plugins.features.ema",
        params="EmaParams",
        factory="build_ema",
        summary="EMA of the close, SMA-seeded (TA-Lib definition) -> ema_{period}",
        plot="price",
    ),
    LazyComponent(
        layer="features",
        kind="macd",
        module="tradeloom.plugins.features.macd",
        params="MacdParams",
        factory="build_macd",
        summary="EMA(fast) - EMA(slow), signal EMA, histogram -> macd_{fast}_{slow}, ...",
        plot="panel",
    ),
    LazyComponent(
        layer="features",
        kind="sma",
        module="tradeloom.plugins.features.sma",
        params="SmaParams",
        factory="build_sma",
        summary="Simple moving average of the close (TA-Lib SMA) -> sma_{window}",
        plot="price",
    ),
    LazyComponent(
        layer="features",
        kind="adx",
        module="tradeloom.plugins.features.adx",
        params="AdxParams",
        factory="build_adx",
        summary="Wilder's average directional index (TA-Lib ADX), 0-100 -> adx_{window}",
        plot="panel",
    ),
    LazyComponent(
        layer="features",
        kind="obv",
        module="tradeloom.plugins.features.obv",
        params="ObvParams",
        factory="build_obv",
        summary="On-balance volume (TA-Lib OBV) -> obv",
        plot="panel",
    ),
    LazyComponent(
        layer="features",
        kind="donchian",
        module="tradeloom.plugins.features.donchian",
        params="DonchianParams",
        factory="build_donchian",
        summary="Donchian channel: highest high, midpoint, lowest low of the last window "
        "bars -> donchian_upper_{window}, donchian_middle_{window}, donchian_lower_{window}",
        plot="price",
    ),
    LazyComponent(
        layer="features",
        kind="vwap",
        module="tradeloom.plugins.features.sessions",
        params="VwapParams",
        factory="build_vwap",
        summary="Volume-weighted average typical price of the bar's session so far "
        "(the calendar's session; around the clock the UTC day) -> vwap",
        plot="price",
    ),
    LazyComponent(
        layer="features",
        kind="time_features",
        module="tradeloom.plugins.features.sessions",
        params="TimeFeaturesParams",
        factory="build_time_features",
        summary="Hour, weekday, month (calendar's local time), session open and close "
        "flags (calendar's sessions) -> hour, weekday, month, session_open, session_close",
    ),
    LazyComponent(
        layer="features",
        kind="atr",
        module="tradeloom.plugins.features.atr",
        params="AtrParams",
        factory="build_atr",
        summary="Wilder's average true range (TA-Lib definition) -> atr_{window}",
        plot="panel",
    ),
    LazyComponent(
        layer="features",
        kind="stochastic",
        module="tradeloom.plugins.features.stochastic",
        params="StochasticParams",
        factory="build_stochastic",
        summary="Fast stochastic %K and SMA %D -> stoch_k_{k}, stoch_d_{k}_{d}",
        plot="panel",
    ),
    LazyComponent(
        layer="features",
        kind="lags",
        module="tradeloom.plugins.features.lags",
        params="LagsParams",
        factory="build_lags",
        summary="Earlier feature columns k bars ago -> {column}_lag_{k}",
    ),
    LazyComponent(
        layer="features",
        kind="series",
        module="tradeloom.plugins.features.series",
        params="SeriesParams",
        factory="build_series",
        summary="An auxiliary series (data.auxiliary) as a feature: level, diff or z-score",
    ),
    LazyComponent(
        layer="features",
        kind="lexicon",
        module="tradeloom.plugins.features.lexicon",
        params="LexiconParams",
        factory="build_lexicon",
        summary="Documents of a text source scored by a declared word list, aggregated "
        "per bar over those visible at its close -> {name}_score, {name}_hits, "
        "{name}_count",
    ),
    LazyComponent(
        layer="features",
        kind="text_llm",
        module="tradeloom.plugins.features.text_llm",
        params="TextLlmParams",
        factory="build_text_llm",
        summary="Documents of a text source put to an LLM (a prompt file, declared numeric "
        "fields, answers cached), aggregated per bar -> {name}_{field}, {name}_count",
    ),
    LazyComponent(
        layer="features",
        kind="text_embedding",
        module="tradeloom.plugins.features.text_embedding",
        params="EmbeddingParams",
        factory="build_text_embedding",
        summary="Documents of a text source as sentence embeddings of a local model "
        "(tradeloom[text]), averaged per bar over those visible at its close, projected "
        "to a few components inside each walk-forward fold -> {name}_dim000..., "
        "{name}_count",
    ),
    LazyComponent(
        layer="features",
        kind="spread_bps",
        module="tradeloom.plugins.features.book",
        params="SpreadBpsParams",
        factory="build_spread_bps",
        summary="Best ask - best bid of the recorded book (data.order_book), in bps of "
        "the mid -> spread_bps",
    ),
    LazyComponent(
        layer="features",
        kind="book_imbalance",
        module="tradeloom.plugins.features.book",
        params="BookImbalanceParams",
        factory="build_book_imbalance",
        summary="(bid size - ask size) / (bid size + ask size) over the first levels of "
        "the recorded book -> book_imbalance_{levels}",
    ),
    LazyComponent(
        layer="features",
        kind="book_depth",
        module="tradeloom.plugins.features.book",
        params="BookDepthParams",
        factory="build_book_depth",
        summary="Size resting no further than within_bps basis points from the mid in the "
        "recorded book, per side or both -> book_depth_{side}_{within_bps}",
    ),
    LazyComponent(
        layer="features",
        kind="cross_rank",
        module="tradeloom.plugins.features.cross",
        params="CrossParams",
        factory="build_cross_rank",
        summary="Percentile rank of a column across the universe's symbols at each bar "
        "-> {of}_cross_rank",
    ),
    LazyComponent(
        layer="features",
        kind="cross_zscore",
        module="tradeloom.plugins.features.cross",
        params="CrossParams",
        factory="build_cross_zscore",
        summary="Z-score of a column across the universe's symbols at each bar "
        "-> {of}_cross_zscore",
    ),
    LazyComponent(
        layer="features",
        kind="cross_mean",
        module="tradeloom.plugins.features.cross",
        params="CrossParams",
        factory="build_cross_mean",
        summary="Mean of a column over the universe's symbols at each bar (of a "
        "return: the universe's mean return) -> {of}_cross_mean",
    ),
)
"""The built-in features."""
