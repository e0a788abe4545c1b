"""The columns the features read, against what the data provides: one rule for all.

Each feature declares the bars' columns it reads (`tradeloom.plugins.protocols.ReadsColumns`,
read by `input_columns_of`): ``obv``, ``vwap`` and ``volume_zscore`` declare volume, a
``series`` its auxiliary column, a plugin's feature what it says. The data source says
before loading what its bars will have: open, high, low and close always; volume unless
it says its files have none (`VolumeAware`); beside them, the columns it names
(`ExtraColumns`; None: not known before loading, then not checked). A column read and not
provided is refused before any bar, where validation refuses a file's other mistakes,
instead of a run that computes NaN from its first bar, trains no model and trades nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradeloom.errors import Problem
from tradeloom.plugins.protocols import ExtraColumns, VolumeAware, input_columns_of
from tradeloom.schemas.config import ComponentConfig, StrategyConfig
from tradeloom.suggestions import did_you_mean

__all__ = ["input_problems"]

_PRICES = ("open", "high", "low", "close")


def input_problems(
    config: StrategyConfig, data: object, features: Sequence[tuple[ComponentConfig, object]]
) -> list[Problem]:
    """Return a problem for each column a feature reads that ``data`` does not provide.

    Args:
        config: The strategy.
        data: The built data source (None: it failed to build, already reported).
        features: Each built feature beside its entry under ``features:``.
    """
    if data is None:
        return []
    volume = not (isinstance(data, VolumeAware) and not data.has_volume())
    extra = data.extra_columns() if isinstance(data, ExtraColumns) else None
    problems = []
    for item, feature in features:
        for column in input_columns_of(feature):
            if column in _PRICES or (column == "volume" and volume):
                continue
            if column == "volume":
                problems.append(
                    Problem(
                        config.locate(item.path),
                        item.path,
                        f"{item.kind} reads volume, and the data has no volume column; "
                        "remove this feature or use data with volume",
                    )
                )
            elif extra is not None and column not in extra:
                path = _key_naming(item, column)
                has = ", ".join(sorted(extra)) if extra else "none"
                problems.append(
                    Problem(
                        config.locate(path),
                        path,
                        f"the bars have no column '{column}'{did_you_mean(column, sorted(extra))}"
                        f" (their columns beside OHLCV: {has}); declare it under data.auxiliary",
                    )
                )
    return problems


def _key_naming(item: ComponentConfig, column: str) -> str:
    """Return the path of the entry's key whose value is ``column`` (a series' ``of``), or
    the entry's own where none names it."""
    for key, value in item.params:
        if value == column:
            return f"{item.path}.{key}"
    return item.path
