"""`tradeloom.stats.auc`: the ranks' AUC, the same number however it is computed."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from tests.hunting import examples
from tradeloom.stats import auc


def ranked_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Every score ranked (average ranks for ties): Mann-Whitney U."""
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    boundaries = np.flatnonzero(np.diff(ordered)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(scores)]))
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    n_pos = int(positive.sum())
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * (len(scores) - n_pos)))


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(-1e6, 1e6), st.booleans()),
        min_size=2,
        max_size=60,
    )
)
def test_auc_is_the_ranks_auc_to_the_bit(rows: list[tuple[float, bool]]) -> None:
    scores = np.array([s for s, _ in rows])
    positive = np.array([y for _, y in rows])
    if positive.all() or not positive.any():
        assert math.isnan(auc(scores, positive))
        return
    assert auc(scores, positive) == ranked_auc(scores, positive)
    assert math.isclose(auc(scores, positive), roc_auc_score(positive, scores), abs_tol=1e-12)


def test_auc_of_many_scores_is_the_ranks_auc_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    for scores in (rng.random(200_000), np.round(rng.random(200_000), 2)):
        positive = rng.random(len(scores)) < 0.4
        assert auc(scores, positive) == ranked_auc(scores, positive)
    with_nan = np.array([0.1, np.nan, 0.3, 0.2])  # NaN ranks last, as before
    labels = np.array([True, False, True, False])
    assert auc(with_nan, labels) == ranked_auc(with_nan, labels) == 0.25


def test_auc_of_a_few_levels_is_the_ranks_auc_to_the_bit() -> None:
    """Scores of a few levels (a precomputed column of 0, 0.5 and 1) are counted level by
    level; a level first met after the levels were guessed, a -0.0 beside 0.0 and more
    levels than are counted give the ranks' AUC all the same."""
    rng = np.random.default_rng(11)
    n = 50_000
    late = rng.choice([0.0, 0.5, 1.0], n)
    late[-3:] = [0.25, 0.75, 0.25]  # levels after the guessed ones
    signed = rng.choice([0.0, -0.0, 1.0], n)
    many = rng.choice(np.linspace(0.0, 1.0, 9), n)
    for scores in (rng.choice([0.0, 0.5, 1.0], n), late, signed, many, np.full(n, 0.5)):
        positive = rng.random(n) < 0.45
        assert auc(scores, positive) == ranked_auc(scores, positive)
