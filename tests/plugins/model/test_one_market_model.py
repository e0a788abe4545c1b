"""A model of the single-market form (``fit_predict(bars, features)``) still runs, warned.

The model layer is written over symbols (`Model.fit_predict_universe`: one market is the
universe of one). A third-party model written before keeps working for at least one minor
release: it is driven through `ModelOverSymbols` (the universe of one as it always was; a
fresh copy per symbol of a universe) and warns with a `TradeloomDeprecationWarning`
through `tradeloom._deprecated` (CHANGELOG.md's Deprecated). The plugin is kept as it was
written in ``tests/fixtures/plugins/one_market_model.py``.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.builders import BASE, strategy_text
from tests.old_forms import FIXTURES, run_cli, without_run_ids
from tradeloom._deprecated import TradeloomDeprecationWarning
from tradeloom.domain import Universe
from tradeloom.engine.features import compute_features
from tradeloom.engine.wiring import build_pipeline
from tradeloom.live.tick.provides import provides
from tradeloom.plugins.protocols import LiveModel, LiveTrainer, Model, PerSymbolModels
from tradeloom.plugins.protocols_symbols import LiveTrainerOverSymbols, ModelOverSymbols
from tradeloom.schemas import load_strategy

WARNING = (
    "model kind 'one_market_rf' of plugin 'one_market_model': a model of one market "
    "(fit_predict(bars, features) -> ModelOutput) is deprecated since tradeloom 0.1 and will "
    "be removed in tradeloom 0.2; use fit_predict_universe(universe, features) -> "
    "tuple[ModelOutput, ...], one market being the universe of one"
)


@pytest.fixture
def one_market_model(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.syspath_prepend(str(FIXTURES))
    import one_market_model

    return one_market_model


def _built(tmp_path: Path, kind: str, symbols: list[str]) -> tuple[object, Universe, list]:
    """Build the strategy's model of ``kind`` over ``symbols``; return it, the universe and
    each symbol's features."""
    data = {key: value for key, value in BASE["data"].items() if key != "symbol"}
    path = tmp_path / f"{kind}.yaml"
    text = strategy_text(
        plugins=["one_market_model"],
        data={**data, "symbols": symbols},
        model={**BASE["model"], "kind": kind},
    )
    path.write_text(text, encoding="utf-8")
    config, _ = load_strategy(path)
    pipeline = build_pipeline(config)
    universe = pipeline.data.load_universe()
    features = [compute_features(pipeline, bars) for bars in universe.bars]
    return pipeline.model, universe, features


def test_the_single_market_form_is_adapted_with_a_warning(
    one_market_model: object, tmp_path: Path
) -> None:
    with pytest.warns(TradeloomDeprecationWarning) as caught:
        adapted, universe, features = _built(tmp_path, "one_market_rf", ["BTC/USDT"])
    built_in, _, _ = _built(tmp_path, "sklearn", ["BTC/USDT"])

    assert {str(w.message) for w in caught} == {WARNING}
    assert isinstance(adapted, ModelOverSymbols) and isinstance(adapted, Model)
    assert isinstance(adapted.model, one_market_model.OneMarketRF)  # type: ignore[attr-defined]
    assert not isinstance(adapted.model, Model)
    # what it can do besides training is its own
    assert isinstance(adapted, LiveModel) and adapted.horizon == 2
    (output,) = adapted.fit_predict_universe(universe, features)
    (expected,) = built_in.fit_predict_universe(universe, features)  # type: ignore[attr-defined]
    pd.testing.assert_series_equal(output.probability, expected.probability, check_exact=True)
    assert output.trainings == expected.trainings
    assert isinstance(adapted, PerSymbolModels) and adapted.per_symbol == {}
    assert pickle.loads(pickle.dumps(adapted)).horizon == 2


def test_over_a_universe_each_symbol_trains_its_own_copy(
    one_market_model: object, tmp_path: Path
) -> None:
    symbols = ["BTC/USDT", "ETH/USDT"]
    with pytest.warns(TradeloomDeprecationWarning):
        adapted, universe, features = _built(tmp_path, "one_market_rf", symbols)
    fresh = copy.deepcopy(adapted.model)  # type: ignore[attr-defined]

    outputs = adapted.fit_predict_universe(universe, features)  # type: ignore[attr-defined]

    assert sorted(adapted.per_symbol) == symbols  # type: ignore[attr-defined]
    for bars, frame, output in zip(universe.bars, features, outputs, strict=True):
        alone = copy.deepcopy(fresh).fit_predict(bars, frame).probability
        on_clock = output.probability.reindex(bars.frame.index)
        np.testing.assert_array_equal(on_clock.to_numpy(), alone.to_numpy())
        assert output.probability.index.equals(universe.index)


def _run(folder: Path, kind: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        folder,
        kind,
        strategy_text(plugins=["one_market_model"], model={**BASE["model"], "kind": kind}),
    )


def test_a_single_market_model_runs_through_the_cli_with_a_deprecation(tmp_path: Path) -> None:
    old = _run(tmp_path, "one_market_rf")
    new = _run(tmp_path, "sklearn")

    assert old.returncode == 0, old.stderr
    assert new.returncode == 0, new.stderr
    assert f"TradeloomDeprecationWarning: {WARNING}" in old.stderr
    assert "DeprecationWarning" not in new.stderr
    # the built-in model through the adapter and as itself: the same run
    for name in ("equity.csv", "orders.csv", "fills.csv", "trades.csv", "positions.csv"):
        # an order's id starts with the run's (a hash of its file: the kinds differ)
        one, built_in = (
            without_run_ids((tmp_path / kind / name).read_text())
            for kind in ("one_market_rf", "sklearn")
        )
        assert one == built_in, name


TRAINER_WARNING = (
    "model kind 'universe_rf' of plugin 'one_market_model': a live trainer of one market "
    "(train_next(bars, features), scheduled_start(bars, features)) is deprecated since "
    "tradeloom 0.1 and will be removed in tradeloom 0.2; use "
    "train_next_universe(universe, features) and scheduled_start_universe(universe, "
    "features), one market being the universe of one"
)


def test_a_model_over_symbols_with_a_single_market_trainer_trains_live_warned(
    one_market_model: object, tmp_path: Path
) -> None:
    with pytest.warns(TradeloomDeprecationWarning) as caught:
        adapted, universe, features = _built(tmp_path, "universe_rf", ["BTC/USDT"])
    built_in, _, _ = _built(tmp_path, "sklearn", ["BTC/USDT"])

    assert [str(w.message) for w in caught] == [TRAINER_WARNING]
    assert isinstance(adapted, LiveTrainerOverSymbols)
    assert isinstance(adapted.model, one_market_model.UniverseRF)  # type: ignore[attr-defined]
    assert not isinstance(adapted.model, LiveTrainer)
    assert isinstance(adapted, LiveTrainer) and provides(adapted, LiveTrainer)
    assert not adapted.pooled and adapted.retrain_every == built_in.retrain_every  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(adapted)).horizon == 2  # a process pool's copy
    assert isinstance(copy.deepcopy(adapted), LiveTrainerOverSymbols)  # a symbol's copy
    # it trains as a model by its own call, and live as the universe of one
    (output,) = adapted.fit_predict_universe(universe, features)  # type: ignore[attr-defined]
    (expected,) = built_in.fit_predict_universe(universe, features)  # type: ignore[attr-defined]
    pd.testing.assert_series_equal(output.probability, expected.probability, check_exact=True)
    assert adapted.scheduled_start_universe(
        universe, features
    ) == built_in.scheduled_start_universe(universe, features)  # type: ignore[attr-defined]
    trained = adapted.train_next_universe(universe, features, in_effect=True)
    assert trained is not None
    assert trained == built_in.train_next_universe(universe, features, in_effect=True)  # type: ignore[attr-defined]
