"""Models over a universe: pooled folds purged on the common clock, and models per symbol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.domain import Bars, Universe
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.model import SklearnParams, build_sklearn_model, plan_folds
from tradeloom.plugins.model.universe_fit import (
    SYMBOL_ID,
    PooledRows,
    plan_pooled_folds,
)

NEVER = np.iinfo(np.int64).max // 4


def _rows(present: np.ndarray, trainable: np.ndarray, horizon: int) -> PooledRows:
    """Stacked rows of ``present`` ([bars, symbols]); a label is known ``horizon`` of the
    symbol's own bars later."""
    bar, known, symbol = [], [], []
    for s in range(present.shape[1]):
        own = np.flatnonzero(present[:, s])
        ahead = np.arange(len(own)) + horizon
        reach = np.full(len(own), NEVER)
        reach[ahead < len(own)] = own[ahead[ahead < len(own)]]
        bar.append(own)
        known.append(reach)
        symbol.append(np.full(len(own), s))
    b, k, sym = (np.concatenate(a).astype(np.int64) for a in (bar, known, symbol))
    order = np.lexsort((sym, b))
    b, k, sym = b[order], k[order], sym[order]
    n = len(b)
    ok = trainable[b, sym] & (k < NEVER)
    return PooledRows(np.zeros((n, 1)), np.zeros(n), np.ones(n, bool), ok, b, k, sym, ("x",))


@st.composite
def _plans(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    n = draw(st.integers(5, 60))
    m = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    present = rng.random((n, m)) < draw(st.sampled_from([0.6, 0.9, 1.0]))
    trainable = rng.random((n, m)) < 0.9
    horizon = draw(st.integers(1, 4))
    window = draw(st.integers(1, 20))
    every = draw(st.integers(1, 10))
    least = draw(st.integers(1, window))
    embargo = draw(st.integers(0, 3))
    return present, trainable, (horizon, window, every, least, embargo)


@settings(max_examples=examples(300), deadline=None)
@given(plan=_plans())
def test_a_pooled_fold_trains_only_on_labels_known_before_it(
    plan: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
) -> None:
    present, trainable, (horizon, window, every, least, embargo) = plan
    n = len(present)
    rows = _rows(present, trainable, horizon)
    folds = plan_pooled_folds(rows, n, window, every, least, embargo)
    starts = [f.predict_start for f, _ in folds]
    if folds:  # contiguous segments up to the last bar
        assert starts == list(range(starts[0], n, every))
    for fold, kept in folds:
        assert rows.trainable[kept].all()
        # purged and embargoed on the clock: every label is known before the fold starts
        assert (rows.known[kept] + embargo < fold.predict_start).all()
        assert len(np.unique(rows.bar[kept])) <= window
        assert fold.rows == len(kept) and fold.predict_end == min(fold.predict_start + every, n) - 1
        # the newest known rows: none left out that is newer than one kept
        known = np.flatnonzero(rows.trainable & (rows.known + embargo < fold.predict_start))
        assert set(kept) == set(known[rows.bar[known] >= rows.bar[kept].min()])
        assert len(np.unique(rows.bar[known])) >= least


@settings(max_examples=examples(200), deadline=None)
@given(plan=_plans())
def test_pooled_folds_of_one_symbol_are_the_walk_forward_folds(
    plan: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
) -> None:
    present, trainable, (horizon, window, every, least, embargo) = plan
    n = len(present)
    one = np.ones((n, 1), bool)
    rows = _rows(one, trainable[:, :1], horizon)
    pooled = plan_pooled_folds(rows, n, window, every, least, embargo)
    valid = rows.trainable
    scheduled = plan_folds(n, valid, horizon, window, every, least, embargo)
    assert [f for f, _ in pooled] == scheduled
    for (_, kept), fold in zip(pooled, scheduled, strict=True):
        assert list(kept) == list(fold.training_rows(valid))


def _universe(n: int = 260) -> tuple[Universe, list[pd.DataFrame]]:
    rng = np.random.default_rng(5)
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    bars, features = [], []
    for s, (first, last) in enumerate([(0, n), (40, n), (0, n - 30)]):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        frame = pd.DataFrame(
            {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close},
            index=index,
        ).assign(volume=1.0)[first:last]
        bars.append(Bars(frame, f"S{s}/USDT", "1h", 3600))
        r = np.log(frame["close"]).diff()
        features.append(pd.DataFrame({"r1": r, "r2": r.shift(1)}, index=frame.index))
    return Universe(tuple(bars), index), features


def _model(pooling: str, symbol_id: bool = False):  # type: ignore[no-untyped-def]
    params = SklearnParams.model_validate(
        {
            "estimator": "sklearn.tree.DecisionTreeClassifier",
            "params": {"max_depth": 3},
            "label": {"horizon": 2},
            "walk_forward": {"train_window": 60, "retrain_every": 40},
            "pooling": pooling,
            "symbol_id": symbol_id,
        }
    )
    return build_sklearn_model(params, BuildContext("u", Path("."), 3))


def test_per_symbol_models_predict_what_each_symbol_alone_would() -> None:
    universe, features = _universe()
    model = _model("per_symbol")
    outputs = model.fit_predict_universe(universe, features)
    assert list(model.per_symbol) == list(universe.symbols)
    for s, (bars, frame) in enumerate(zip(universe.bars, features, strict=True)):
        alone = _model("per_symbol").fit_predict(bars, frame)
        on_clock = outputs[s].probability
        np.testing.assert_array_equal(
            on_clock.reindex(bars.frame.index).to_numpy(), alone.probability.to_numpy()
        )
        assert on_clock[~universe.index.isin(bars.frame.index)].isna().all()
        # its folds in clock bars: each starts at the clock bar of its own first bar
        starts = [
            universe.index.get_loc(bars.frame.index[t.predict_start]) for t in alone.trainings
        ]
        assert [t.predict_start for t in outputs[s].trainings] == starts
        assert len(model.per_symbol[bars.symbol].trained) > 0


def test_a_pooled_model_trains_on_every_symbol_with_its_id() -> None:
    universe, features = _universe()
    model = _model("pooled", symbol_id=True)
    outputs = model.fit_predict_universe(universe, features)
    present = universe.present()
    probability = np.stack([o.probability.to_numpy() for o in outputs], 1)
    assert np.isnan(probability[~present]).all()
    assert np.isfinite(probability[present]).sum() > 100
    trainings = outputs[0].trainings
    assert trainings and all(not o.trainings for o in outputs[1:])
    for fold in model.trained:
        assert fold.columns == ("r1", "r2", SYMBOL_ID)
        assert fold.training.train_end + 2 < fold.training.predict_start  # purged on the clock
    # rows of every symbol: more than any one symbol's bars in the window
    assert max(t.rows for t in trainings) > 60
