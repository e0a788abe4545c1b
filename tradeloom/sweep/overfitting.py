"""How likely the best variant of a sweep is a fluke of the search: the deflated Sharpe
ratio and the probability of backtest overfitting.

Deflated Sharpe ratio (Bailey and Lopez de Prado, "The Deflated Sharpe Ratio: Correcting
for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio
Management 40(5), 2014). Every Sharpe ratio here is per bar (mean over standard deviation
of the bars' returns, ddof 1, not annualised), as in the paper; ``periods_per_year``
only adds annualised figures for display. With ``SR`` the chosen variant's Sharpe ratio,
``T`` its number of returns, ``g3`` their skewness and ``g4`` their kurtosis (3 for a
normal distribution; both the moment estimators, which keep ``g4 >= g3**2 + 1``), ``N``
the number of trials and ``V`` the variance of the trials' Sharpe ratios::

    SR0 = sqrt(V) * ((1 - gamma) * Z^-1(1 - 1/N) + gamma * Z^-1(1 - 1/(N e)))
    DSR = Z((SR - SR0) * sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))

where ``gamma`` is the Euler-Mascheroni constant and ``Z`` the standard normal CDF.
``SR0`` is the expected maximum Sharpe ratio of ``N`` trials with no skill; with one
trial it is 0 and the DSR is the probabilistic Sharpe ratio against 0.

Probability of backtest overfitting (Bailey, Borwein, Lopez de Prado and Zhu, "The
Probability of Backtest Overfitting", Journal of Computational Finance 20(4), 2017;
SSRN 2326253, 2015), by combinatorially symmetric cross-validation (CSCV): the rows of a
bars x variants matrix of returns are cut into ``S`` (even) blocks of equal length, in
order (the first ``T mod S`` rows, the oldest, are left out). For each of the
``C(S, S/2)`` ways to pick half the blocks as in-sample (the rest out-of-sample, each set
concatenated in time order), the variant with the best in-sample metric is chosen and its
out-of-sample rank ``r`` among the ``N`` variants (1 the worst, ``N`` the best) gives
``w = r / (N + 1)`` and the logit ``ln(w / (1 - w))``. PBO is the share of logits ``<= 0``:
how often the in-sample winner ends in the bottom half out-of-sample.

Conventions (deterministic, whatever the input):

- A variant whose returns hold a NaN anywhere is left out and counted (``excluded``).
- A Sharpe ratio of returns with no variance is 0 (as in the run's metrics).
- In-sample, the best metric wins; a NaN metric is never chosen over a number; ties go to
  the variant that comes first (the lowest column).
- Out-of-sample ranks are average ranks: tied variants share the mean of their ranks; a
  NaN metric ranks below every number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import Literal, Protocol

import numpy as np
from scipy.stats import norm

__all__ = [
    "DSR_THRESHOLD",
    "PBO",
    "ColumnSource",
    "DeflatedSharpe",
    "Overfitting",
    "deflated_sharpe_ratio",
    "expected_maximum_sharpe",
    "overfitting_statistics",
    "per_bar_sharpe",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
]

DSR_THRESHOLD = 0.95
"""A variant whose deflated Sharpe ratio is under this is marked on the leaderboard."""

Metric = Literal["sharpe", "sortino", "mean", "total_return"]
"""Metrics computed from per-block sums (fast: no copy of the rows per combination)."""

_COMBINATION_CHUNK = 2048
_COLUMN_CHUNK = 256
_CHUNK_VALUES = 1 << 22  # a column chunk's values at most (32 MiB of float64)


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of one variant, with every input and intermediate.

    Attributes:
        sharpe: The variant's Sharpe ratio per bar (not annualised).
        sr0: The expected maximum Sharpe ratio per bar of ``n_trials`` with no skill.
        n_trials: Variants tried (``N``).
        trial_sharpe_variance: Variance of the trials' per-bar Sharpe ratios (``V``).
        n_obs: Returns of the variant (``T``).
        skewness: Their skewness (0 for a normal distribution).
        kurtosis: Their kurtosis (3 for a normal distribution, not the excess).
        z: The standardised distance of ``sharpe`` above ``sr0``.
        dsr: The probability that the true Sharpe ratio exceeds ``sr0`` (``Z(z)``).
        periods_per_year: Bars in a year, for the annualised figures (None: not given).
    """

    sharpe: float
    sr0: float
    n_trials: int
    trial_sharpe_variance: float
    n_obs: int
    skewness: float
    kurtosis: float
    z: float
    dsr: float
    periods_per_year: float | None = None

    @property
    def sharpe_annualised(self) -> float | None:
        """Return ``sharpe`` times the square root of ``periods_per_year`` (None without it)."""
        return _annualise(self.sharpe, self.periods_per_year)

    @property
    def sr0_annualised(self) -> float | None:
        """Return ``sr0`` times the square root of ``periods_per_year`` (None without it)."""
        return _annualise(self.sr0, self.periods_per_year)


@dataclass(frozen=True, eq=False)
class PBO:
    """The probability of backtest overfitting of a sweep, with what it was computed from.

    Attributes:
        probability: Share of the combinations whose logit is ``<= 0``.
        logits: One per combination, in the order of `itertools.combinations`.
        n_combinations: ``C(n_partitions, n_partitions / 2)``.
        chosen: Per combination, the column (in the original matrix) chosen in-sample.
        in_sample: Per combination, the chosen variant's in-sample metric.
        out_of_sample: Per combination, the chosen variant's out-of-sample metric.
        n_partitions: Blocks the rows were cut into (``S``).
        n_variants: Variants compared (columns without NaN).
        excluded: Columns left out for holding a NaN.
        rows_used: Rows cut into blocks.
        rows_dropped: Oldest rows left out so that the blocks are of equal length.
        metric: Name of the metric the variants were compared by.
    """

    probability: float
    logits: np.ndarray
    n_combinations: int
    chosen: np.ndarray
    in_sample: np.ndarray
    out_of_sample: np.ndarray
    n_partitions: int
    n_variants: int
    excluded: tuple[int, ...]
    rows_used: int
    rows_dropped: int
    metric: str

    @property
    def probability_of_loss(self) -> float:
        """Return the share of combinations whose chosen variant lost out-of-sample (metric < 0)."""
        oos = self.out_of_sample
        return float(np.mean(np.nan_to_num(oos, nan=-math.inf) < 0.0))

    @property
    def degradation(self) -> tuple[float, float]:
        """Return the slope and intercept of the out-of-sample metric regressed on the
        in-sample one (the paper's performance degradation; NaN when undefined)."""
        x, y = self.in_sample, self.out_of_sample
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.sum() < 2 or np.ptp(x[keep]) == 0.0:
            return math.nan, math.nan
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        return float(slope), float(intercept)


@dataclass(frozen=True, eq=False)
class Overfitting:
    """A sweep's overfitting statistics, as the report shows them.

    Attributes:
        best: The column of the chosen variant (the sweep's best).
        deflated: The chosen variant's deflated Sharpe ratio.
        variant_dsr: Every column's deflated Sharpe ratio (NaN for excluded columns),
            all against the same ``n_trials`` and ``trial_sharpe_variance``.
        pbo: The probability of backtest overfitting (None when the matrix is too short).
        pbo_problem: Why ``pbo`` is None.
    """

    best: int
    deflated: DeflatedSharpe
    variant_dsr: np.ndarray
    pbo: PBO | None
    pbo_problem: str = ""


def per_bar_sharpe(returns: np.ndarray) -> np.ndarray | float:
    """Return the per-bar Sharpe ratio of each column of ``returns`` (or of a 1-D series).

    Mean over standard deviation (ddof 1); 0 when the returns do not vary, NaN with fewer
    than two rows.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.shape[0] < 2:
        out = np.full(r.shape[1:], math.nan)
    else:
        out = _ratio(r.mean(axis=0), r.std(axis=0, ddof=1))
    return float(out) if r.ndim == 1 else out


def expected_maximum_sharpe(n_trials: int, trial_sharpe_variance: float) -> float:
    """Return the expected maximum Sharpe ratio of ``n_trials`` with no skill (``SR0``).

    The paper's approximation (its false strategy theorem): 0 for a single trial.

    Raises:
        ValueError: ``n_trials`` is under 1 or the variance is negative or not finite.
    """
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be a whole number >= 1, was {n_trials!r}")
    if not math.isfinite(trial_sharpe_variance) or trial_sharpe_variance < 0.0:
        raise ValueError(
            f"trial_sharpe_variance must be finite and >= 0, was {trial_sharpe_variance!r}"
        )
    if n_trials == 1 or trial_sharpe_variance == 0.0:
        return 0.0
    gamma = float(np.euler_gamma)
    tail = (1.0 - gamma) * norm.ppf(1.0 - 1.0 / n_trials) + gamma * norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return math.sqrt(trial_sharpe_variance) * float(tail)


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, *, n_obs: int, skewness: float, kurtosis: float
) -> tuple[float, float]:
    """Return ``(z, probability)`` that the true per-bar Sharpe ratio exceeds ``benchmark``.

    Bailey and Lopez de Prado's probabilistic Sharpe ratio (2012): ``Z(z)`` with
    ``z = (sharpe - benchmark) sqrt(n_obs - 1) / sqrt(1 - skew sharpe + (kurt - 1)/4 sharpe^2)``.
    NaN when the denominator is not positive (a two-point distribution) or an input is NaN.
    """
    denominator = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not denominator > 0.0 or n_obs < 2 or math.isnan(sharpe) or math.isnan(benchmark):
        return math.nan, math.nan
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denominator)
    return z, float(norm.cdf(z))


def deflated_sharpe_ratio(
    returns: Sequence[float] | np.ndarray,
    *,
    n_trials: int,
    trial_sharpe_variance: float,
    periods_per_year: float | None = None,
) -> DeflatedSharpe:
    """Return the deflated Sharpe ratio of the chosen variant's per-bar ``returns``.

    Args:
        returns: The chosen variant's return at each bar (fractions, not percent).
        n_trials: Variants tried in the search (``N``), the chosen one included.
        trial_sharpe_variance: Variance of the trials' per-bar Sharpe ratios (``V``;
            `overfitting_statistics` computes it from the trials' returns).
        periods_per_year: Bars in a year, for the annualised figures only.

    Raises:
        ValueError: Fewer than two returns, a NaN among them, or a bad ``n_trials`` or
            variance (`expected_maximum_sharpe`).
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or len(r) < 2:
        raise ValueError(f"returns must be a series of at least 2 bars, had shape {r.shape}")
    if np.isnan(r).any():
        raise ValueError(f"returns hold {int(np.isnan(r).sum())} NaN values")
    sr0 = expected_maximum_sharpe(n_trials, trial_sharpe_variance)
    sharpe, skewness, kurtosis = (float(v[0]) for v in _column_statistics(r[:, np.newaxis]))
    z, dsr = probabilistic_sharpe_ratio(
        sharpe, sr0, n_obs=len(r), skewness=skewness, kurtosis=kurtosis
    )
    return DeflatedSharpe(
        sharpe=sharpe,
        sr0=sr0,
        n_trials=int(n_trials),
        trial_sharpe_variance=float(trial_sharpe_variance),
        n_obs=len(r),
        skewness=skewness,
        kurtosis=kurtosis,
        z=z,
        dsr=dsr,
        periods_per_year=periods_per_year,
    )


def probability_of_backtest_overfitting(
    returns: np.ndarray,
    *,
    n_partitions: int = 16,
    metric: Metric | Callable[[np.ndarray], np.ndarray] = "sharpe",
) -> PBO:
    """Return the probability of backtest overfitting of a bars x variants matrix (CSCV).

    Args:
        returns: Per-bar returns, one row per bar (in time order), one column per variant.
        n_partitions: Blocks to cut the rows into (``S``): even, at least 2. 16 is the
            paper's choice (12,870 combinations).
        metric: What the variants are compared by: ``sharpe`` (per bar), ``sortino``
            (mean over the root mean square of the losses; +inf with gains and no loss),
            ``mean``, ``total_return`` (compounded), or a function of a rows x variants
            array returning one number per column (slower: it is called twice per combination).

    Raises:
        ValueError: ``n_partitions`` odd or under 2, fewer than 2 rows per block, fewer
            than 2 variants without NaN, or an unknown metric.
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"returns must be a bars x variants matrix, had shape {m.shape}")
    s, block = _partitions(m.shape[0], n_partitions, metric)
    missing: np.ndarray = np.asarray(np.isnan(m).any(axis=0), bool)
    columns = _enough_columns(missing)
    dropped = m.shape[0] - block * s
    if callable(metric):
        excluded = tuple(int(i) for i in np.flatnonzero(missing))
        kept = m[dropped:] if not excluded else m[dropped:, columns]  # a view when it can be
        halves = list(combinations(range(s), s // 2))
        is_perf, oos_perf = _callable_performance(kept, s, block, halves, metric)
        name = getattr(metric, "__name__", "custom")
        return _pbo_of(
            _chosen_ranks([(is_perf, oos_perf)]), columns, missing, s, block, dropped, name
        )
    sums, centre = _block_sums(m[dropped:], s, block)
    return _pbo_from_sums(
        {k: v[:, columns] for k, v in sums.items()},
        centre[columns],
        columns,
        missing,
        s,
        block,
        dropped,
        metric,
    )


def _partitions(
    n_rows: int, n_partitions: int, metric: Metric | Callable[[np.ndarray], np.ndarray]
) -> tuple[int, int]:
    """Return the blocks and their length; raise what makes the PBO impossible."""
    if isinstance(n_partitions, bool) or int(n_partitions) != n_partitions:
        raise ValueError(f"n_partitions must be a whole number, was {n_partitions!r}")
    s = int(n_partitions)
    if s < 2 or s % 2:
        raise ValueError(f"n_partitions must be even and at least 2, was {s}")
    block = n_rows // s
    if block < 2:
        raise ValueError(
            f"{n_rows} bars cannot be cut into {s} partitions of at least 2 bars: "
            f"need at least {2 * s} bars, or fewer partitions"
        )
    if not callable(metric) and metric not in _BLOCK_METRICS:
        raise ValueError(
            f"metric must be one of {', '.join(_BLOCK_METRICS)} or a function, was {metric!r}"
        )
    return s, block


def _enough_columns(missing: np.ndarray) -> np.ndarray:
    columns = np.flatnonzero(~missing)
    if len(columns) < 2:
        raise ValueError(
            f"at least 2 variants without NaN returns are needed, had {len(columns)} "
            f"({int(missing.sum())} left out for NaN)"
        )
    return columns


def _pbo_from_sums(
    sums: dict[str, np.ndarray],
    centre: np.ndarray,
    columns: np.ndarray,
    missing: np.ndarray,
    s: int,
    block: int,
    dropped: int,
    metric: str,
) -> PBO:
    halves = list(combinations(range(s), s // 2))
    performance = _combination_performance(sums, centre, s, block, halves, metric)
    return _pbo_of(_chosen_ranks(performance), columns, missing, s, block, dropped, metric)


def _pbo_of(
    found: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    columns: np.ndarray,
    missing: np.ndarray,
    s: int,
    block: int,
    dropped: int,
    name: str,
) -> PBO:
    chosen, in_sample, out_of_sample, ranks = found
    n = len(columns)
    w = ranks / (n + 1.0)
    logits = np.log(w / (1.0 - w))
    return PBO(
        probability=float(np.mean(logits <= 0.0)),
        logits=logits,
        n_combinations=len(chosen),
        chosen=columns[chosen],
        in_sample=in_sample,
        out_of_sample=out_of_sample,
        n_partitions=s,
        n_variants=n,
        excluded=tuple(int(i) for i in np.flatnonzero(missing)),
        rows_used=block * s,
        rows_dropped=dropped,
        metric=name,
    )


def _chosen_ranks(
    performance: Iterable[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per combination: the in-sample winner, its in- and out-of-sample metric and its
    out-of-sample rank, from chunks of combinations (never all of them held at once)."""
    parts: list[tuple[np.ndarray, ...]] = []
    for is_perf, oos_perf in performance:
        chosen = _best(is_perf)
        rows = np.arange(len(chosen))
        parts.append(
            (chosen, is_perf[rows, chosen], oos_perf[rows, chosen], _oos_ranks(oos_perf, chosen))
        )
    a, b, c, d = (np.concatenate([p[k] for p in parts]) for k in range(4))
    return a, b, c, d


class ColumnSource(Protocol):
    """A bars x variants matrix read a few columns at a time (a sweep's parts on disk)."""

    shape: tuple[int, int]

    def columns(self, start: int, stop: int) -> np.ndarray:
        """Return columns ``start`` to ``stop`` as a C-ordered float64 ``[bars, k]`` array."""
        ...


def overfitting_statistics(
    returns: np.ndarray | ColumnSource,
    *,
    chosen: int | None = None,
    n_partitions: int = 16,
    metric: Metric | Callable[[np.ndarray], np.ndarray] = "sharpe",
    periods_per_year: float | None = None,
) -> Overfitting:
    """Return the deflated Sharpe ratios and the PBO of a sweep's bars x variants returns.

    ``n_trials`` is the number of variants without NaN returns, and ``V`` the variance
    (ddof 1) of their per-bar Sharpe ratios; each variant's DSR is computed against the
    same ``SR0`` (the leaderboard marks those under `DSR_THRESHOLD`). When the matrix has
    too few rows for ``n_partitions``, ``pbo`` is None and ``pbo_problem`` says why.

    The matrix is read a few columns at a time (`ColumnSource`, or slices of an array,
    float32 ones converted chunk by chunk), each chunk's per-variant statistics and
    per-block sums kept, so that no copy of the whole matrix is made.

    Args:
        returns: Per-bar returns, one row per bar, one column per variant.
        chosen: The column the sweep chose (by its objective); default: the highest
            per-bar Sharpe ratio (ties: the first).
        n_partitions: Blocks for the PBO (`probability_of_backtest_overfitting`).
        metric: What the PBO compares the variants by.
        periods_per_year: Bars in a year, for the annualised figures.

    Raises:
        ValueError: No variant without NaN returns, fewer than 2 rows, or a ``chosen``
            column that is out of range or holds NaN returns.
    """
    source = _source(returns)
    shape = source.shape
    if len(shape) != 2 or shape[0] < 2:
        raise ValueError(f"returns must be a bars x variants matrix of >= 2 bars, had {shape}")
    n_rows, n_columns = shape
    sharpes = np.full(n_columns, math.nan)
    skewness = np.full(n_columns, math.nan)
    kurtosis = np.full(n_columns, math.nan)
    try:
        s, block = _partitions(n_rows, n_partitions, metric)
        problem = ""
    except ValueError as error:
        s, block, problem = 0, 0, str(error)
    by_sums = not problem and not callable(metric)
    dropped = n_rows - block * s
    sums: list[dict[str, np.ndarray]] = []
    centres: list[np.ndarray] = []
    for start, stop in _column_chunks(n_columns, n_rows):
        part = source.columns(start, stop)
        known = ~np.isnan(part).any(axis=0)
        columns = np.arange(start, stop)[known]
        sharpes[columns], skewness[columns], kurtosis[columns] = _column_statistics(part[:, known])
        if by_sums:
            chunk_sums, centre = _block_sums(part[dropped:], s, block)
            sums.append(chunk_sums)
            centres.append(centre)
        del part
    valid = np.flatnonzero(~np.isnan(sharpes))
    if len(valid) == 0:
        raise ValueError(f"every one of the {n_columns} variants has NaN returns")
    if chosen is None:
        chosen = int(valid[_best(sharpes[np.newaxis, valid])[0]])
    elif not 0 <= chosen < n_columns or math.isnan(sharpes[chosen]):
        raise ValueError(f"chosen column {chosen} is not one of the variants with returns")
    variance = float(np.var(sharpes[valid], ddof=1)) if len(valid) > 1 else 0.0
    sr0 = expected_maximum_sharpe(len(valid), variance)
    variant_dsr = np.full(n_columns, math.nan)
    for column in valid:
        _, variant_dsr[column] = probabilistic_sharpe_ratio(
            float(sharpes[column]),
            sr0,
            n_obs=n_rows,
            skewness=float(skewness[column]),
            kurtosis=float(kurtosis[column]),
        )
    z, dsr = probabilistic_sharpe_ratio(
        float(sharpes[chosen]),
        sr0,
        n_obs=n_rows,
        skewness=float(skewness[chosen]),
        kurtosis=float(kurtosis[chosen]),
    )
    deflated = DeflatedSharpe(
        sharpe=float(sharpes[chosen]),
        sr0=sr0,
        n_trials=len(valid),
        trial_sharpe_variance=variance,
        n_obs=n_rows,
        skewness=float(skewness[chosen]),
        kurtosis=float(kurtosis[chosen]),
        z=z,
        dsr=dsr,
        periods_per_year=periods_per_year,
    )
    pbo: PBO | None = None
    if not problem:
        missing = np.isnan(sharpes)
        try:
            columns = _enough_columns(missing)
            if by_sums:
                assert isinstance(metric, str)
                joined = {k: np.concatenate([c[k] for c in sums], axis=1) for k in sums[0]}
                pbo = _pbo_from_sums(
                    {k: v[:, columns] for k, v in joined.items()},
                    np.concatenate(centres)[columns],
                    columns,
                    missing,
                    s,
                    block,
                    dropped,
                    metric,
                )
            else:
                whole = source.columns(0, n_columns)
                pbo = probability_of_backtest_overfitting(
                    whole, n_partitions=n_partitions, metric=metric
                )
        except ValueError as error:
            problem = str(error)
    return Overfitting(
        best=chosen,
        deflated=deflated,
        variant_dsr=variant_dsr,
        pbo=pbo,
        pbo_problem=problem,
    )


class _Matrix:
    """An array as a `ColumnSource`: slices of a float64 array, float32 ones converted."""

    def __init__(self, m: np.ndarray) -> None:
        self.m = m
        self.shape: tuple[int, int] = m.shape

    def columns(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.m[:, start:stop], dtype=np.float64)


def _source(returns: np.ndarray | ColumnSource) -> ColumnSource:
    if isinstance(returns, np.ndarray) or not hasattr(returns, "columns"):
        return _Matrix(np.asarray(returns))
    return returns


def _column_chunks(n_columns: int, n_rows: int) -> list[tuple[int, int]]:
    """Column ranges of about `_CHUNK_VALUES` values, none of one column (a single
    column's sums would be pairwise, its neighbours' sequential: other last bits)."""
    width = max(2, min(_COLUMN_CHUNK, _CHUNK_VALUES // max(1, n_rows)))
    bounds = [*range(0, n_columns, width), n_columns]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return list(pairwise(bounds))


def _annualise(value: float, periods_per_year: float | None) -> float | None:
    return None if periods_per_year is None else value * math.sqrt(periods_per_year)


def _column_statistics(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar Sharpe ratio (as `per_bar_sharpe`), skewness and kurtosis (the moment
    estimators) of each column, from one centring of the returns. Returns that do not
    vary get 0 and 3, the normal distribution's, harmless next to a Sharpe ratio of 0."""
    n = r.shape[0]
    mean = r.mean(axis=0)
    centred = r - mean
    squares = centred * centred
    m2 = squares.mean(axis=0)
    flat = m2 == 0.0
    safe = np.where(flat, 1.0, m2)
    sharpe = _ratio(mean, np.sqrt(m2 * n / (n - 1)))
    skewness = np.where(flat, 0.0, (squares * centred).mean(axis=0) / safe**1.5)
    kurtosis = np.where(flat, 3.0, (squares * squares).mean(axis=0) / safe**2)
    return sharpe, skewness, kurtosis


def _best(performance: np.ndarray) -> np.ndarray:
    """Per row, the column of the highest value: NaN never wins, ties go to the first."""
    filled = np.where(np.isnan(performance), -np.inf, performance)
    return np.asarray(np.argmax(filled, axis=1))


def _oos_ranks(performance: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Per row, the average rank (1 the worst) of the chosen column; NaN ranks lowest."""
    filled = np.where(np.isnan(performance), -np.inf, performance)
    value = filled[np.arange(len(chosen)), chosen][:, np.newaxis]
    below = (filled < value).sum(axis=1)
    tied = (filled == value).sum(axis=1)  # the chosen one included
    return np.asarray(below + (tied + 1) / 2.0)


_BLOCK_METRICS: tuple[str, ...] = ("sharpe", "sortino", "mean", "total_return")
_NEEDS = {
    "sharpe": ("sum", "squares"),
    "sortino": ("sum", "losses"),
    "mean": ("sum",),
    "total_return": ("log", "wiped"),
}


def _block_sums(m: np.ndarray, s: int, block: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-block sums of each column (``[s, columns]`` each) and each column's mean.

    Returns are centred on each column's mean before the squares are summed, so that the
    variance does not lose digits to cancellation.
    """
    centre = m.mean(axis=0)
    keys = ("sum", "squares", "losses", "log", "wiped")
    sums = {key: np.empty((s, m.shape[1])) for key in keys}
    for b in range(s):  # one block at a time: no copy of the whole matrix
        rows = m[b * block : (b + 1) * block]
        centred = rows - centre
        sums["sum"][b] = centred.sum(axis=0)
        sums["squares"][b] = (centred**2).sum(axis=0)
        sums["losses"][b] = (np.minimum(rows, 0.0) ** 2).sum(axis=0)
        # a bar losing everything makes the compounded return -1 whatever the rest did
        sums["log"][b] = np.log1p(np.where(rows > -1.0, rows, 0.0)).sum(axis=0)
        sums["wiped"][b] = (rows <= -1.0).sum(axis=0)
    return sums, centre


def _combination_performance(
    sums: dict[str, np.ndarray],
    centre: np.ndarray,
    s: int,
    block: int,
    halves: list[tuple[int, ...]],
    metric: str,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """In- and out-of-sample metric per combination and variant, a chunk of
    combinations at a time."""
    indicator = np.zeros((len(halves), s))
    for row, half in enumerate(halves):
        indicator[row, list(half)] = 1.0
    n = block * (s // 2)
    for start in range(0, len(halves), _COMBINATION_CHUNK):
        part = indicator[start : start + _COMBINATION_CHUNK]
        is_perf, oos_perf = (
            _from_sums({key: weights @ sums[key] for key in _NEEDS[metric]}, n, centre, metric)
            for weights in (part, 1.0 - part)
        )
        yield is_perf, oos_perf


def _from_sums(
    totals: dict[str, np.ndarray], n: int, centre: np.ndarray, metric: str
) -> np.ndarray:
    if metric == "total_return":
        with np.errstate(over="ignore"):
            return np.where(totals["wiped"] > 0.0, -1.0, np.expm1(totals["log"]))
    shifted = totals["sum"] / n
    mean = shifted + centre
    if metric == "mean":
        return np.asarray(mean)
    if metric == "sortino":
        # no losing bar: better than any variant that has one (+inf), 0 with no gain either
        downside = np.sqrt(totals["losses"] / n)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = mean / np.where(downside > 0.0, downside, 1.0)
        return np.where(downside > 0.0, ratio, np.where(mean > 0.0, math.inf, 0.0))
    variance = np.maximum(totals["squares"] - n * shifted**2, 0.0) / (n - 1)
    return _ratio(mean, np.sqrt(variance))


def _ratio(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Mean over standard deviation; 0 where the returns do not vary (a standard deviation
    within rounding of 0 next to the mean: constant returns leave ~1e-19, not 0)."""
    flat = std <= 1e-12 * np.abs(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flat, 0.0, mean / np.where(flat, 1.0, std))


def _callable_performance(
    m: np.ndarray,
    s: int,
    block: int,
    halves: list[tuple[int, ...]],
    metric: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    blocks = m.reshape(s, block, m.shape[1])
    is_perf = np.empty((len(halves), m.shape[1]))
    oos_perf = np.empty_like(is_perf)
    everything = set(range(s))
    for row, half in enumerate(halves):
        rest = sorted(everything.difference(half))
        is_perf[row] = np.asarray(metric(blocks[list(half)].reshape(-1, m.shape[1])), np.float64)
        oos_perf[row] = np.asarray(metric(blocks[rest].reshape(-1, m.shape[1])), np.float64)
    return is_perf, oos_perf
