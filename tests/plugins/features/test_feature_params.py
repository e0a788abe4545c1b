"""Feature keys: bounds, names, references to earlier features, registration."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest
from pydantic import ValidationError

import tradeloom.plugins.features as features_plugin
from tests.plugins.features.llm_stand_in import text_llm_keys
from tradeloom.plugins import hookspecs
from tradeloom.plugins.component import BuildContext, ParamError, Params
from tradeloom.plugins.features.atr import AtrParams
from tradeloom.plugins.features.bollinger import BollingerWidthParams
from tradeloom.plugins.features.cross import CROSS_KINDS
from tradeloom.plugins.features.ema import EmaParams
from tradeloom.plugins.features.lags import LagsParams, build_lags
from tradeloom.plugins.features.macd import MacdParams, build_macd
from tradeloom.plugins.features.returns import LogReturnParams, ReturnsParams
from tradeloom.plugins.features.rsi import RsiParams, build_rsi
from tradeloom.plugins.features.stochastic import StochasticParams, build_stochastic
from tradeloom.plugins.features.volatility import VolatilityParams
from tradeloom.plugins.features.volume import VolumeZScoreParams
from tradeloom.plugins.features.zscore import ZScoreParams, build_zscore
from tradeloom.plugins.protocols import CrossSectionalFeature, Feature
from tradeloom.plugins.protocols_steps import SteppedFeature
from tradeloom.plugins.registry import PluginInfo, Registry


def ctx(*columns: str) -> BuildContext:
    return BuildContext("s", Path("."), seed=0, feature_columns=columns)


def refused(model: type[Params], keys: dict) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as info:
        model(**keys)
    error = info.value.errors()[0]
    return error["loc"], error["msg"]


@pytest.mark.parametrize(
    ("model", "keys", "location", "text"),
    [
        (LogReturnParams, {"period": 0}, ("period",), "greater than or equal to 1"),
        (LogReturnParams, {"period": True}, ("period",), "valid integer"),
        (RsiParams, {"window": 1}, ("window",), "greater than or equal to 2"),
        (BollingerWidthParams, {"window": 1}, ("window",), "greater than or equal to 2"),
        (BollingerWidthParams, {"std": 0}, ("std",), "greater than 0"),
        (VolatilityParams, {"window": 1}, ("window",), "greater than or equal to 2"),
        (VolumeZScoreParams, {"window": 1}, ("window",), "greater than or equal to 2"),
        (RsiParams, {"windw": 14}, ("windw",), "Extra inputs are not permitted"),
        (LagsParams, {"of": "x"}, ("lags",), "Field required"),
        (LagsParams, {"of": [], "lags": 1}, ("of",), "must name at least one feature column"),
        (LagsParams, {"of": ["a", "a"], "lags": 1}, ("of",), "must not name a column twice"),
        (LagsParams, {"of": "x", "lags": 0}, ("lags",), "must be n >= 1 (lags 1..n) or a list"),
        (LagsParams, {"of": "x", "lags": [2, 0]}, ("lags", 1), "greater than or equal to 1"),
        (LagsParams, {"of": "x", "lags": True}, ("lags",), "valid list"),
        (LagsParams, {"of": "x", "lags": []}, ("lags",), "must hold at least one lag"),
        (ReturnsParams, {"period": 0}, ("period",), "greater than or equal to 1"),
        (EmaParams, {"period": 1}, ("period",), "greater than or equal to 2"),
        (EmaParams, {"period": 2.5}, ("period",), "valid integer"),
        (AtrParams, {"window": 0}, ("window",), "greater than or equal to 1"),
        (MacdParams, {"fast": 1}, ("fast",), "greater than or equal to 2"),
        (MacdParams, {"signal": 1}, ("signal",), "greater than or equal to 2"),
        (
            MacdParams,
            {"fast": 26, "slow": 12},
            ("slow",),
            "Value error, must be > fast (26), was 12",
        ),
        (
            MacdParams,
            {"fast": 12, "slow": 12},
            ("slow",),
            "Value error, must be > fast (12), was 12",
        ),
        (MacdParams, {"fast": 30}, ("slow",), "Value error, must be > fast (30), was 26"),
        (StochasticParams, {"k_window": 0}, ("k_window",), "greater than or equal to 1"),
        (StochasticParams, {"d_window": 0}, ("d_window",), "greater than or equal to 1"),
        (StochasticParams, {"k": 5}, ("k",), "Extra inputs are not permitted"),
        (ZScoreParams, {"window": 5}, ("of",), "Field required"),
        (ZScoreParams, {"of": "", "window": 5}, ("of",), "at least 1 character"),
        (ZScoreParams, {"of": "x", "window": 1}, ("window",), "greater than or equal to 2"),
        (
            LagsParams,
            {"of": "x", "lags": [1, 2, 1]},
            ("lags",),
            "must not repeat a lag; was [1, 2, 1]",
        ),
    ],
)
def test_bad_keys_are_refused(model, keys: dict, location: tuple, text: str) -> None:
    got_location, message = refused(model, keys)
    assert got_location[: len(location)] == location
    assert text in message


def test_lags_accept_one_column_and_n_and_report_a_single_error() -> None:
    params = LagsParams(of="rsi_14", lags=3)
    assert (params.of, params.lags) == (["rsi_14"], [1, 2, 3])
    with pytest.raises(ValidationError) as info:
        LagsParams(of="x", lags=-2)
    assert info.value.error_count() == 1
    schema = LagsParams.model_json_schema()["properties"]
    assert [s["type"] for s in schema["lags"]["anyOf"]] == ["integer", "array"]
    assert [s["type"] for s in schema["of"]["anyOf"]] == ["string", "array"]


@pytest.mark.parametrize(
    ("model", "keys"),
    [
        (RsiParams, {}),
        (MacdParams, {}),
        (StochasticParams, {}),
        (ZScoreParams, {"of": "x"}),
    ],
)
def test_a_column_name_must_be_an_identifier(model: type[Params], keys: dict) -> None:
    location, message = refused(model, {**keys, "name": "rsi fast "})
    assert location == ("name",)
    assert message == (
        "Value error, must start with a letter or _ and hold only letters, digits and _ "
        "(e.g. rsi_fast); was 'rsi fast '"
    )


def test_multi_column_features_name_their_columns_from_name() -> None:
    assert build_macd(MacdParams(), ctx()).columns() == [
        "macd_12_26",
        "macd_signal_12_26_9",
        "macd_hist_12_26_9",
    ]
    assert build_macd(MacdParams(fast=5, slow=8, signal=3, name="m"), ctx()).columns() == [
        "m",
        "m_signal",
        "m_hist",
    ]
    assert build_stochastic(StochasticParams(), ctx()).columns() == ["stoch_k_14", "stoch_d_14_3"]
    named = build_stochastic(StochasticParams(k_window=5, name="fast"), ctx())
    assert named.columns() == ["fast_k", "fast_d"]
    with pytest.raises(ParamError, match=r"^name: column 'macd_12_26' is already defined"):
        build_macd(MacdParams(signal=5), ctx("macd_12_26", "macd_signal_12_26_9"))


def test_zscore_of_an_unknown_column_is_refused_like_lags() -> None:
    with pytest.raises(ParamError) as info:
        build_zscore(ZScoreParams(of="rsi14"), ctx("log_return_1", "rsi_14"))
    assert (info.value.key, info.value.message) == (
        "of",
        "unknown feature 'rsi14'; defined before it: log_return_1, rsi_14 (did you mean 'rsi_14'?)",
    )
    with pytest.raises(ParamError) as info:
        build_zscore(ZScoreParams(of="rsi_14"), ctx())
    assert info.value.message == "unknown feature 'rsi_14'; no feature is defined before it"
    feature = build_zscore(ZScoreParams(of="rsi_14", window=10), ctx("rsi_14"))
    assert feature.columns() == ["rsi_14_zscore_10"]
    renamed = build_zscore(ZScoreParams(of="rsi_14", name="rsi_z"), ctx("rsi_14"))
    assert renamed.columns() == ["rsi_z"]
    with pytest.raises(ParamError, match=r"^name: column 'rsi_14_zscore_24' is already defined"):
        build_zscore(ZScoreParams(of="rsi_14"), ctx("rsi_14", "rsi_14_zscore_24"))


def test_lags_of_an_unknown_column_suggests_the_near_miss() -> None:
    with pytest.raises(ParamError) as info:
        build_lags(LagsParams(of="rsi14", lags=[1]), ctx("log_return_1", "rsi_14"))
    assert info.value.key == "of"
    assert info.value.message == (
        "unknown feature 'rsi14'; defined before it: log_return_1, rsi_14 (did you mean 'rsi_14'?)"
    )


def test_lags_of_an_unknown_column_without_a_near_miss() -> None:
    with pytest.raises(ParamError) as info:
        build_lags(LagsParams(of=["log_return_1", "macd"], lags=2), ctx("log_return_1", "rsi_14"))
    assert info.value.message == ("unknown feature 'macd'; defined before it: log_return_1, rsi_14")


def test_lags_with_nothing_defined_before_it() -> None:
    with pytest.raises(ParamError) as info:
        build_lags(LagsParams(of="rsi_14", lags=1), ctx())
    assert info.value.message == "unknown feature 'rsi_14'; no feature is defined before it"


def test_lags_names_every_unknown_column() -> None:
    with pytest.raises(ParamError) as info:
        build_lags(LagsParams(of=["rsi14", "macd"], lags=1), ctx("log_return_1", "rsi_14"))
    assert info.value.message == (
        "unknown features 'rsi14' (did you mean 'rsi_14'?), 'macd'; "
        "defined before it: log_return_1, rsi_14"
    )


def test_a_column_defined_twice_is_refused() -> None:
    with pytest.raises(ParamError) as info:
        build_rsi(RsiParams(window=14), ctx("log_return_1", "rsi_14"))
    assert (info.value.key, info.value.message) == (
        "name",
        "column 'rsi_14' is already defined by an earlier feature; "
        "give this one another name with name:",
    )
    assert build_rsi(RsiParams(window=14, name="rsi_14b"), ctx("rsi_14")).columns() == ["rsi_14b"]
    with pytest.raises(ParamError, match=r"^of: column 'x_lag_1' is already defined"):
        build_lags(LagsParams(of="x", lags=1), ctx("x", "x_lag_1"))


def test_components_are_registered_through_the_hook() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(features_plugin, name="tradeloom.plugins.features")
    pm.check_pending()
    (components,) = pm.hook.tradeloom_components()
    registry = Registry([PluginInfo("tradeloom.plugins.features", "built-in", tuple(components))])
    assert registry.kinds("features") == [
        "adx",
        "atr",
        "bb_width",
        "bollinger",
        "book_depth",
        "book_imbalance",
        "cross_mean",
        "cross_rank",
        "cross_zscore",
        "donchian",
        "ema",
        "lags",
        "lexicon",
        "log_return",
        "macd",
        "obv",
        "returns",
        "rsi",
        "series",
        "sma",
        "spread_bps",
        "stochastic",
        "text_embedding",
        "text_llm",
        "time_features",
        "volatility",
        "volume_zscore",
        "vwap",
        "zscore",
    ]
    defaults = {
        "lags": {"of": "x", "lags": 1},
        "zscore": {"of": "x"},
        "series": {"of": "y"},
        "book_depth": {"within_bps": 10},
        "lexicon": {
            "of": "news",
            "lexicon": str(Path(__file__).resolve().parents[2] / "fixtures/text/words.csv"),
        },
        "text_embedding": {"of": "news", "knowledge_cutoff": "2020-01", "dimensions": 64},
        "text_llm": text_llm_keys(),
    }
    defaults.update({kind: {"of": "x"} for kind in CROSS_KINDS})
    for registered in registry.components("features"):
        component = registered.component
        assert issubclass(component.params, Params) and component.summary
        params = component.params.model_validate(defaults.get(component.kind, {}))
        feature = component.factory(params, ctx("x"))
        assert isinstance(feature, Feature)
        # each bar of a cross-sectional feature is one row of the symbols: no state to step
        cross = isinstance(feature, CrossSectionalFeature)
        assert cross == (component.kind in CROSS_KINDS)
        assert cross or isinstance(feature, SteppedFeature)
