"""The ``catalog`` data source: a series of the local data catalog, named, read offline.

``data: {kind: catalog, symbol: BTC-USD, timeframe: 1d}`` reads the bars that
``tradeloom data import`` (or ``tradeloom data fetch``) put in the cache
(`tradeloom.plugins.data.catalog`), with ``venue:`` to choose where several venues
hold that symbol and timeframe. The file is read and checked by the file sources' code
(`tradeloom.plugins.data.files.FileSource`), so ``start``/``end``, ``validation`` and
the rest mean what they mean for ``kind: parquet``; ``calendar`` defaults to the one the
series was imported with. A series the catalog lacks is refused when the strategy is
validated, in one line naming it and ``tradeloom data list``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, model_validator

from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.data.catalog import Series, find_series
from tradeloom.plugins.data.files import BarsParams, FileSource
from tradeloom.plugins.data.joined import build_joined
from tradeloom.plugins.data.ohlcv_cache import OhlcvCache, default_cache_dir
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["CatalogParams", "CatalogSource", "build_catalog"]

_TEMPLATE = "{symbol}"  # FileSource reads a path holding it as one file per symbol (path_of)


class CatalogParams(BarsParams):
    """Keys of the ``catalog`` data source."""

    venue: str | None = Field(
        default=None,
        min_length=1,
        description="Where the series came from (the exchange it was fetched from, or the "
        "--venue it was imported under); needed only when several venues hold it.",
    )
    cache_dir: str | None = Field(
        default=None,
        description="The catalog's folder (default $TRADELOOM_CACHE, else "
        "~/.cache/tradeloom); relative to the strategy file.",
    )

    @model_validator(mode="after")
    def _check_series(self) -> CatalogParams:
        if self.symbol is None and self.symbols is None:
            raise ValueError("name the series: symbol (or symbols) and timeframe")
        if self.timeframe is None:
            raise ValueError("name the series' timeframe (timeframe: 1h); see tradeloom data list")
        if self.symbol_column is not None:
            raise ValueError("symbol_column reads a long file; a catalog series holds one symbol")
        return self


@dataclass(frozen=True)
class CatalogSource(FileSource):
    """Load validated bars from the catalog's series, as `FileSource` loads a file's.

    Attributes:
        series: The series of each symbol.
        cache: The catalog.
    """

    series: Mapping[str, Series] = field(default_factory=dict)
    cache: OhlcvCache | None = None

    def path_of(self, symbol: str) -> Path:
        """Return the file of ``symbol``'s series (found in the catalog if not listed)."""
        if symbol in self.series:
            return self.series[symbol].path
        return self._find(symbol).path

    def informative_refusal(self, symbol: str) -> str | None:
        """Return why ``symbol``'s bars cannot be read beside the traded ones, or None."""
        try:
            self._find(symbol)
        except DataError as exc:
            return str(exc)
        return None

    def _find(self, symbol: str) -> Series:
        assert self.cache is not None and isinstance(self.params, CatalogParams)
        timeframe = self.params.timeframe or ""
        return find_series(self.cache.root, symbol, timeframe, self.params.venue)

    def _read(self, path: Path) -> tuple[pd.DataFrame, np.ndarray]:
        assert self.cache is not None
        series = next((s for s in self.series.values() if s.path == path), None)
        key = series.key if series is not None else None
        cached = None if key is None else self.cache.read(key)
        if cached is None:
            raise DataError(f"data: {path}: not a series of the catalog; see tradeloom data list")
        frame = cached.frame.reset_index()
        return frame, np.arange(1, len(frame) + 1)


def build_catalog(params: CatalogParams, ctx: BuildContext) -> CatalogSource:
    """Return the ``catalog`` source; every named series must be in the catalog.

    Raises:
        ParamError: A series the catalog lacks (naming it and ``tradeloom data list``).
    """
    root = default_cache_dir() if params.cache_dir is None else ctx.resolve_path(params.cache_dir)
    timeframe = params.timeframe or ""
    named = [("symbol", params.symbol)] if params.symbol is not None else []
    named += [(f"symbols.{i}", s) for i, s in enumerate(params.symbols or [])]
    series: dict[str, Series] = {}
    for key, symbol in named:
        try:
            series[symbol] = find_series(root, symbol, timeframe, params.venue)
        except DataError as exc:
            raise ParamError(key, str(exc)) from None
    if "calendar" not in params.model_fields_set:
        first = next(iter(series.values()))
        params = params.model_copy(update={"calendar": first.calendar})
    auxiliary = build_joined(
        params.auxiliary, params.order_book, ctx, params.validation, exchange=False
    )
    if params.symbols is None:
        path = next(iter(series.values())).path
    else:
        path = root / "ohlcv" / _TEMPLATE / f"{timeframe}.parquet"  # path_of fills it
    return CatalogSource(path, "parquet", params, auxiliary, series, OhlcvCache(root))
