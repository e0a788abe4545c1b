"""The ``threshold`` signal rule: act on confident probabilities, at most once per interval.

The rule is a compiled step over explicit state (`threshold_step`): `ThresholdRule`
calls it bar by bar, and the batch driver calls the same kernel inside its loop.
"""

from __future__ import annotations

import math

from pydantic import Field

from tradeloom.bounds import MAX_WINDOW
from tradeloom.core.kernels.specs import ThresholdKernel
from tradeloom.core.kernels.threshold import NO_SIGNAL, threshold_step
from tradeloom.domain import Bar, Signal
from tradeloom.plugins.component import BuildContext, Params

__all__ = [
    "NO_SIGNAL",
    "ThresholdParams",
    "ThresholdRule",
    "build_threshold_rule",
    "threshold_step",
]


class ThresholdParams(Params):
    """YAML keys of the ``threshold`` signal rule."""

    threshold: float = Field(
        gt=0.0,
        le=1.0,
        description="Confidence |p - 0.5| * 2 needed for a signal (0.3: p >= 0.65 or <= 0.35).",
    )
    min_interval: int = Field(
        default=1,
        ge=1,
        le=MAX_WINDOW,
        description="Bars from one signal to the earliest next one (1: every bar may signal; "
        "at most 1,000,000).",
    )


class ThresholdRule:
    """Emit a signal when the model is confident enough, spaced by ``min_interval`` bars.

    Args:
        threshold: Confidence needed, in (0, 1].
        min_interval: Bars from one signal to the earliest next one (>= 1).
        last_signal_bar: State to resume from (a restarted live run); none by default.
    """

    def __init__(
        self, threshold: float, min_interval: int = 1, last_signal_bar: int = NO_SIGNAL
    ) -> None:
        self.threshold = threshold
        self.min_interval = min_interval
        self._last = float(last_signal_bar)

    @property
    def last_signal_bar(self) -> int:
        """Return the bar of the last signal emitted (`NO_SIGNAL` if none)."""
        return int(self._last)

    def kernel_spec(self) -> ThresholdKernel:
        """Return the kernel's parameters for the batch driver."""
        return ThresholdKernel(self.threshold, self.min_interval)

    def on_bar(self, bar: Bar, probability: float) -> Signal | None:
        """Return a signal for this bar, or None. ``probability`` may be NaN.

        Raises:
            ValueError: ``probability`` is outside [0, 1] (a model's bug).
        """
        p = float(probability)
        if not (0.0 <= p <= 1.0 or math.isnan(p)):
            raise ValueError(f"probability must be in [0, 1] or NaN, was {p} at bar {bar.index}")
        direction, confidence, self._last = threshold_step(
            self._last, bar.index, p, self.threshold, self.min_interval
        )
        if direction == 0:
            return None
        return Signal(
            bar=bar.index,
            timestamp=bar.timestamp,
            direction=direction,
            confidence=confidence,
            probability=p,
        )


def build_threshold_rule(params: ThresholdParams, ctx: BuildContext) -> ThresholdRule:
    """Return a fresh rule."""
    return ThresholdRule(params.threshold, params.min_interval)
