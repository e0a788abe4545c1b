"""The ``regime:`` section of a strategy file and the labels ``signal.regimes`` may list.

Market regimes are built in, not a plugin kind: the runner labels every bar
(`tradeloom.engine.regime`'s kernels) and filters the signals itself, with the
mask of the labels a signal may act in (`regime_mask`).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from tradeloom.bounds import MAX_WINDOW
from tradeloom.core.kernels.labels import HIGH_VOLATILITY, LOW_VOLATILITY, RANGING, TRENDING
from tradeloom.plugins.component import Params
from tradeloom.suggestions import did_you_mean

__all__ = ["REGIME_LABELS", "RegimeParams", "check_regime_label", "regime_mask"]


_BITS = {
    "trending": TRENDING,
    "ranging": RANGING,
    "high_volatility": HIGH_VOLATILITY,
    "low_volatility": LOW_VOLATILITY,
}

REGIME_LABELS: tuple[str, ...] = tuple(_BITS)
"""The labels ``signal.regimes`` accepts (``unknown`` is not one: see `regime_mask`)."""


# The windows are bounded by MAX_WINDOW: the step keeps that many values per series, so a
# larger one (a typo with extra zeros) would exhaust memory instead of failing here.
class RegimeParams(Params):
    """Keys of the ``regime:`` section; every one has a default."""

    trend_window: int = Field(
        default=24,
        ge=2,
        le=MAX_WINDOW,
        strict=True,
        description="Bars over which the efficiency ratio compares the net move with "
        "the path travelled.",
    )
    trend_threshold: float = Field(
        default=0.3,
        gt=0.0,
        le=1.0,
        description="Efficiency ratio at or above which a bar is trending (else ranging).",
    )
    volatility_window: int = Field(
        default=24,
        ge=2,
        le=MAX_WINDOW,
        strict=True,
        description="One-bar log returns in the rolling standard deviation.",
    )
    volatility_lookback: int = Field(
        default=240,
        ge=1,
        le=MAX_WINDOW,
        strict=True,
        description="Previous standard deviations the current one is ranked against.",
    )
    high_volatility_quantile: float = Field(
        default=0.8,
        gt=0.0,
        le=1.0,
        description="Share of the lookback's values that must lie strictly below the "
        "current standard deviation for high_volatility (else low_volatility).",
    )


def check_regime_label(value: str) -> str:
    """Return ``value`` if it is one of `REGIME_LABELS`.

    Raises:
        ValueError: It is not, with the closest label and every one of them.
    """
    if value in _BITS:
        return value
    listed = ", ".join(REGIME_LABELS[:-1]) + f" or {REGIME_LABELS[-1]}"
    raise ValueError(f"expected a regime: {listed}, was {value!r}{did_you_mean(value, _BITS)}")


def regime_mask(labels: Iterable[str]) -> int:
    """Return the bits of ``labels`` (0 for none: no filter).

    A bar passes a non-zero mask when its code shares a bit with it. ``unknown`` has no
    bit, so a bar still in its warm-up passes only through a label of its other,
    known dimension.

    Raises:
        KeyError: A label is not one of `REGIME_LABELS`.
    """
    mask = 0
    for label in labels:
        mask |= _BITS[label]
    return mask
