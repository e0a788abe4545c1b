"""Built-in data sources: ``synthetic``, ``csv``, ``parquet``, ``ccxt`` and ``frame``.

A plugin module like any third-party one: it provides its components through
``tradeloom_components``. Every source returns `tradeloom.domain.Bars` checked by
`tradeloom.plugins.data.validation.validate_bars`.
"""

from __future__ import annotations

from tradeloom.plugins.component import Component
from tradeloom.plugins.data.ccxt_source import CcxtParams, build_ccxt
from tradeloom.plugins.data.files import CsvParams, ParquetParams, build_csv, build_parquet
from tradeloom.plugins.data.frame import FrameParams, build_frame
from tradeloom.plugins.data.synthetic import SyntheticParams, build_synthetic
from tradeloom.plugins.hookspecs import hookimpl

__all__ = ["tradeloom_components"]


@hookimpl
def tradeloom_components() -> list[Component]:
    """Return the built-in data sources."""
    return [
        Component(
            layer="data",
            kind="synthetic",
            params=SyntheticParams,
            factory=build_synthetic,
            summary="Seeded regime-switching market (trends, mean reversion, volatile spells)",
        ),
        Component(
            layer="data",
            kind="csv",
            params=CsvParams,
            factory=build_csv,
            summary="OHLCV bars from a CSV file (ISO or epoch timestamps, UTC)",
        ),
        Component(
            layer="data",
            kind="parquet",
            params=ParquetParams,
            factory=build_parquet,
            summary="OHLCV bars from a Parquet file (ISO or epoch timestamps, UTC)",
        ),
        Component(
            layer="data",
            kind="ccxt",
            params=CcxtParams,
            factory=build_ccxt,
            summary="Closed bars from an exchange through ccxt, cached locally as Parquet",
        ),
        Component(
            layer="data",
            kind="frame",
            params=FrameParams,
            factory=build_frame,
            summary="OHLCV bars handed from Python as a DataFrame (Strategy.with_data)",
        ),
    ]
