"""Walk-forward fold planning (purging) and direction labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.plugins.model import Fold, direction_labels, plan_folds


def _reference_first_start(valid: list[bool], horizon: int, min_rows: int) -> int | None:
    # Brute force: the first bar s with at least min_rows valid rows i, i + horizon < s.
    for s in range(len(valid)):
        if sum(valid[: max(s - horizon, 0)]) >= min_rows:
            return s
    return None


@st.composite
def _plans(draw: st.DrawFn) -> tuple[list[bool], int, int, int, int]:
    n = draw(st.integers(0, 120))
    mode = draw(st.sampled_from(["random", "all", "none"]))
    valid = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    valid = [True] * n if mode == "all" else [False] * n if mode == "none" else valid
    horizon = draw(st.integers(1, 12))
    train_window = draw(st.integers(1, 40))
    retrain_every = draw(st.integers(1, 30))
    min_rows = draw(st.integers(1, 50))
    return valid, horizon, train_window, retrain_every, min_rows


@settings(max_examples=400, deadline=None)
@given(_plans())
def test_plan_folds_properties(plan: tuple[list[bool], int, int, int, int]) -> None:
    valid, horizon, train_window, retrain_every, min_rows = plan
    n = len(valid)
    folds = plan_folds(
        n, np.array(valid, dtype=bool), horizon, train_window, retrain_every, min_rows
    )

    first = _reference_first_start(valid, horizon, min_rows)
    if first is None:
        assert folds == []
        return
    # First fold at the earliest possible bar; segments contiguous, in order, to the end.
    assert folds[0].predict_start == first
    assert folds[-1].predict_end == n - 1
    for k, fold in enumerate(folds):
        assert fold.index == k
        assert fold.predict_start <= fold.predict_end
        assert fold.predict_end - fold.predict_start + 1 <= retrain_every
        if k + 1 < len(folds):
            assert fold.predict_end - fold.predict_start + 1 == retrain_every
            assert folds[k + 1].predict_start == fold.predict_end + 1

    for fold in folds:
        s = fold.predict_start
        rows = fold.training_rows(valid)
        eligible = [i for i in range(n) if valid[i] and i + horizon < s]
        # Purging: every training row's label horizon ends strictly before s.
        assert all(i + horizon < s for i in rows)
        assert fold.train_end + horizon < s
        # The last train_window eligible rows, exactly, and only valid ones.
        assert list(rows) == eligible[-train_window:]
        assert fold.rows == len(rows) == min(train_window, len(eligible))
        assert fold.rows >= min(min_rows, train_window)
        assert rows[0] == fold.train_start and rows[-1] == fold.train_end


def test_plan_folds_boundary_row_is_used_and_next_is_purged() -> None:
    # All rows valid, horizon 3: the fold predicting from s trains up to s - 4, not s - 3.
    folds = plan_folds(100, np.ones(100, dtype=bool), 3, 20, 10, 20)
    assert folds[0] == Fold(
        index=0, train_start=0, train_end=19, predict_start=23, predict_end=32, rows=20
    )
    for fold in folds:
        assert fold.train_end == fold.predict_start - 3 - 1
        assert fold.train_start == fold.train_end - 19


def test_plan_folds_min_train_rows_below_window_starts_early_and_expands() -> None:
    folds = plan_folds(60, np.ones(60, dtype=bool), 1, 30, 5, 10)
    assert [(f.predict_start, f.rows) for f in folds[:4]] == [
        (11, 10),
        (16, 15),
        (21, 20),
        (26, 25),
    ]
    assert folds[-1].rows == 30


def test_plan_folds_skips_invalid_rows_in_the_window() -> None:
    valid = np.ones(40, dtype=bool)
    valid[[2, 5, 9]] = False
    folds = plan_folds(40, valid, 2, 10, 100, 10)
    (fold,) = folds
    # The 10th valid row is row 12, so the first bar that may use it is 12 + 2 + 1.
    assert (fold.predict_start, fold.predict_end) == (15, 39)
    assert list(fold.training_rows(valid)) == [0, 1, 3, 4, 6, 7, 8, 10, 11, 12]


def test_plan_folds_no_fold_when_too_few_rows() -> None:
    assert plan_folds(30, np.ones(30, dtype=bool), 1, 30, 5, 30) == []
    assert plan_folds(31, np.ones(31, dtype=bool), 1, 30, 5, 30) == []
    assert len(plan_folds(32, np.ones(32, dtype=bool), 1, 30, 5, 30)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 0}, "horizon must be >= 1, was 0"),
        ({"train_window": 0}, "train_window must be >= 1, was 0"),
        ({"retrain_every": 0}, "retrain_every must be >= 1, was 0"),
        ({"min_train_rows": 0}, "min_train_rows must be >= 1, was 0"),
        ({"valid_mask": np.ones(9, dtype=bool)}, r"valid_mask must have shape \(10,\), has \(9,\)"),
    ],
)
def test_plan_folds_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "n_bars": 10,
        "valid_mask": np.ones(10, dtype=bool),
        "horizon": 1,
        "train_window": 5,
        "retrain_every": 2,
        "min_train_rows": 5,
    }
    with pytest.raises(ValueError, match=rf"^{message}$"):
        plan_folds(**{**args, **kwargs})  # type: ignore[arg-type]


def test_direction_labels() -> None:
    close = np.array([1.0, 2.0, 2.0, 1.0, 3.0, np.nan, 4.0])
    np.testing.assert_array_equal(
        direction_labels(close, 1), [1.0, 0.0, 0.0, 1.0, np.nan, np.nan, np.nan]
    )
    np.testing.assert_array_equal(
        direction_labels(close, 2), [1.0, 0.0, 1.0, np.nan, 1.0, np.nan, np.nan]
    )
    assert np.isnan(direction_labels(close[:2], 2)).all()
    with pytest.raises(ValueError, match=r"^horizon must be >= 1, was 0$"):
        direction_labels(close, 0)


@given(st.lists(st.floats(1.0, 1e6), min_size=0, max_size=50), st.integers(1, 10))
def test_direction_labels_match_definition(close: list[float], horizon: int) -> None:
    labels = direction_labels(close, horizon)
    for i, label in enumerate(labels):
        if i + horizon < len(close):
            assert label == (1.0 if close[i + horizon] > close[i] else 0.0)
        else:
            assert np.isnan(label)
