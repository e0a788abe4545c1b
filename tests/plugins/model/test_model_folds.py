"""Walk-forward fold planning (purging, embargo) and the purging check."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.plugins.features.returns import log_return
from tradeloom.plugins.features.rsi import rsi
from tradeloom.plugins.model import Fold, plan_folds
from tradeloom.plugins.model.folds import PurgingError, check_purging
from tradeloom.plugins.model.labels import make_labels


def _reference_first_start(valid: list[bool], gap: int, min_rows: int) -> int | None:
    # Brute force: the first bar s with at least min_rows valid rows i, i + gap < s.
    for s in range(len(valid)):
        if sum(valid[: max(s - gap, 0)]) >= min_rows:
            return s
    return None


@st.composite
def _plans(draw: st.DrawFn) -> tuple[list[bool], int, int, int, int, int]:
    n = draw(st.integers(0, 120))
    mode = draw(st.sampled_from(["random", "all", "none"]))
    valid = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    valid = [True] * n if mode == "all" else [False] * n if mode == "none" else valid
    horizon = draw(st.integers(1, 12))
    train_window = draw(st.integers(1, 40))
    retrain_every = draw(st.integers(1, 30))
    min_rows = draw(st.integers(1, 50))
    embargo = draw(st.sampled_from([0, 0, 1, 2, 5, 13]))
    return valid, horizon, train_window, retrain_every, min_rows, embargo


@settings(max_examples=examples(400), deadline=None)
@given(_plans())
def test_plan_folds_properties(plan: tuple[list[bool], int, int, int, int, int]) -> None:
    valid, horizon, train_window, retrain_every, min_rows, embargo = plan
    n = len(valid)
    gap = horizon + embargo
    folds = plan_folds(
        n, np.array(valid, dtype=bool), horizon, train_window, retrain_every, min_rows, embargo
    )
    assert folds == plan_folds(  # pure: the same plan again, from a list as from an array
        n, valid, horizon, train_window, retrain_every, min_rows, embargo
    )

    first = _reference_first_start(valid, gap, min_rows)
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

    # The segments tile [first, n - 1]: every bar there is predicted by exactly one fold.
    predicted = np.concatenate([np.arange(f.predict_start, f.predict_end + 1) for f in folds])
    np.testing.assert_array_equal(predicted, np.arange(first, n))

    for fold in folds:
        s = fold.predict_start
        rows = fold.training_rows(valid)
        eligible = [i for i in range(n) if valid[i] and i + gap < s]
        # Purging and embargo: every training row's label horizon ends strictly before
        # s, with embargo bars to spare.
        assert all(i + horizon + embargo < s for i in rows)
        assert fold.train_end + horizon + embargo < s
        # The last train_window eligible rows, exactly, and only valid ones.
        assert list(rows) == eligible[-train_window:]
        assert fold.rows == len(rows) == min(train_window, len(eligible))
        assert fold.rows >= min(min_rows, train_window)
        assert rows[0] == fold.train_start and rows[-1] == fold.train_end
        # Training windows move forward with the segments.
        if fold.index:
            before = folds[fold.index - 1]
            assert before.train_end <= fold.train_end and before.train_start <= fold.train_start

    # The planner's own guarantee, through the reusable check, with and without embargo.
    check_purging(folds, valid, np.arange(n) + horizon + embargo)


def test_plan_folds_boundary_row_is_used_and_next_is_purged() -> None:
    # All rows valid, horizon 3: the fold predicting from s trains up to s - 4, not s - 3.
    folds = plan_folds(100, np.ones(100, dtype=bool), 3, 20, 10, 20)
    assert folds[0] == Fold(
        index=0, train_start=0, train_end=19, predict_start=23, predict_end=32, rows=20
    )
    for fold in folds:
        assert fold.train_end == fold.predict_start - 3 - 1
        assert fold.train_start == fold.train_end - 19


def test_plan_folds_embargo_drops_rows_before_the_purged_ones() -> None:
    # Horizon 3, embargo 5: the fold predicting from s trains up to s - 9.
    folds = plan_folds(100, np.ones(100, dtype=bool), 3, 20, 10, 20, embargo=5)
    assert folds[0] == Fold(
        index=0, train_start=0, train_end=19, predict_start=28, predict_end=37, rows=20
    )
    for fold in folds:
        assert fold.train_end == fold.predict_start - 3 - 5 - 1
    # An embargo plans like a longer purge: the same folds as horizon 8 without one.
    assert folds == plan_folds(100, np.ones(100, dtype=bool), 8, 20, 10, 20)


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
        ({"embargo": -1}, "embargo must be >= 0, was -1"),
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


# --- the purging check ---------------------------------------------------------------


def _fold(train_start: int, train_end: int, predict_start: int, predict_end: int) -> Fold:
    rows = train_end - train_start + 1
    return Fold(0, train_start, train_end, predict_start, predict_end, rows)


def test_check_purging_messages() -> None:
    valid = np.ones(30, dtype=bool)
    label = np.arange(30) + 2
    check_purging([_fold(0, 9, 12, 20)], valid, label)
    with pytest.raises(
        PurgingError,
        match=r"^look-ahead in walk-forward training: fold 0 trains on row 10 whose label "
        r"reaches bar 12, not before its first predicted bar 12$",
    ):
        check_purging([_fold(0, 10, 12, 20)], valid, label)
    feature = np.arange(30.0)
    feature[5] = 12
    with pytest.raises(
        PurgingError,
        match=r"^look-ahead in walk-forward training: fold 0 trains on row 5 whose features "
        r"reach bar 12, not before its first predicted bar 12$",
    ):
        check_purging([_fold(0, 9, 12, 20)], valid, label, feature)
    feature[5] = 5
    feature[15] = 16
    folds = [_fold(0, 9, 12, 20), Fold(1, 0, 1, 21, 29, 2), Fold(2, 0, 9, 10, 12, 10)]
    with pytest.raises(
        PurgingError,
        match=r"^look-ahead in walk-forward training: fold 0 predicts bar 15 from features "
        r"that reach bar 16, after the bar itself \(1 more folds leak\)$",
    ):
        check_purging(folds, valid, label, feature)
    # A row that is not valid is not trained on, whatever it reaches.
    valid[10] = False
    check_purging([_fold(0, 10, 12, 20)], valid, label)
    with pytest.raises(
        ValueError,
        match=r"^label_reach and feature_reach must have shape \(30,\), have "
        r"\(29,\) and \(30,\)$",
    ):
        check_purging([], valid, label[1:])


def _random_bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    spread = np.abs(rng.normal(0.0, 0.005, (2, n)))
    return close * (1 + spread[0]), close * (1 - spread[1]), close


def _measured_reach(compute: Callable[..., np.ndarray], bars: tuple[np.ndarray, ...]) -> np.ndarray:
    """The last bar each row's value depends on, found by changing one bar at a time.

    Each bar is moved far up and far down (all of high, low and close), which flips any
    label or feature that depends on it; a row's reach is the latest bar whose change moved
    it, or the row itself when none did.
    """
    base = compute(*bars)
    n = len(base)
    reach = np.arange(n, dtype=np.float64)
    for bar in range(n):
        for factor in (3.0, 1 / 3):
            moved = [a.copy() for a in bars]
            for a in moved:
                a[bar] *= factor
            changed = ~((compute(*moved) == base) | (np.isnan(compute(*moved)) & np.isnan(base)))
            reach[changed] = np.maximum(reach[changed], bar)
    return reach


LABELS: dict[str, Callable[[int], Callable[..., np.ndarray]]] = {
    "direction": lambda h: lambda hi, lo, c: make_labels(hi, lo, c, kind="direction", horizon=h),
    "triple_barrier": lambda h: (
        lambda hi, lo, c: make_labels(
            hi, lo, c, kind="triple_barrier", horizon=h, take_profit=0.04, stop_loss=0.04
        )
    ),
}
FEATURES: dict[str, Callable[..., np.ndarray]] = {
    "log_return": lambda hi, lo, c: log_return(c, 1),
    "rsi": lambda hi, lo, c: rsi(c, 5),
}


def _one_bar_later(compute: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def later(*arrays: np.ndarray) -> np.ndarray:  # row i gets the value of row i + 1
        return np.append(compute(*arrays)[1:], np.nan)

    return later


@pytest.mark.parametrize("leak", ["longer horizon", "shifted rows"])
@pytest.mark.parametrize("embargo", [0, 3])
@pytest.mark.parametrize("horizon", [1, 4])
@pytest.mark.parametrize("kind", list(LABELS))
def test_a_label_shifted_one_bar_into_the_future_is_caught(
    kind: str, horizon: int, embargo: int, leak: str
) -> None:
    bars = _random_bars(90, seed=horizon)
    label = LABELS[kind](horizon)
    labels = label(*bars)
    valid = ~np.isnan(labels)
    # Planned for `horizon` with the labels as they are: the measured reach passes...
    folds = plan_folds(90, valid, horizon, 20, 7, 20, embargo)
    assert len(folds) > 5
    reach = _measured_reach(label, bars)
    assert (reach[valid] <= np.flatnonzero(valid) + horizon).all()
    check_purging(folds, valid, reach)
    # ...and a label that looks one bar further than the plan was made for does not:
    # computed over horizon + 1 bars, or row i labelled as row i + 1.
    shifted = LABELS[kind](horizon + 1) if leak == "longer horizon" else _one_bar_later(label)
    valid = ~np.isnan(shifted(*bars))
    reach = _measured_reach(shifted, bars)
    if embargo:
        # An embargo is slack the purge does not rely on: with it the leak stays hidden,
        # without it the same labels are caught.
        check_purging(plan_folds(90, valid, horizon, 20, 7, 20, embargo), valid, reach)
    folds = plan_folds(90, valid, horizon, 20, 7, 20)
    with pytest.raises(PurgingError, match=r"^look-ahead in walk-forward training: fold 0 "):
        check_purging(folds, valid, reach)


@pytest.mark.parametrize("name", list(FEATURES))
def test_a_feature_shifted_one_bar_into_the_future_is_caught(name: str) -> None:
    bars = _random_bars(90, seed=1)
    feature = FEATURES[name]

    ahead = _one_bar_later(feature)
    labels = make_labels(*bars, kind="direction", horizon=2)
    label_reach = np.arange(90) + 2.0
    for compute, leaks in ((feature, False), (ahead, True)):
        valid = ~np.isnan(labels) & ~np.isnan(compute(*bars))
        folds = plan_folds(90, valid, 2, 20, 7, 20)
        assert len(folds) > 5
        reach = _measured_reach(compute, bars)
        if not leaks:
            check_purging(folds, valid, label_reach, reach)
            continue
        # Every fold predicts some bar from the next bar's value (only the very last bar,
        # whose next bar does not exist, is clean).
        leaking = [f for f in folds if f.predict_start < 89]
        assert len(leaking) >= len(folds) - 1
        with pytest.raises(
            PurgingError,
            match=rf"^look-ahead in walk-forward training: fold 0 predicts bar "
            rf"{folds[0].predict_start} from features that reach bar "
            rf"{folds[0].predict_start + 1}, after the bar itself \({len(leaking) - 1} more "
            r"folds leak\)$",
        ):
            check_purging(folds, valid, label_reach, reach)
