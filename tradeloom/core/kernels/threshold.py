"""The threshold signal rule's step: a signal when the model is confident enough."""

from __future__ import annotations

import math

from tradeloom.kernels.jit import kernel

__all__ = ["NO_SIGNAL", "threshold_step"]


NO_SIGNAL = -1
"""The state's last signal bar before the first signal."""


@kernel
def threshold_step(
    last_signal_bar: float, bar: int, probability: float, threshold: float, min_interval: int
) -> tuple[int, float, float]:
    """Decide at ``bar`` whether ``probability`` makes a signal.

    ``confidence = |p - 0.5| * 2``; a signal needs ``confidence >= threshold`` and at
    least ``min_interval`` bars since the last signal emitted, whatever its direction
    (signals held back by the interval do not restart it). Its direction is +1 if
    ``p > 0.5`` else -1. NaN is no prediction: no signal, state unchanged.

    Args:
        last_signal_bar: The rule's state: the bar of the last signal (`NO_SIGNAL`).
        bar: This bar's index.
        probability: Probability of an up move, in [0, 1], or NaN.
        threshold: Confidence needed, in (0, 1].
        min_interval: Bars from one signal to the earliest next one (>= 1).

    Returns:
        ``(direction, confidence, last_signal_bar)``: direction 0 is no signal;
        confidence is NaN for NaN; the state after this bar.
    """
    if math.isnan(probability):
        return 0, math.nan, last_signal_bar
    confidence = abs(probability - 0.5) * 2.0
    if confidence < threshold:
        return 0, confidence, last_signal_bar
    if last_signal_bar != NO_SIGNAL and bar - last_signal_bar < min_interval:
        return 0, confidence, last_signal_bar
    return (1 if probability > 0.5 else -1), confidence, float(bar)
