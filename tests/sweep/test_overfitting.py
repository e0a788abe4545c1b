"""The deflated Sharpe ratio and the probability of backtest overfitting, against the
papers' worked example, cases worked by hand, and what must hold for any input."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from tradeloom.sweep.overfitting import (
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    overfitting_statistics,
    per_bar_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)

EULER = 0.5772156649015329


def test_the_papers_numerical_example() -> None:
    # Bailey and Lopez de Prado (2014), section "A numerical example": 100 independent
    # trials whose annualised Sharpe ratios have variance 1/2, the best annualised SR 2.5
    # on 5 years of daily returns (T = 1250, 250 a year), skewness -3, kurtosis 10. The
    # paper finds SR0 = 0.1132 per day (1.79 annualised) and DSR = 0.9004.
    per_year = 250
    sr = 2.5 / math.sqrt(per_year)
    variance = 0.5 / per_year
    sr0 = expected_maximum_sharpe(100, variance)
    z, dsr = probabilistic_sharpe_ratio(sr, sr0, n_obs=1250, skewness=-3.0, kurtosis=10.0)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert sr0 * math.sqrt(per_year) == pytest.approx(1.7894, abs=5e-5)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # the same, by hand with scipy: E[max] = (1-g) Z^-1(1-1/N) + g Z^-1(1-1/(Ne))
    by_hand = math.sqrt(variance) * (
        (1 - EULER) * stats.norm.ppf(0.99) + EULER * stats.norm.ppf(1 - 1 / (100 * math.e))
    )
    assert sr0 == pytest.approx(by_hand, rel=1e-12)
    denominator = math.sqrt(1 + 3.0 * sr + (10.0 - 1) / 4 * sr**2)
    assert z == pytest.approx((sr - by_hand) * math.sqrt(1249) / denominator, rel=1e-12)


def test_deflated_sharpe_ratio_of_returns_worked_by_hand() -> None:
    r = np.array([0.012, -0.004, 0.007, 0.021, -0.015, 0.003, 0.009, -0.002, 0.030, -0.011])
    result = deflated_sharpe_ratio(r, n_trials=20, trial_sharpe_variance=0.04, periods_per_year=365)
    sharpe = r.mean() / r.std(ddof=1)
    skew = stats.skew(r)  # the moment estimators (bias=True)
    kurt = stats.kurtosis(r, fisher=False)
    sr0 = 0.2 * (
        (1 - EULER) * stats.norm.ppf(1 - 1 / 20) + EULER * stats.norm.ppf(1 - 1 / (20 * math.e))
    )
    z = (sharpe - sr0) * 3.0 / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    assert result.sharpe == pytest.approx(sharpe, rel=1e-12)
    assert result.skewness == pytest.approx(skew, rel=1e-10)
    assert result.kurtosis == pytest.approx(kurt, rel=1e-10)
    assert result.sr0 == pytest.approx(sr0, rel=1e-12)
    assert result.z == pytest.approx(z, rel=1e-10)
    assert result.dsr == pytest.approx(stats.norm.cdf(z), rel=1e-10)
    assert (result.n_trials, result.n_obs, result.trial_sharpe_variance) == (20, 10, 0.04)
    assert result.sharpe_annualised == pytest.approx(sharpe * math.sqrt(365))
    assert result.sr0_annualised == pytest.approx(sr0 * math.sqrt(365))


def test_one_trial_is_the_probabilistic_sharpe_ratio() -> None:
    r = np.array([0.01, 0.02, -0.01, 0.005, 0.0, 0.015])
    result = deflated_sharpe_ratio(r, n_trials=1, trial_sharpe_variance=0.3)
    sharpe = r.mean() / r.std(ddof=1)
    skew, kurt = stats.skew(r), stats.kurtosis(r, fisher=False)
    psr = stats.norm.cdf(
        sharpe * math.sqrt(5) / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    )
    assert result.sr0 == 0.0
    assert result.dsr == pytest.approx(psr, rel=1e-12)
    assert result.sharpe_annualised is None


returns_strategy = st.lists(
    st.floats(-0.05, 0.05, allow_nan=False), min_size=3, max_size=60
).filter(lambda r: np.std(r) > 1e-6)


@given(returns_strategy, st.integers(1, 500), st.integers(1, 500), st.floats(1e-6, 0.1))
def test_more_trials_never_raise_the_deflated_sharpe_ratio(
    r: list[float], n1: int, n2: int, variance: float
) -> None:
    few, many = sorted((n1, n2))
    a = deflated_sharpe_ratio(r, n_trials=few, trial_sharpe_variance=variance)
    b = deflated_sharpe_ratio(r, n_trials=many, trial_sharpe_variance=variance)
    assert b.sr0 >= a.sr0
    assert b.dsr <= a.dsr


@given(
    st.lists(st.floats(1e-4, 0.05), min_size=2, max_size=30),
    st.floats(0.0, 0.01),
    st.floats(1e-5, 0.01),
    st.integers(1, 1000),
)
def test_a_higher_sharpe_ratio_never_lowers_the_deflated_one(
    deviations: list[float], mean: float, shift: float, n_trials: int
) -> None:
    # symmetric returns (mean +- x: skewness 0) with a non-negative mean; shifting them up
    # raises the Sharpe ratio and keeps the moments, and on this domain the DSR is
    # increasing in SR (d z / d SR has the sign of 1 + SR0 (kurt - 1) / 4 SR > 0)
    x = np.array(deviations)
    r = np.concatenate((mean + x, mean - x))
    low = deflated_sharpe_ratio(r, n_trials=n_trials, trial_sharpe_variance=0.01)
    high = deflated_sharpe_ratio(r + shift, n_trials=n_trials, trial_sharpe_variance=0.01)
    assert high.sharpe > low.sharpe
    assert high.dsr >= low.dsr


def test_deflated_sharpe_ratio_refuses_what_it_cannot_use() -> None:
    with pytest.raises(ValueError, match=r"^n_trials must be a whole number >= 1, was 0$"):
        deflated_sharpe_ratio([0.01, 0.02], n_trials=0, trial_sharpe_variance=0.1)
    with pytest.raises(
        ValueError, match=r"^trial_sharpe_variance must be finite and >= 0, was -1\.0$"
    ):
        deflated_sharpe_ratio([0.01, 0.02], n_trials=3, trial_sharpe_variance=-1.0)
    with pytest.raises(ValueError, match=r"^returns hold 1 NaN values$"):
        deflated_sharpe_ratio([0.01, math.nan, 0.0], n_trials=3, trial_sharpe_variance=0.1)
    with pytest.raises(
        ValueError, match=r"^returns must be a series of at least 2 bars, had shape \(1,\)$"
    ):
        deflated_sharpe_ratio([0.01], n_trials=3, trial_sharpe_variance=0.1)


def test_returns_that_do_not_vary_have_a_sharpe_ratio_of_zero() -> None:
    assert per_bar_sharpe(np.zeros(5)) == 0.0
    assert per_bar_sharpe(np.full(5, 0.001)) == 0.0  # np.std leaves ~1e-19 here, not 0
    flat = deflated_sharpe_ratio(np.zeros(5), n_trials=1, trial_sharpe_variance=0.0)
    assert (flat.sharpe, flat.dsr) == (0.0, 0.5)


def _blocks(means: list[list[float]]) -> np.ndarray:
    """A matrix whose block b of variant v holds two bars averaging means[v][b] (whole
    numbers: every mean is exact, so ties are ties)."""
    columns = []
    for row in means:
        columns.append(np.concatenate([[m - 1.0, m + 1.0] for m in row]))
    return np.column_stack(columns)


def test_pbo_of_two_partitions_worked_by_hand() -> None:
    # block means: A wins in-sample on block 0 and is last on block 1; C the other way
    m = _blocks([[2.0, -2.0], [1.0, 1.0], [-1.0, 3.0]])
    result = probability_of_backtest_overfitting(m, n_partitions=2, metric="mean")
    # IS block 0: A (2) wins, OOS block 1 ranks A 1st of 3 from the bottom: w = 1/4
    # IS block 1: C (3) wins, OOS block 0 ranks C 1st: w = 1/4
    assert result.n_combinations == 2
    assert result.chosen.tolist() == [0, 2]
    np.testing.assert_allclose(result.logits, [math.log(1 / 3)] * 2)
    assert result.in_sample.tolist() == [2.0, 3.0]
    assert result.out_of_sample.tolist() == [-2.0, -1.0]
    assert result.probability == 1.0
    assert result.probability_of_loss == 1.0


def test_pbo_of_four_partitions_with_ties_worked_by_hand() -> None:
    m = _blocks([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    result = probability_of_backtest_overfitting(m, n_partitions=4, metric="mean")
    # in-sample blocks -> IS means (A, B, C) -> chosen -> OOS means -> its average rank
    # (0,1) 1.5 3.5 2 -> B -> OOS (2,3): 3.5 1.5 2 -> B rank 1           w = 1/4
    # (0,2) 2   3   2 -> B -> OOS (1,3): 3   2   2 -> B ties C: rank 1.5  w = 3/8
    # (0,3) 2.5 2.5 2 -> A (tie, first) -> (1,2): 2.5 2.5 2 -> rank 2.5    w = 5/8
    # (1,2) 2.5 2.5 2 -> A -> (0,3): 2.5 2.5 2 -> rank 2.5                 w = 5/8
    # (1,3) 3   2   2 -> A -> (0,2): 2   3   2 -> A ties C: rank 1.5       w = 3/8
    # (2,3) 3.5 1.5 2 -> A -> (0,1): 1.5 3.5 2 -> rank 1                   w = 1/4
    w = np.array([1 / 4, 3 / 8, 5 / 8, 5 / 8, 3 / 8, 1 / 4])
    assert result.chosen.tolist() == [1, 1, 0, 0, 0, 0]
    np.testing.assert_allclose(result.logits, np.log(w / (1 - w)), rtol=1e-12)
    assert result.probability == pytest.approx(4 / 6)
    # a metric passed as a function goes the slow way and agrees
    slow = probability_of_backtest_overfitting(m, n_partitions=4, metric=lambda a: a.mean(axis=0))
    np.testing.assert_allclose(slow.logits, result.logits, rtol=1e-12)
    assert slow.chosen.tolist() == result.chosen.tolist()


def test_pbo_sharpe_from_block_sums_matches_the_rows() -> None:
    rng = np.random.default_rng(7)
    m = rng.normal(0.0005, 0.01, size=(120, 9)) + rng.normal(0, 0.002, size=9)
    fast = probability_of_backtest_overfitting(m, n_partitions=6)
    slow = probability_of_backtest_overfitting(m, n_partitions=6, metric=per_bar_sharpe)
    np.testing.assert_allclose(fast.in_sample, slow.in_sample, rtol=1e-9)
    np.testing.assert_allclose(fast.out_of_sample, slow.out_of_sample, rtol=1e-9)
    np.testing.assert_array_equal(fast.logits, slow.logits)
    assert fast.n_combinations == math.comb(6, 3) == len(list(combinations(range(6), 3)))
    assert (fast.metric, slow.metric) == ("sharpe", "per_bar_sharpe")


@pytest.mark.parametrize("metric", ["sharpe", "sortino", "mean", "total_return"])
def test_a_variant_better_at_every_bar_is_never_overfit(metric: str) -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 0.01, size=(200, 7))
    best = noise.max(axis=1) + 0.002
    m = np.column_stack((noise[:, :3], best, noise[:, 3:]))
    if metric in ("sharpe", "sortino"):  # better at every bar is not a better ratio: a drift is
        m[:, 3] = noise[:, 0] + 0.05
    result = probability_of_backtest_overfitting(m, n_partitions=8, metric=metric)
    assert (result.chosen == 3).all()
    np.testing.assert_allclose(result.logits, math.log(8 / 1))  # w = 8/9 of 8 variants
    assert result.probability == 0.0


def test_pure_noise_is_overfit_half_the_time() -> None:
    # Under pure noise the chosen variant's out-of-sample rank is uniform on 1..N (the
    # out-of-sample rows are independent of the choice and the variants exchangeable), so
    # each logit is <= 0 with probability exactly 1/2 for N even (rank <= N/2), and
    # E[PBO] = 1/2. The PBO of K independent matrices lies in [0, 1]; by Hoeffding their
    # mean is off 1/2 by 0.05 or more with probability <= 2 exp(-2 K 0.05^2) = 4.5e-5 for
    # K = 2000. A reversed rank, or an out-of-sample rank taken in-sample, gives 0 or 1.
    rng = np.random.default_rng(20141)
    values = [
        probability_of_backtest_overfitting(
            rng.normal(0.0, 0.01, size=(32, 10)), n_partitions=4
        ).probability
        for _ in range(2000)
    ]
    assert np.mean(values) == pytest.approx(0.5, abs=0.05)


def test_pbo_leaves_out_variants_with_nan_and_counts_them() -> None:
    rng = np.random.default_rng(11)
    m = rng.normal(0.0, 0.01, size=(64, 6))
    holed = m.copy()
    holed[5, 1] = math.nan
    holed[:, 4] = math.nan
    result = probability_of_backtest_overfitting(holed, n_partitions=4)
    clean = probability_of_backtest_overfitting(m[:, [0, 2, 3, 5]], n_partitions=4)
    assert result.excluded == (1, 4)
    assert result.n_variants == 4
    np.testing.assert_array_equal(result.logits, clean.logits)
    assert result.chosen.tolist() == [[0, 2, 3, 5][c] for c in clean.chosen]


def test_pbo_leaves_out_the_oldest_rows_that_do_not_fill_a_block() -> None:
    rng = np.random.default_rng(5)
    m = rng.normal(0.0, 0.01, size=(43, 5))
    result = probability_of_backtest_overfitting(m, n_partitions=4)
    assert (result.rows_used, result.rows_dropped) == (40, 3)
    np.testing.assert_array_equal(
        result.logits, probability_of_backtest_overfitting(m[3:], n_partitions=4).logits
    )


def test_pbo_refuses_what_it_cannot_use() -> None:
    m = np.zeros((40, 3))
    with pytest.raises(ValueError, match=r"^n_partitions must be even and at least 2, was 5$"):
        probability_of_backtest_overfitting(m, n_partitions=5)
    with pytest.raises(ValueError, match=r"^n_partitions must be even and at least 2, was 0$"):
        probability_of_backtest_overfitting(m, n_partitions=0)
    with pytest.raises(
        ValueError,
        match=r"^40 bars cannot be cut into 32 partitions of at least 2 bars: "
        r"need at least 64 bars, or fewer partitions$",
    ):
        probability_of_backtest_overfitting(m, n_partitions=32)
    m[0, 1:] = math.nan
    with pytest.raises(
        ValueError,
        match=r"^at least 2 variants without NaN returns are needed, had 1 \(2 left out for NaN\)$",
    ):
        probability_of_backtest_overfitting(m, n_partitions=4)
    with pytest.raises(
        ValueError,
        match=r"^metric must be one of sharpe, sortino, mean, total_return or a function, "
        r"was 'calmar'$",
    ):
        probability_of_backtest_overfitting(np.zeros((40, 3)), metric="calmar")  # type: ignore[arg-type]


def test_overfitting_statistics_of_a_sweep() -> None:
    rng = np.random.default_rng(1)
    m = rng.normal(0.0, 0.01, size=(400, 12))
    m[:, 7] += 0.004
    m[3, 2] = math.nan
    result = overfitting_statistics(m, n_partitions=8, periods_per_year=365)
    valid = [c for c in range(12) if c != 2]
    sharpes = [m[:, c].mean() / m[:, c].std(ddof=1) for c in valid]
    assert result.best == 7
    assert result.deflated.n_trials == 11
    assert result.deflated.trial_sharpe_variance == pytest.approx(np.var(sharpes, ddof=1))
    assert result.deflated.periods_per_year == 365
    assert math.isnan(result.variant_dsr[2])
    assert result.variant_dsr[7] == result.deflated.dsr == np.nanmax(result.variant_dsr)
    assert result.pbo is not None and result.pbo.excluded == (2,)
    short = overfitting_statistics(m[:20], n_partitions=16)
    assert short.pbo is None
    assert short.pbo_problem == (
        "20 bars cannot be cut into 16 partitions of at least 2 bars: "
        "need at least 32 bars, or fewer partitions"
    )


def test_overfitting_statistics_of_the_variant_the_sweep_chose() -> None:
    rng = np.random.default_rng(2)
    m = rng.normal(0.0, 0.01, size=(50, 300))  # more columns than one chunk of the loop
    m[:, 280] = math.nan
    result = overfitting_statistics(m, chosen=270, n_partitions=4, periods_per_year=365)
    valid = [c for c in range(300) if c != 280]
    variance = float(np.var([m[:, c].mean() / m[:, c].std(ddof=1) for c in valid], ddof=1))
    for column in (0, 255, 256, 270, 299):
        alone = deflated_sharpe_ratio(m[:, column], n_trials=299, trial_sharpe_variance=variance)
        assert result.variant_dsr[column] == pytest.approx(alone.dsr, rel=1e-9)
    assert result.best == 270
    expected = deflated_sharpe_ratio(
        m[:, 270], n_trials=299, trial_sharpe_variance=variance, periods_per_year=365
    )
    assert result.deflated.dsr == pytest.approx(expected.dsr, rel=1e-9)
    assert result.deflated.sharpe == pytest.approx(expected.sharpe, rel=1e-12)
    with pytest.raises(
        ValueError, match=r"^chosen column 280 is not one of the variants with returns$"
    ):
        overfitting_statistics(m, chosen=280)


def test_a_bar_that_loses_everything_makes_the_total_return_minus_one() -> None:
    m = np.full((8, 3), 0.01)
    m[:, 1] = 0.02
    m[0, 1] = -1.0  # the best variant otherwise, wiped out in block 0
    m[:, 2] = np.r_[0.0, 0.03, 0.0, 0.03, 0.0, 0.0, 0.0, 0.0]
    result = probability_of_backtest_overfitting(m, n_partitions=2, metric="total_return")
    # IS block 0 (bars 0-3): 1 is wiped (-1), 2 makes 1.03^2 - 1 = 6.09% > 1.01^4 - 1 -> 2
    # IS block 1 (bars 4-7): 1 makes 1.02^4 - 1, the best -> 1; OOS block 0: 1 is -1, last
    assert result.chosen.tolist() == [2, 1]
    np.testing.assert_allclose(result.in_sample, [1.03**2 - 1, 1.02**4 - 1])
    np.testing.assert_allclose(result.out_of_sample, [0.0, -1.0], atol=1e-15)
    np.testing.assert_allclose(result.logits, [math.log(1 / 3), math.log(1 / 3)])


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([2, 4, 6]),
    st.integers(2, 12),
    st.integers(0, 5),
)
def test_pbo_holds_for_any_matrix(seed: int, s: int, n: int, extra_rows: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, 0.01, size=(2 * s + extra_rows, n)) + rng.normal(0.0, 0.005, size=n)
    result = probability_of_backtest_overfitting(m, n_partitions=s)
    assert result.n_combinations == len(result.logits) == math.comb(s, s // 2)
    assert 0.0 <= result.probability <= 1.0
    # the rank is 1..N: the logit lies between ln(1/N) and ln(N)
    assert (result.logits >= math.log(1 / n) - 1e-12).all()
    assert (result.logits <= math.log(n) + 1e-12).all()
    assert result.probability == np.mean(result.logits <= 0)
    # the variants' order does not matter (no ties in continuous returns)
    order = rng.permutation(n)
    shuffled = probability_of_backtest_overfitting(m[:, order], n_partitions=s)
    np.testing.assert_allclose(shuffled.logits, result.logits, rtol=1e-12)
    assert order[shuffled.chosen].tolist() == result.chosen.tolist()
    # CSCV is symmetric: combination i and its complement swap in- and out-of-sample
    mirrored = result.in_sample[::-1]
    chosen_back = result.chosen[::-1]
    same = chosen_back == result.chosen
    np.testing.assert_allclose(result.out_of_sample[same], mirrored[same], rtol=1e-9)
