"""Built-in plugin: the monitoring layer."""

from __future__ import annotations

from tradeloom.plugins.component import Component
from tradeloom.plugins.hookspecs import hookimpl
from tradeloom.plugins.monitoring import auc

__all__ = ["tradeloom_components"]


@hookimpl
def tradeloom_components() -> list[Component]:
    """Return the rolling AUC monitor."""
    return [
        Component(
            "monitoring",
            "rolling_auc",
            auc.RollingAucParams,
            auc.build,
            "rolling AUC of predictions vs realized direction; HEALTHY/WARNING/CRITICAL",
        )
    ]
