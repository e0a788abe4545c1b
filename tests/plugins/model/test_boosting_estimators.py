"""LightGBM and XGBoost as walk-forward estimators: the keys ``model.params`` takes, the
defaults tradeloom gives them, their threads, and the message when the library is not
installed (`tradeloom.plugins.model.boosting_libraries`)."""

from __future__ import annotations

import importlib.abc
import json
import sys
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost

from tradeloom.cli.main import main
from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext, ParamError, ParamErrors
from tradeloom.plugins.model import SklearnParams, build_sklearn_model
from tradeloom.plugins.model.boosting_libraries import set_threads
from tradeloom.plugins.model.estimator_checks import check_estimator
from tradeloom.runtime.threads import openmp_threads

ROOT = Path(__file__).resolve().parents[3]


def _market(n: int, seed: int) -> tuple[Bars, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    returns = np.zeros(n)
    returns[1:] = 0.01 * (0.8 * signal[:-1] + rng.normal(size=n - 1))
    close = 100.0 * np.exp(np.cumsum(returns))
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    bars = Bars(frame=frame, symbol="TEST/USDT", timeframe="1h", timeframe_seconds=3600)
    return bars, pd.DataFrame({"signal": signal, "noise": rng.normal(size=n)}, index=index)


def test_a_fold_trains_on_the_openmp_threads_in_force_unless_the_strategy_sets_them() -> None:
    lgbm = lightgbm.LGBMClassifier(verbose=-1)
    set_threads(lgbm, 3)
    assert lgbm.get_params()["n_jobs"] == 3
    for chosen in (lightgbm.LGBMClassifier(n_jobs=2), lightgbm.LGBMClassifier(num_threads=2)):
        set_threads(chosen, 3)
        assert chosen.get_params()["n_jobs"] in (2, None)
        assert chosen.get_params().get("num_threads") in (2, None)
    xgb = xgboost.XGBClassifier()
    set_threads(xgb, 3)
    assert xgb.get_params()["n_jobs"] == 3
    document = SklearnParams.model_validate(
        {
            "estimator": "lightgbm.LGBMClassifier",
            "params": {"n_estimators": 5},
            "walk_forward": {"train_window": 250, "retrain_every": 200},
        }
    )
    model = build_sklearn_model(document, BuildContext("t", Path("."), seed=7))
    model.fit_predict(*_market(700, seed=3))
    assert model.fitted.booster_.params["num_threads"] == openmp_threads()  # type: ignore[union-attr]
    document = SklearnParams.model_validate(
        {
            "estimator": "xgboost.XGBClassifier",
            "params": {"n_estimators": 5},
            "walk_forward": {"train_window": 250, "retrain_every": 100, "n_jobs": 2},
        }
    )
    model = build_sklearn_model(document, BuildContext("t", Path("."), seed=7))
    model.fit_predict(*_market(700, seed=3))
    config = json.loads(model.fitted.get_booster().save_config())  # type: ignore[union-attr]
    assert config["learner"]["generic_param"]["nthread"] == "1"  # one per fold thread


# --- the checks of model.params --------------------------------------------------------------


def test_lightgbm_takes_its_own_parameter_names_and_gets_deterministic_defaults() -> None:
    checked, _ = check_estimator(
        "lightgbm.LGBMClassifier", {"min_data_in_leaf": 5, "feature_fraction": 0.8}, 3
    )
    assert checked.settings == {
        "min_data_in_leaf": 5,
        "feature_fraction": 0.8,
        "random_state": 3,
        "verbose": -1,
        "deterministic": True,
        "force_col_wise": True,
    }
    checked, _ = check_estimator(
        "lightgbm.LGBMClassifier", {"verbosity": 1, "force_row_wise": True}, 3
    )
    assert checked.settings == {
        "verbosity": 1,
        "force_row_wise": True,
        "random_state": 3,
        "deterministic": True,
    }
    checked, _ = check_estimator("xgboost.XGBClassifier", {"max_depth": 3}, 3)
    assert checked.settings == {"max_depth": 3, "random_state": 3}


@pytest.mark.parametrize(
    ("path", "params", "key", "message"),
    [
        (
            "lightgbm.LGBMClassifier",
            {"num_leafs": 5},
            "params.num_leafs",
            "unknown parameter of LGBMClassifier (did you mean 'num_leaf'?)",
        ),
        (
            "lightgbm.LGBMClassifier",
            {"num_boost_round": 20_000},
            "params.num_boost_round",
            "must be <= 10,000 for LGBMClassifier (the ceiling on the work of one fold), "
            "was 20,000",
        ),
        (
            "xgboost.XGBClassifier",
            {"max_dept": 3},
            "params.max_dept",
            "unknown parameter of XGBClassifier (did you mean 'max_depth'?)",
        ),
        (
            "xgboost.XGBClassifier",
            {"n_estimators": 50_000},
            "params.n_estimators",
            "must be <= 10,000 for XGBClassifier (the ceiling on the work of one fold), was 50,000",
        ),
    ],
)
def test_bad_booster_params_are_named(
    path: str, params: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ParamError) as raised:
        check_estimator(path, params, 3)
    assert (raised.value.key, raised.value.message) == (key, message)


_HOSTILE: list[tuple[str, str, Any, str]] = [
    # (library, key, value, message): types from the library's signature, bounds from its docs
    ("lightgbm", "num_leaves", "abc", "must be an int in the range [2, 131072], was 'abc'"),
    ("lightgbm", "num_leaves", -5, "must be an int in the range [2, 131072], was -5"),
    ("lightgbm", "n_estimators", "1e20", "must be an int in the range [1, 10000], was '1e20'"),
    ("lightgbm", "n_estimators", 1e20,
     "must be <= 10,000 for LGBMClassifier (the ceiling on the work of one fold), was 1e+20"),
    ("lightgbm", "n_estimators", 50.5, "must be an int in the range [1, 10000], was 50.5"),
    ("lightgbm", "max_depth", 1e308, "must be an int in the range [-1, 1000], was 1e+308"),
    ("lightgbm", "max_depth", True, "must be an int in the range [-1, 1000], was True"),
    ("lightgbm", "learning_rate", -1, "must be a float in the range (0.0, 10.0], was -1"),
    ("lightgbm", "subsample", 2, "must be a float in the range (0.0, 1.0], was 2"),
    ("lightgbm", "reg_alpha", -1.0, "must be a float in the range [0.0, inf), was -1.0"),
    ("lightgbm", "n_jobs", -100_000,
     "must be an int in the range [-256, 1024] or None, was -100000"),
    # a LightGBM alias has its parameter's constraint, and a flag is true or false
    ("lightgbm", "min_data_in_leaf", "abc",
     "must be an int in the range [0, 1000000000], was 'abc'"),
    ("lightgbm", "num_threads", -100_000,
     "must be an int in the range [-256, 1024] or None, was -100000"),
    ("lightgbm", "extra_trees", 2, "must be true or false, was 2"),
    ("lightgbm", "boosting_type", "dartt",
     "must be one of dart, gbdt, gbrt, random_forest, rf; was 'dartt' (did you mean 'dart'?)"),
    ("xgboost", "max_depth", "abc", "must be an int in the range [0, 1000] or None, was 'abc'"),
    ("xgboost", "max_depth", 1e308, "must be an int in the range [0, 1000] or None, was 1e+308"),
    ("xgboost", "n_estimators", "1e20",
     "must be an int in the range [1, 10000] or None, was '1e20'"),
    ("xgboost", "learning_rate", -1, "must be a float in the range [0.0, 1.0] or None, was -1"),
    ("xgboost", "n_jobs", -100_000,
     "must be an int in the range [-256, 1024] or None, was -100000"),
    ("xgboost", "subsample", 0, "must be a float in the range (0.0, 1.0] or None, was 0"),
    ("xgboost", "booster", "gbtre",
     "must be one of dart, gblinear, gbtree or null; was 'gbtre' (did you mean 'gbtree'?)"),
    ("xgboost", "enable_categorical", 3, "must be true or false, was 3"),
    # XGBoost's device: cpu, cuda, gpu, with an ordinal or not (its context.cc)
    ("xgboost", "device", "nosuch",
     "must be cpu, cuda, cuda:<ordinal>, gpu or gpu:<ordinal> (such as cuda:0) or null; "
     "was 'nosuch'"),
    ("xgboost", "device", "cuda:x",
     "must be cpu, cuda, cuda:<ordinal>, gpu or gpu:<ordinal> (such as cuda:0) or null; "
     "was 'cuda:x' (did you mean 'cuda'?)"),
    ("xgboost", "device", 0,
     "must be cpu, cuda, cuda:<ordinal>, gpu or gpu:<ordinal> (such as cuda:0) or null; "
     "was 0"),
]  # fmt: skip

_CLASSES = {"lightgbm": "lightgbm.LGBMClassifier", "xgboost": "xgboost.XGBClassifier"}


@pytest.mark.parametrize(("library", "key", "value", "message"), _HOSTILE)
def test_hostile_booster_values_are_refused_naming_the_key(
    library: str, key: str, value: Any, message: str
) -> None:
    with pytest.raises(ParamError) as raised:
        check_estimator(_CLASSES[library], {key: value}, 3)
    assert (raised.value.key, raised.value.message) == (f"params.{key}", message)


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:1", "gpu", "gpu:0", None])
def test_xgboosts_devices_are_taken(device: str | None) -> None:
    checked, _ = check_estimator("xgboost.XGBClassifier", {"device": device}, 3)
    assert checked.settings["device"] == device


def test_every_bad_booster_param_is_named_at_once() -> None:
    with pytest.raises(ParamErrors) as raised:
        check_estimator(
            "xgboost.XGBClassifier",
            {"device": "nosuch", "max_dept": 3, "n_jobs": -100_000, "n_estimators": 50_000},
            3,
        )
    assert [(e.key, e.message) for e in raised.value.errors] == [
        ("params.max_dept", "unknown parameter of XGBClassifier (did you mean 'max_depth'?)"),
        (
            "params.n_estimators",
            "must be <= 10,000 for XGBClassifier (the ceiling on the work of one fold), was 50,000",
        ),
        (
            "params.device",
            "must be cpu, cuda, cuda:<ordinal>, gpu or gpu:<ordinal> (such as cuda:0) or null; "
            "was 'nosuch'",
        ),
        ("params.n_jobs", "must be an int in the range [-256, 1024] or None, was -100000"),
    ]


@pytest.mark.parametrize(
    ("library", "typo", "meant"),
    [("lightgbm", "binery", "binary"), ("xgboost", "binary:logistc", "binary:logistic")],
)
def test_an_unknown_objective_is_refused_with_the_documented_ones(
    library: str, typo: str, meant: str
) -> None:
    with pytest.raises(ParamError) as raised:
        check_estimator(_CLASSES[library], {"objective": typo}, 3)
    message = raised.value.message
    assert raised.value.key == "params.objective"
    assert message.startswith("must be one of ")
    assert f" {meant}, " in message  # sorted, every documented objective
    assert message.endswith(f" or null; was '{typo}' (did you mean '{meant}'?)")


@pytest.mark.parametrize("name", ["btc_lgbm", "btc_xgb"])
def test_validate_names_the_file_line_and_column_of_a_hostile_booster_value(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path / "cache"))  # no remembered verdict
    strategy = (ROOT / "strategies" / f"{name}.yaml").read_text()
    hostile = strategy.replace("learning_rate: 0.05", "learning_rate: fast")
    assert hostile != strategy
    (tmp_path / "s.yaml").write_text(hostile)
    line = next(i for i, s in enumerate(hostile.splitlines(), 1) if "learning_rate:" in s)
    column = hostile.splitlines()[line - 1].index("fast") + 1
    bound = "(0.0, 10.0]" if name == "btc_lgbm" else "[0.0, 1.0] or None"

    assert main(["validate", str(tmp_path / "s.yaml")]) == 2

    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path / 's.yaml'}:{line}:{column} model.params.learning_rate: must be a float "
        f"in the range {bound}, was 'fast'"
    ]
    (tmp_path / "s.yaml").write_text(strategy)  # the shipped values pass
    assert main(["validate", str(tmp_path / "s.yaml")]) == 0


class _Uninstalled(importlib.abc.MetaPathFinder):
    """Import ``lightgbm`` as if it were not installed."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "lightgbm" or name.startswith("lightgbm."):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)


def test_a_missing_library_names_the_key_and_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path / "cache"))  # no remembered verdict
    for name in [m for m in sys.modules if m == "lightgbm" or m.startswith("lightgbm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Uninstalled(), *sys.meta_path])
    strategy = (ROOT / "strategies" / "btc_lgbm.yaml").read_text()
    (tmp_path / "s.yaml").write_text(strategy)
    line = next(i for i, s in enumerate(strategy.splitlines(), 1) if "estimator:" in s)

    assert main(["validate", str(tmp_path / "s.yaml")]) == 2

    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path / 's.yaml'}:{line}:14 model.estimator: cannot import "
        "'lightgbm.LGBMClassifier': No module named 'lightgbm'; install it with: "
        'pip install "tradeloom[lightgbm]"'
    ]
