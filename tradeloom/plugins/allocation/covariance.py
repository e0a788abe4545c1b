"""Covariance estimators of the allocators: sample, Ledoit-Wolf shrinkage, exponentially
weighted.

Each is written in numpy (Ledoit-Wolf as scikit-learn's, from one Gram matrix where
scikit-learn makes three), and every allocator that weighs
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
    "covariance_diagonal",
    "ledoit_wolf_of",
    "needs_more_bars_than_symbols",
    "shrinkage_of",
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
        return _ledoit_wolf(x)
    if halflife is None:
        raise ValueError("an exponential covariance needs a halflife")
    return _exponential(x, halflife)


def covariance_diagonal(
    returns: npt.NDArray[np.float64], kind: CovarianceKind, halflife: float | None = None
) -> npt.NDArray[np.float64]:
    """Return the diagonal of `covariance` (the variances) without the whole matrix.

    Ledoit-Wolf's shrinkage reads the sum of the squared sample covariances, which is
    also that of the bars' ``[bars, bars]`` Gram matrix: the smaller of the two is made.
    The sums run in another order than `covariance`'s: the two agree to about 1e-15
    relative (1e-10 where the shrinkage is a difference of near-equal sums, a window of
    a few bars).
    """
    x = np.asarray(returns, dtype=np.float64)
    if kind == "sample":
        centred = x - x.mean(axis=0)
        return np.asarray(np.sum(centred**2, axis=0) / (x.shape[0] - 1), dtype=np.float64)
    if kind == "ledoit_wolf":
        centred = x - x.mean(axis=0)
        bars, n = centred.shape
        if n == 1:
            return np.asarray((centred**2).mean(axis=0), dtype=np.float64)
        gram = centred @ centred.T if bars < n else centred.T @ centred
        # sum((X**2)'(X**2)) is the sum over bars of each bar's squared norm, squared
        quartic = float(np.sum(np.sum(centred**2, axis=1) ** 2))
        shrinkage, mu = _ledoit_wolf_shrinkage(centred, float(np.sum(gram**2)), quartic)
        variance = np.sum(centred**2, axis=0) / bars
        return np.asarray((1.0 - shrinkage) * variance + shrinkage * mu, dtype=np.float64)
    if halflife is None:
        raise ValueError("an exponential covariance needs a halflife")
    age = np.arange(x.shape[0] - 1, -1, -1, dtype=np.float64)
    w = 0.5 ** (age / halflife)
    return np.asarray((x * x * w[:, None]).sum(axis=0) / w.sum(), dtype=np.float64)


def _ledoit_wolf(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # scikit-learn's ledoit_wolf(x, assume_centered=False), bit for bit up to its block
    # of 1,000 symbols, with its Gram matrix X'X made once where it makes it twice
    centred = x - x.mean(axis=0)
    if centred.shape[1] == 1:
        return np.atleast_2d((centred**2).mean())
    return ledoit_wolf_of(centred, np.dot(centred.T, centred))


def ledoit_wolf_of(
    centred: npt.NDArray[np.float64],
    gram: npt.NDArray[np.float64],
    *,
    quartic_by_rows: bool = False,
) -> npt.NDArray[np.float64]:
    """Return the Ledoit-Wolf covariance of the demeaned returns ``centred`` given their
    Gram matrix ``centred' centred`` (`tradeloom.plugins.allocation.rolling` carries it).

    ``quartic_by_rows`` reads the sum of ``(X**2)'(X**2)`` as the sum over bars of each
    bar's squared norm, squared (``O(bars symbols)``, the same sum in another order: to
    about 1e-15) where scikit-learn makes the ``[symbols, symbols]`` product.
    """
    bars, n = centred.shape
    x2 = centred**2
    if quartic_by_rows:
        quartic = float(np.sum(np.sum(x2, axis=1) ** 2))
    else:
        quartic = float(np.sum(np.dot(x2.T, x2)))
    shrinkage, _ = _ledoit_wolf_shrinkage(centred, float(np.sum(gram**2)), quartic)
    sample = gram / bars
    mu = np.sum(np.trace(sample)) / n
    shrunk = (1.0 - shrinkage) * sample
    shrunk.flat[:: n + 1] += shrinkage * mu
    return np.asarray(shrunk, dtype=np.float64)


def _ledoit_wolf_shrinkage(
    centred: npt.NDArray[np.float64], squares: float, quartic: float
) -> tuple[float, float]:
    # scikit-learn's ledoit_wolf_shrinkage (assume_centered), given sum((X'X)**2) as
    # ``squares`` and sum((X**2)'(X**2)) as ``quartic``: the shrinkage and the mean of
    # the sample variances
    return shrinkage_of(
        np.sum(centred**2, axis=0) / centred.shape[0], squares, quartic, centred.shape[0]
    )


def shrinkage_of(
    trace: npt.NDArray[np.float64], squares: float, quartic: float, bars: int
) -> tuple[float, float]:
    """Return Ledoit-Wolf's shrinkage and the mean of the sample variances, given the
    biased sample variances ``trace``, the sum of the squares of the demeaned returns'
    Gram matrix ``squares`` and the sum of ``(X**2)'(X**2)`` ``quartic`` over ``bars``
    bars (scikit-learn's ``ledoit_wolf_shrinkage``, assume_centered)."""
    n = trace.shape[0]
    mu = float(np.sum(trace)) / n
    delta_ = squares / bars**2
    beta = 1.0 / (n * bars) * (quartic / bars - delta_)
    delta = (delta_ - 2.0 * mu * float(trace.sum()) + n * mu**2) / n
    beta = min(beta, delta)
    return (0.0 if beta == 0 else beta / delta), mu


def _exponential(x: npt.NDArray[np.float64], halflife: float) -> npt.NDArray[np.float64]:
    # RiskMetrics' EWMA, as skfolio's EWCovariance (assume_centered): the returns are not
    # demeaned, a bar of age a weighs 0.5 ** (a / halflife), the weights are normalised
    # (skfolio's recursion from zero, corrected by 1 / (1 - lambda ** n), is the same)
    age = np.arange(x.shape[0] - 1, -1, -1, dtype=np.float64)
    w = 0.5 ** (age / halflife)
    return np.asarray((x * w[:, None]).T @ x / w.sum(), dtype=np.float64)
