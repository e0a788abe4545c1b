"""Covariance estimators of the allocators: sample, Ledoit-Wolf shrinkage, exponentially
weighted.

Each is written in numpy (and scikit-learn's Ledoit-Wolf), and every allocator that weighs
risk uses the one its ``covariance:`` declares; tests/plugins/allocation/test_covariance.py
checks each equals skfolio's estimator of the same name. Returns are simple returns per
bar, rows oldest first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from tradeloom.bounds import MAX_WINDOW
from tradeloom.plugins.component import Params
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "CovarianceKind",
    "CovarianceParams",
    "covariance",
    "needs_more_bars_than_symbols",
]

CovarianceKind = Literal["sample", "ledoit_wolf", "exponential"]


class CovarianceParams(Params):
    """The keys of an allocator that estimates a covariance matrix."""

    covariance: CovarianceKind = Field(
        default="ledoit_wolf",
        description="The covariance estimator: sample (unbiased, ddof 1), ledoit_wolf "
        "(Ledoit-Wolf shrinkage towards a scaled identity, well conditioned even with "
        "fewer bars than symbols) or exponential (RiskMetrics' exponentially weighted "
        "second moment of the returns, not demeaned: a bar's weight halves every halflife "
        "bars; needs halflife).",
    )
    halflife: float | None = Field(
        default=None,
        gt=0,
        le=MAX_WINDOW,
        description="covariance: exponential: the bars over which a bar's weight halves "
        "(0 < halflife <= 1,000,000).",
    )

    @model_validator(mode="after")
    def _halflife(self) -> Any:
        if self.covariance == "exponential" and self.halflife is None:
            raise ValueError("covariance: exponential needs halflife: BARS")
        if self.covariance != "exponential" and self.halflife is not None:
            raise ValueError(
                f"halflife applies to covariance: exponential only, was {self.covariance}"
            )
        return self


def needs_more_bars_than_symbols(kind: CovarianceKind) -> bool:
    """Return whether ``kind``'s estimate is singular with no more bars than symbols.

    A sample or exponentially weighted covariance of ``n`` bars has rank at most ``n - 1``;
    Ledoit-Wolf's shrinkage keeps it positive definite whatever the window.
    """
    return kind != "ledoit_wolf"


def covariance(
    returns: npt.NDArray[np.float64], kind: CovarianceKind, halflife: float | None = None
) -> npt.NDArray[np.float64]:
    """Return the ``[symbols, symbols]`` covariance of ``returns`` (``[bars, symbols]``).

    Args:
        returns: Simple returns, oldest row first, at least 2 rows.
        kind: ``sample``, ``ledoit_wolf`` or ``exponential``.
        halflife: For ``exponential``, in bars.
    """
    x = np.asarray(returns, dtype=np.float64)
    if kind == "sample":
        return np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    if kind == "ledoit_wolf":
        from sklearn.covariance import ledoit_wolf

        shrunk, _ = ledoit_wolf(x, assume_centered=False)
        return np.asarray(shrunk, dtype=np.float64)
    if halflife is None:
        raise ValueError("an exponential covariance needs a halflife")
    return _exponential(x, halflife)


def _exponential(x: npt.NDArray[np.float64], halflife: float) -> npt.NDArray[np.float64]:
    # RiskMetrics' EWMA, as skfolio's EWCovariance (assume_centered): the returns are not
    # demeaned, a bar of age a weighs 0.5 ** (a / halflife), the weights are normalised
    # (skfolio's recursion from zero, corrected by 1 / (1 - lambda ** n), is the same)
    age = np.arange(x.shape[0] - 1, -1, -1, dtype=np.float64)
    w = 0.5 ** (age / halflife)
    return np.asarray((x * w[:, None]).T @ x / w.sum(), dtype=np.float64)
