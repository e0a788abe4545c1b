"""Informative pairs (``symbol: ETH/USDT``): a feature on another market's bars, joined to
the traded bars as of bar close, the same in the batch and per-bar drivers; what the data
sources load, and what is refused in one line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import tradeloom.plugins.features as features_plugin
from tradeloom.cli.main import main
from tradeloom.domain import Bars
from tradeloom.engine.features import universe_features
from tradeloom.engine.informative import InformativePair
from tradeloom.engine.timeframe import HigherTimeframe
from tradeloom.engine.universe import load_universe
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError, DataError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols import Feature
from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext
from tradeloom.schemas import load_strategy

from tests.plugins.features.test_feature_parity import each_bar  # isort: skip

COMPONENTS = {c.kind: c for c in features_plugin.tradeloom_components()}
HOUR = 3600
START = pd.Timestamp("2024-01-01T00:00Z")


def inner(kind: str, **keys: Any) -> Feature:
    component = COMPONENTS[kind]
    ctx = BuildContext("s", Path("."), seed=0)
    built = component.factory(component.params.model_validate(keys), ctx)
    assert isinstance(built, Feature)
    return built


def hourly(closes: dict[int, float], symbol: str) -> Bars:
    """Hourly bars at the hours of ``closes`` (open = the previous close)."""
    hours = sorted(closes)
    close = np.array([closes[h] for h in hours])
    opens = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) + 0.25,
            "low": np.minimum(opens, close) - 0.25,
            "close": close,
            "volume": 1.0 + np.arange(len(hours)) % 3,
        },
        index=pd.DatetimeIndex(
            START + pd.to_timedelta(np.array(hours) * HOUR, "s"), name="timestamp"
        ),
    )
    return Bars(frame, symbol, "1h", HOUR)


def joined(pair: InformativePair, bars: Bars, other: Bars) -> np.ndarray:
    return pair.compute_joined(bars, other).to_numpy(np.float64)


def stepped(features: list[Feature], bars: Bars, other: Bars) -> np.ndarray:
    stepper = FeatureStepper(features, StepContext.of(bars, {other.symbol: other}))
    return np.vstack([stepper.step(bar) for bar in each_bar(bars)])


def btc(hours: range | list[int]) -> Bars:
    return hourly({h: 100.0 + h for h in hours}, "BTC/USDT")


# --- the as-of join, by hand --------------------------------------------------------------


def test_a_missing_bar_of_the_pair_carries_its_last_value_by_hand() -> None:
    """ETH has no 02:00 bar: the 02:00 traded bar sees ETH's 01:00 value; ETH ends at
    04:00: the 05:00 traded bar sees it still."""
    eth = hourly({0: 10.0, 1: 11.0, 3: 12.0, 4: 9.0}, "ETH/USDT")
    pair = InformativePair(inner("log_return", period=1), "ETH/USDT")
    a, b, c = math.log(11 / 10), math.log(12 / 11), math.log(9 / 12)  # over ETH's own bars
    expected = np.array([[math.nan], [a], [a], [b], [c], [c]])
    np.testing.assert_array_equal(joined(pair, btc(range(6)), eth), expected)
    np.testing.assert_array_equal(stepped([pair], btc(range(6)), eth), expected)


def test_before_the_pair_s_first_bar_the_value_is_nan_and_a_traded_gap_skips_ahead() -> None:
    eth = hourly({2: 10.0, 3: 11.0, 4: 12.1}, "ETH/USDT")
    pair = InformativePair(inner("log_return", period=1), "ETH/USDT")
    expected = np.array([[math.nan], [math.nan], [math.nan], [math.log(1.1)], [math.log(1.1)]])
    np.testing.assert_allclose(joined(pair, btc(range(5)), eth), expected, rtol=0, atol=1e-15)
    # the traded market has no 03:00 bar: its 04:00 bar sees ETH's 04:00 bar, made of
    # both ETH bars it had not seen (the step takes ETH's 03:00 then 04:00 bar)
    traded = btc([0, 1, 2, 4])
    np.testing.assert_array_equal(joined(pair, traded, eth), stepped([pair], traded, eth))
    assert joined(pair, traded, eth)[3, 0] == math.log(12.1 / 11.0)


def test_the_pair_on_a_higher_timeframe_joins_its_4h_bar_at_its_close() -> None:
    """ETH's 4h bar of 00:00 (its 1h bars 0..3) closes with the traded 03:00 bar."""
    eth = hourly({h: 10.0 * 1.01**h for h in range(12)}, "ETH/USDT")
    pair = InformativePair(HigherTimeframe(inner("log_return", period=1), "4h"), "ETH/USDT")
    assert pair.columns() == ["log_return_1@4h@ETH/USDT"]
    out = joined(pair, btc(range(12)), eth)[:, 0]
    assert np.isnan(out[:7]).all()  # the first 4h return needs two closed 4h bars
    np.testing.assert_allclose(out[7:11], math.log(1.01**7 / 1.01**3), rtol=1e-12)
    assert math.isnan(out[6]) and not math.isnan(out[7])
    np.testing.assert_array_equal(
        out, stepped([pair], btc(range(12)), eth)[:, 0]
    )  # per bar: the same


def test_the_pair_s_future_never_moves_its_past() -> None:
    rng = np.random.default_rng(4)
    eth = hourly(dict(enumerate(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 80))))), "ETH/USDT")
    traded = btc(range(80))
    pair = InformativePair(inner("rsi", window=5), "ETH/USDT")
    whole = joined(pair, traded, eth)
    for t in (10, 37, 60):
        cut = Bars(eth.frame.iloc[: t + 1], "ETH/USDT", "1h", HOUR)
        np.testing.assert_array_equal(joined(pair, traded, cut)[: t + 1], whole[: t + 1])
        changed = eth.frame.copy()
        changed.iloc[t + 1 :, :4] *= 1.5
        other = Bars(changed, "ETH/USDT", "1h", HOUR)
        np.testing.assert_array_equal(joined(pair, traded, other)[: t + 1], whole[: t + 1])
        assert not np.array_equal(joined(pair, traded, other)[t + 1 :], whole[t + 1 :])


# --- property: any two markets' gaps, batch = per bar --------------------------------------


@st.composite
def market_hours(draw: st.DrawFn) -> list[int]:
    n = draw(st.integers(1, 60))
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 3, 7]), min_size=n, max_size=n))
    first = draw(st.integers(0, 10))
    return list(first + np.cumsum(steps) - steps[0])


@settings(max_examples=40, deadline=None)
@given(
    traded_hours=market_hours(),
    other_hours=market_hours(),
    seed=st.integers(0, 2**16),
    timeframe=st.sampled_from([None, "2h", "4h"]),
)
def test_any_two_markets_join_alike_in_both_drivers_and_only_from_closed_bars(
    traded_hours: list[int], other_hours: list[int], seed: int, timeframe: str | None
) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(other_hours))))
    eth = hourly(dict(zip(other_hours, close, strict=True)), "ETH/USDT")
    traded = btc(traded_hours)
    ema = inner("ema", period=3)
    pairs: list[Feature] = [
        InformativePair(inner("log_return", period=1), "ETH/USDT"),
        InformativePair(ema if timeframe is None else HigherTimeframe(ema, timeframe), "ETH/USDT"),
    ]
    batch = np.hstack([joined(p, traded, eth) for p in pairs])  # type: ignore[arg-type]
    np.testing.assert_array_equal(batch, stepped(pairs, traded, eth))
    # each traded row is the value of ETH's last bar opening at or before it, or NaN
    own = pairs[0].inner.compute(eth, pd.DataFrame(index=eth.frame.index))  # type: ignore[attr-defined]
    for t, hour in enumerate(traded_hours):
        seen = [k for k, h in enumerate(other_hours) if h <= hour]
        expected = own.iloc[seen[-1], 0] if seen else math.nan
        np.testing.assert_array_equal(batch[t, 0], expected)


# --- the strategy file: columns, spec, loading, refusals ------------------------------------


DOC: dict[str, Any] = {
    "name": "pair",
    "data": {"kind": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "bars": 200},
    "features": [
        {"kind": "log_return", "period": 1},
        {"kind": "log_return", "period": 1, "symbol": "ETH/USDT"},
    ],
    "model": {"kind": "precomputed", "column": "close"},
    "signal": {"kind": "threshold", "threshold": 0.3},
    "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.1}},
    "execution": {"kind": "simulated"},
}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def with_data(data: dict[str, Any], *entries: dict[str, Any]) -> dict[str, Any]:
    features = list(entries) or DOC["features"]
    return {**DOC, "data": data, "features": features}


def problems(tmp_path: Path, doc: dict[str, Any], mode: str = "backtest") -> list[str]:
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as caught:
        config, _ = load_strategy(path)
        build_pipeline(config, mode=mode)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def test_columns_name_the_symbol_and_the_spec_records_it(tmp_path: Path) -> None:
    config, _ = load_strategy(write(tmp_path, DOC))
    assert build_pipeline(config).feature_columns == ("log_return_1", "log_return_1@ETH/USDT")
    spec = config.feature_spec()
    assert spec[0] == {"kind": "log_return", "name": None, "period": 1}  # as before: no key
    assert spec[1] == {"kind": "log_return", "name": None, "period": 1, "symbol": "ETH/USDT"}
    other, _ = load_strategy(write(tmp_path, with_data(DOC["data"], DOC["features"][0])))
    assert other.feature_spec() != spec


def test_synthetic_pairs_are_seeded_per_symbol_and_leave_the_traded_bars_alone(
    tmp_path: Path,
) -> None:
    config, _ = load_strategy(write(tmp_path, DOC))
    universe = load_universe(build_pipeline(config))
    (eth,) = universe.informative
    assert (eth.symbol, eth.timeframe, len(eth)) == ("ETH/USDT", "1h", 200)
    assert eth.frame.index.equals(universe.bars[0].frame.index)
    alone, _ = load_strategy(write(tmp_path, with_data(DOC["data"], DOC["features"][0])))
    plain = load_universe(build_pipeline(alone))
    assert plain.informative == ()
    pd.testing.assert_frame_equal(plain.bars[0].frame, universe.bars[0].frame)
    again = load_universe(build_pipeline(config))
    pd.testing.assert_frame_equal(again.informative[0].frame, eth.frame)
    sol = build_pipeline(config).data.load_informative("SOL/USDT")  # type: ignore[attr-defined]
    assert not np.array_equal(sol.frame["close"], eth.frame["close"])


def test_a_universe_s_pair_follows_its_factor_and_is_the_same_for_every_symbol(
    tmp_path: Path,
) -> None:
    data = {
        "kind": "synthetic",
        "symbols": ["BTC/USDT", "SOL/USDT"],
        "correlation": 0.8,
        "timeframe": "1h",
        "bars": 400,
    }
    config, _ = load_strategy(write(tmp_path, with_data(data)))
    pipeline = build_pipeline(config)
    universe = load_universe(pipeline)
    returns = [np.diff(np.log(b.frame["close"].to_numpy())) for b in universe.bars]
    eth = np.diff(np.log(universe.informative[0].frame["close"].to_numpy()))
    assert np.corrcoef(returns[0], eth)[0, 1] > 0.5
    features = universe_features(pipeline, universe)
    for own in features.own:
        np.testing.assert_allclose(own["log_return_1@ETH/USDT"].to_numpy()[1:], eth, rtol=1e-9)


def test_csv_pairs_come_from_the_template_s_file(tmp_path: Path) -> None:
    for symbol, scale in (("BTC-USDT", 1.0), ("ETH-USDT", 0.05)):
        frame = pd.DataFrame(
            {
                "timestamp": pd.date_range(START, periods=30, freq="1h").strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "open": scale * (100.0 + np.arange(30)),
                "high": scale * (101.0 + np.arange(30)),
                "low": scale * (99.0 + np.arange(30)),
                "close": scale * (100.5 + np.arange(30)),
                "volume": 1.0,
            }
        )
        frame.to_csv(tmp_path / f"{symbol}.csv", index=False)
    data = {"kind": "csv", "path": "{symbol}.csv", "symbols": ["BTC/USDT"]}
    config, _ = load_strategy(write(tmp_path, with_data(data)))
    universe = load_universe(build_pipeline(config))
    (eth,) = universe.informative
    assert eth.symbol == "ETH/USDT" and eth.frame["close"].iloc[0] == pytest.approx(5.025)


def test_a_pair_that_is_traded_is_refused_in_one_line(tmp_path: Path) -> None:
    entry = {"kind": "rsi", "window": 3, "symbol": "BTC/USDT"}
    found = problems(tmp_path, with_data(DOC["data"], entry))
    assert found == [
        f"{tmp_path / 's.yaml'}:10:11 features.0.symbol: BTC/USDT is traded by this strategy, "
        "and an informative pair is a market it does not trade; remove symbol: to compute the "
        "feature on the traded bars"
    ]


def test_a_single_csv_file_cannot_name_a_pair(tmp_path: Path) -> None:
    (tmp_path / "bars.csv").write_text("timestamp,open,high,low,close,volume\n", encoding="utf-8")
    found = problems(tmp_path, with_data({"kind": "csv", "path": "bars.csv"}))
    assert found == [
        f"{tmp_path / 's.yaml'}:10:11 features.1.symbol: data kind csv reads one market from "
        f"{tmp_path / 'bars.csv'}; to read ETH/USDT beside it, write data.path with {{symbol}} "
        "(one file per symbol) and data.symbols, or set data.symbol_column (one long file)"
    ]


def test_paper_and_live_refuse_a_pair_in_one_line(tmp_path: Path) -> None:
    for mode in ("paper", "live"):
        found = problems(tmp_path, DOC, mode=mode)  # beside the model's refusal
        assert (
            f"{tmp_path / 's.yaml'}:12:11 features.1.symbol: --mode {mode}: paper and live "
            "runs do not fetch an informative pair's bars yet; remove symbol: or run a backtest"
        ) in found


def test_the_cli_exits_2_on_a_refused_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, with_data(DOC["data"], {"kind": "ema", "symbol": "BTC/USDT"}))
    assert main(["validate", str(path)]) == 2
    assert "features.0.symbol: BTC/USDT is traded by this strategy" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"kind": "zscore", "of": "log_return_1", "window": 5, "symbol": "ETH/USDT"},
            "11:7 features.1.of: unknown feature 'log_return_1'; no feature is defined before "
            "it (a feature with symbol: sees ETH/USDT's bars, not the columns of other "
            "features)",
        ),
        (
            {"kind": "rsi", "symbol": "  "},
            "11:11 features.1.symbol: must be a market symbol such as ETH/USDT, was blank",
        ),
    ],
)
def test_what_a_pair_cannot_be_is_refused_in_one_line(
    tmp_path: Path, entry: dict[str, Any], message: str
) -> None:
    found = problems(tmp_path, with_data(DOC["data"], DOC["features"][0], entry))
    assert found == [f"{tmp_path / 's.yaml'}:{message}"]


def test_a_pair_stepped_without_its_bars_is_refused() -> None:
    pair = InformativePair(inner("rsi", window=3), "ETH/USDT")
    bars = btc(range(3))
    with pytest.raises(DataError, match=r"^feature symbol: ETH/USDT's bars were not loaded"):
        pair.stepper(StepContext.of(bars))


def test_a_paper_run_on_the_simulated_clock_refuses_a_pair_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The simulated clock builds the strategy as a backtest (its bars are replayed), and
    still refuses the pair: its ticks would not fetch it."""
    path = write(tmp_path, DOC)
    out = tmp_path / "run"
    args = ["run", str(path), "--mode", "paper", "--clock", "simulated", "--out", str(out)]
    assert main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert (
        f"{path}:12:11 features.1.symbol: --mode paper: paper and live runs do not fetch an "
        "informative pair's bars yet; remove symbol: or run a backtest"
    ) in lines
    # the file's precomputed model is refused too, at its own line: every problem at once
    assert [line.split(" ", 2)[1] for line in lines] == ["features.1.symbol:", "model.kind:"]
    assert not out.exists()


def test_a_misspelt_symbol_key_is_told_the_key_it_meant(tmp_path: Path) -> None:
    found = problems(tmp_path, with_data(DOC["data"], {"kind": "ema", "symbl": "ETH/USDT"}))
    assert found == [
        f"{tmp_path / 's.yaml'}:9:3 features.0.symbl: unknown key (did you mean 'symbol'?)"
    ]
