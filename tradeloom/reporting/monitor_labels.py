"""How a monitor's figures are labelled in ``monitoring.parquet``, ``metrics.json`` and
Prometheus: by its name, and over a universe by its name and symbol.

A strategy of one market labels a monitor ``rolling_auc`` (its name, as it always did);
over a universe each symbol has its own monitors, labelled ``rolling_auc[ETH/USDT]``.
A column of ``monitoring.parquet`` is ``<label>.<metric>`` (a drift monitor's per-feature
figures: ``<label>.psi.<column>``). A monitor's name has no dot and no bracket
(`tradeloom.plugins.monitoring.params.MONITOR_NAME_PATTERN`), so a label reads back
unambiguously whatever the symbol.
"""

from __future__ import annotations

__all__ = ["monitor_label", "split_column"]


def monitor_label(name: str, symbol: str) -> str:
    """Return the label of monitor ``name`` of ``symbol`` ('': a strategy of one market)."""
    return f"{name}[{symbol}]" if symbol else name


def split_column(column: str) -> tuple[str, str, str]:
    """Return the monitor name, symbol ('' for one market) and metric of a column.

    ``rolling_auc.auc`` -> ``("rolling_auc", "", "auc")``;
    ``rolling_auc[ETH/USDT].auc`` -> ``("rolling_auc", "ETH/USDT", "auc")``.
    """
    head, bracket, tail = column.partition("[")
    if bracket and "." not in head:
        symbol, closed, metric = tail.partition("].")
        if closed:
            return head, symbol, metric
    name, _, metric = column.partition(".")
    return name, "", metric
