"""Built-in data sources: ``synthetic``, ``csv``, ``parquet``, ``ccxt``, ``catalog`` and
``frame``.

A plugin module like any third-party one: it provides its components through
``tradeloom_components``. Every source returns `tradeloom.domain.Bars` checked by
`tradeloom.plugins.data.validation.validate_bars`.
"""

from __future__ import annotations

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog

__all__ = ["tradeloom_components"]


tradeloom_components = catalog(
    LazyComponent(
        layer="data",
        kind="synthetic",
        module="tradeloom.plugins.data.synthetic",
        params="SyntheticParams",
        factory="build_synthetic",
        summary="Seeded regime-switching market (trends, mean reversion, volatile spells)",
    ),
    LazyComponent(
        layer="data",
        kind="csv",
        module="tradeloom.plugins.data.files",
        params="CsvParams",
        factory="build_csv",
        summary="OHLCV bars from a CSV file (ISO or epoch timestamps, UTC)",
    ),
    LazyComponent(
        layer="data",
        kind="parquet",
        module="tradeloom.plugins.data.files",
        params="ParquetParams",
        factory="build_parquet",
        summary="OHLCV bars from a Parquet file (ISO or epoch timestamps, UTC)",
    ),
    LazyComponent(
        layer="data",
        kind="ccxt",
        module="tradeloom.plugins.data.ccxt_source",
        params="CcxtParams",
        factory="build_ccxt",
        summary="Closed bars from an exchange through ccxt, cached locally as Parquet",
    ),
    LazyComponent(
        layer="data",
        kind="catalog",
        module="tradeloom.plugins.data.catalog_source",
        params="CatalogParams",
        factory="build_catalog",
        summary="A series of the local data catalog (tradeloom data import / fetch), offline",
    ),
    LazyComponent(
        layer="data",
        kind="frame",
        module="tradeloom.plugins.data.frame",
        params="FrameParams",
        factory="build_frame",
        summary="OHLCV bars handed from Python as a DataFrame (Strategy.with_data)",
    ),
)
"""The built-in data sources."""
