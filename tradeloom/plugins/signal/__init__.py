"""Built-in signal components: ``threshold`` (confidence threshold with a minimum interval)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog
from tradeloom.runtime.lazy import exports

if TYPE_CHECKING:
    from tradeloom.plugins.signal.threshold import (
        ThresholdParams,
        ThresholdRule,
        build_threshold_rule,
        threshold_step,
    )

__all__ = [
    "ThresholdParams",
    "ThresholdRule",
    "build_threshold_rule",
    "threshold_step",
    "tradeloom_components",
]

__getattr__ = exports(__name__, dict.fromkeys(__all__[:-1], "threshold"))


tradeloom_components = catalog(
    LazyComponent(
        layer="signal",
        kind="threshold",
        module="tradeloom.plugins.signal.threshold",
        params="ThresholdParams",
        factory="build_threshold_rule",
        summary="long/short when confidence |p - 0.5| * 2 reaches a threshold, "
        "at most one signal per min_interval bars",
    ),
)
"""The built-in signal components."""
