"""The rolling Sharpe ratio and volatility of bar returns, in one compiled pass.

The figures are pandas' ``Series(r).rolling(w).mean()`` and ``.std(ddof=1)`` (the
tearsheet's conventions: `tradeloom.reporting.tearsheet`), to the bit. pandas computes
each with a kernel of its own over the whole series, and the ratio, the square root and
the scaling then take a numpy pass each over a million bars: most of a run's metrics.
This kernel runs pandas' two online algorithms side by side over the bars once, and
writes both figures of a bar as it goes.

It repeats pandas' operations one for one (``pandas/_libs/window/aggregations.pyx`` of
pandas 3: ``roll_mean`` and ``roll_var`` over the bounds of a fixed window), because a
sum taken in another order differs in its last bits and ``metrics.json`` must not:

- the mean: a Kahan-compensated running sum, one compensation for the bars that enter
  and another for those that leave; a window whose values are all one value (the run of
  equal values added last covers it) has that value for mean; a window of values of one
  sign never has a mean of the other (the count of negative values, ``signbit``'s);
- the variance: Welford's update with a compensated mean, recomputed from the window's
  bars where an update lost all but three digits (``InvCondTol``), a window that empties
  resetting it;
- a window needs ``w`` known values: NaN (and an infinity, which pandas' rolling reads
  as NaN) is skipped by both.

tests/reporting/test_rolling_moments.py holds it to pandas' own results.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tradeloom.kernels.jit import kernel, python_form, released_kernel

__all__ = ["pandas_rolling", "rolling_sharpe_volatility"]

_INV_COND_TOL = float(np.finfo(np.float64).eps) * 1e3
"""pandas' ``InvCondTol``: an update that leaves the sum of squares below this share of
what it was has cancelled all but three significant digits; the window is summed anew."""


@released_kernel
def rolling_sharpe_volatility(
    values: npt.NDArray[np.float64],
    window: int,
    scale: float,
    sharpe: npt.NDArray[np.float64],
    volatility: npt.NDArray[np.float64],
) -> None:
    """Write each bar's rolling Sharpe ratio and volatility of the returns ``values``.

    Over the window of the bar and the ``window - 1`` before it (NaN until ``window``
    known values): ``mean / std * scale`` (NaN where ``std`` is not above 0) and
    ``std * scale``, ``std`` being the sample standard deviation, a negative variance
    read as 0. ``scale`` is the square root of the periods per year.
    """
    n = len(values)
    # the mean's state (roll_mean)
    nobs = neg_ct = same = 0
    sum_x = add_c = remove_c = 0.0
    prev = np.nan
    # the variance's state (roll_var)
    v_nobs = v_mean = ssqdm = v_add_c = v_remove_c = 0.0
    unstable = False
    last_start = 0
    for i in range(n):
        start = max(i + 1 - window, 0)
        if i == 0 or start >= i:  # a window that shares no bar with the last: anew
            nobs = neg_ct = same = 0
            sum_x = add_c = remove_c = 0.0
            prev = _known(values[start])
            for j in range(start, i + 1):
                val = _known(values[j])
                if val == val:
                    nobs, sum_x, add_c, neg_ct, same = _add_mean(
                        val, nobs, sum_x, add_c, neg_ct, same, prev
                    )
                    prev = val
            recompute = True
        else:
            for j in range(last_start, start):
                val = _known(values[j])
                if val == val:
                    # the mean
                    nobs -= 1
                    y = -val - remove_c
                    t = sum_x + y
                    remove_c = t - sum_x - y
                    sum_x = t
                    if math.copysign(1.0, val) < 0.0:
                        neg_ct -= 1
                    # the variance
                    before = ssqdm
                    v_nobs = v_nobs - 1
                    if v_nobs:
                        prev_mean = v_mean - v_remove_c
                        y = val - v_remove_c
                        t = y - v_mean
                        v_remove_c = t + v_mean - y
                        v_mean = v_mean - t / v_nobs
                        ssqdm = ssqdm - (val - prev_mean) * (val - v_mean)
                        if before * _INV_COND_TOL > ssqdm:
                            unstable = True
                    else:
                        v_mean = 0.0
                        ssqdm = 0.0
                        unstable = False
            val = _known(values[i])
            if val == val:
                nobs, sum_x, add_c, neg_ct, same = _add_mean(
                    val, nobs, sum_x, add_c, neg_ct, same, prev
                )
                prev = val
                v_nobs, v_mean, ssqdm, v_add_c, unstable = _add_var(
                    val, v_nobs, v_mean, ssqdm, v_add_c, unstable
                )
            recompute = unstable
        if recompute:
            v_nobs = v_mean = ssqdm = v_add_c = v_remove_c = 0.0
            for j in range(start, i + 1):
                val = _known(values[j])
                if val == val:
                    v_nobs, v_mean, ssqdm, v_add_c, unstable = _add_var(
                        val, v_nobs, v_mean, ssqdm, v_add_c, unstable
                    )
            unstable = False
        last_start = start
        # calc_mean
        mean = np.nan
        if nobs >= window and nobs > 0:
            mean = sum_x / nobs
            if same >= nobs:
                mean = prev
            elif (neg_ct == 0 and mean < 0) or (neg_ct == nobs and mean > 0):
                mean = 0.0  # the values' one sign
        # calc_var (ddof 1, at least one value)
        std = np.nan
        if v_nobs >= max(window, 1) and v_nobs > 1:
            std = ssqdm / (v_nobs - 1.0)
        if std < 0.0:
            std = 0.0
        std = math.sqrt(std)
        sharpe[i] = mean / (std if std > 0.0 else np.nan) * scale
        volatility[i] = std * scale


def pandas_rolling(
    values: npt.NDArray[np.float64],
    window: int,
    scale: float,
    sharpe: npt.NDArray[np.float64],
    volatility: npt.NDArray[np.float64],
) -> None:
    """Write `rolling_sharpe_volatility`'s figures from pandas' public ``Rolling``: the
    kernel's numbers under pandas 3, whose algorithms it repeats (the property tests hold
    them bit for bit), and that pandas' own under another."""
    from tradeloom.runtime.lazy import pandas as pd

    rolling = pd.Series(values).rolling(window)
    mean = rolling.mean().to_numpy()
    std = rolling.var(ddof=1).to_numpy(copy=True)
    with np.errstate(all="ignore"):
        std[std < 0] = 0.0  # (not np.maximum, which may turn -0.0 into 0.0)
        np.sqrt(std, out=std)
        np.divide(mean, np.where(std > 0, std, np.nan), out=sharpe)
    sharpe *= scale
    np.multiply(std, scale, out=volatility)


@python_form(rolling_sharpe_volatility)
def _rolling_as_python(
    values: npt.NDArray[np.float64],
    window: int,
    scale: float,
    sharpe: npt.NDArray[np.float64],
    volatility: npt.NDArray[np.float64],
) -> None:
    """`rolling_sharpe_volatility` as Python (`tradeloom.kernels.jit.python_form`): pandas'
    rolling itself (`pandas_rolling`), whose algorithms the kernel repeats; its loop as
    Python took a small run's bars 15 us each."""
    pandas_rolling(values, window, scale, sharpe, volatility)


@kernel
def _known(value: float) -> float:
    """Return ``value``, an infinity as NaN (pandas' rolling reads it so)."""
    return np.nan if math.isinf(value) else value


@kernel
def _add_mean(
    val: float, nobs: int, sum_x: float, compensation: float, neg_ct: int, same: int, prev: float
) -> tuple[int, float, float, int, int]:
    """Return the mean's state after adding the known ``val`` (pandas' ``add_mean``, with
    the count of equal values in a row that ``roll_mean`` keeps beside it); ``prev``: the
    last value added."""
    nobs += 1
    y = val - compensation
    t = sum_x + y
    compensation = t - sum_x - y
    sum_x = t
    if math.copysign(1.0, val) < 0.0:
        neg_ct += 1
    same = same + 1 if val == prev else 1
    return nobs, sum_x, compensation, neg_ct, same


@kernel
def _add_var(
    val: float, nobs: float, mean: float, ssqdm: float, compensation: float, unstable: bool
) -> tuple[float, float, float, float, bool]:
    """Return the variance's state after adding the known ``val`` (pandas' ``add_var``)."""
    before = ssqdm
    nobs = nobs + 1
    prev_mean = mean - compensation
    y = val - compensation
    t = y - mean
    compensation = t + mean - y
    mean = mean + t / nobs if nobs else 0.0
    ssqdm = ssqdm + (val - prev_mean) * (val - mean)
    if before * _INV_COND_TOL > ssqdm:
        unstable = True
    return nobs, mean, ssqdm, compensation, unstable
