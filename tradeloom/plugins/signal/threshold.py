"""The ``threshold`` signal rule: act on confident probabilities, at most once per interval.

The rule is a step over explicit state (`threshold_step`), the form every driver
shares: `ThresholdRule` calls it bar by bar; a compiled batch kernel can call the
same arithmetic over all bars.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from pydantic import Field

from tradeloom.domain import Bar, Signal
from tradeloom.plugins.component import BuildContext, Params

__all__ = [
    "NO_SIGNAL",
    "StepResult",
    "ThresholdParams",
    "ThresholdRule",
    "ThresholdState",
    "build_threshold_rule",
    "threshold_step",
]

NO_SIGNAL = -1
"""`ThresholdState.last_signal_bar` before the first signal."""


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
        description="Bars from one signal to the earliest next one (1: every bar may signal).",
    )


class ThresholdState(NamedTuple):
    """The rule's whole state: the bar of the last signal emitted (`NO_SIGNAL` if none)."""

    last_signal_bar: int = NO_SIGNAL


class StepResult(NamedTuple):
    """One step's output: ``direction`` 0 means no signal."""

    direction: int
    confidence: float
    state: ThresholdState


def threshold_step(
    state: ThresholdState,
    bar: int,
    probability: float,
    threshold: float,
    min_interval: int,
) -> StepResult:
    """Decide at ``bar`` whether ``probability`` makes a signal; return it and the new state.

    ``confidence = |p - 0.5| * 2``; a signal needs ``confidence >= threshold`` and at
    least ``min_interval`` bars since the last signal emitted, whatever its direction
    (signals held back by the interval do not restart it). Its direction is +1 if
    ``p > 0.5`` else -1. NaN is no prediction: no signal, state unchanged.

    Args:
        state: The state after the previous bar.
        bar: This bar's index.
        probability: Probability of an up move, in [0, 1], or NaN.
        threshold: Confidence needed, in (0, 1].
        min_interval: Bars from one signal to the earliest next one (>= 1).
    """
    if math.isnan(probability):
        return StepResult(0, math.nan, state)
    confidence = abs(probability - 0.5) * 2.0
    if confidence < threshold:
        return StepResult(0, confidence, state)
    last = state.last_signal_bar
    if last != NO_SIGNAL and bar - last < min_interval:
        return StepResult(0, confidence, state)
    direction = 1 if probability > 0.5 else -1
    return StepResult(direction, confidence, ThresholdState(bar))


class ThresholdRule:
    """Emit a signal when the model is confident enough, spaced by ``min_interval`` bars.

    Args:
        threshold: Confidence needed, in (0, 1].
        min_interval: Bars from one signal to the earliest next one (>= 1).
        state: State to resume from (a restarted live run); fresh by default.
    """

    def __init__(
        self, threshold: float, min_interval: int = 1, state: ThresholdState | None = None
    ) -> None:
        self.threshold = threshold
        self.min_interval = min_interval
        self.state = ThresholdState() if state is None else state

    def on_bar(self, bar: Bar, probability: float) -> Signal | None:
        """Return a signal for this bar, or None. ``probability`` may be NaN.

        Raises:
            ValueError: ``probability`` is outside [0, 1] (a model's bug).
        """
        p = float(probability)
        if not (0.0 <= p <= 1.0 or math.isnan(p)):
            raise ValueError(f"probability must be in [0, 1] or NaN, was {p} at bar {bar.index}")
        direction, confidence, self.state = threshold_step(
            self.state, bar.index, p, self.threshold, self.min_interval
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
