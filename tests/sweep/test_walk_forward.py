"""Walk-forward optimisation: the windows, the choice made from in-sample bars only, the
stitched out-of-sample curve, the stability of the choice, and the --walk-forward value."""

from __future__ import annotations

import argparse
import math
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
import pytest

from tradeloom.errors import UserError
from tradeloom.sweep.walk_forward import (
    Evaluation,
    WalkForwardSpec,
    Window,
    parse_walk_forward,
    walk_forward,
    walk_forward_argument,
)


class Momentum:
    """An evaluate over a price-return series: variant k holds the market scaled by k
    (k = 0 stays out); the objective is the total return. Records every call and the
    furthest bar read."""

    def __init__(self, market: np.ndarray) -> None:
        self.market = market
        self.calls: list[tuple[int, int, tuple[Hashable, ...]]] = []

    def __call__(self, start: int, stop: int, variants: Sequence[Hashable]) -> list[Evaluation]:
        self.calls.append((start, stop, tuple(variants)))
        seen = self.market[:stop]  # history before start is allowed (warm-up), not the future
        out = []
        for variant in variants:
            returns = float(variant) * seen[start:stop]  # type: ignore[arg-type]
            out.append(Evaluation(float(np.prod(1.0 + returns) - 1.0), returns))
        return out


def test_windows_layout() -> None:
    assert WalkForwardSpec(4, 2).windows(11) == [
        Window(0, 0, 4, 6),
        Window(1, 2, 6, 8),
        Window(2, 4, 8, 10),
        Window(3, 6, 10, 11),  # the data ends: a shorter out-of-sample part
    ]
    # a step longer than the out-of-sample part leaves bars untraded between windows
    assert WalkForwardSpec(3, 2, step=4).windows(12) == [
        Window(0, 0, 3, 5),
        Window(1, 4, 7, 9),
        Window(2, 8, 11, 12),
    ]
    assert WalkForwardSpec(5, 5).windows(10) == [Window(0, 0, 5, 10)]


def test_no_out_of_sample_bar_is_ever_used_to_choose() -> None:
    rng = np.random.default_rng(8)
    market = rng.normal(0.0, 0.02, size=200)
    evaluate = Momentum(market)
    variants = (-1.0, 0.0, 0.5, 1.0)
    result = walk_forward(200, in_sample=40, out_of_sample=20, variants=variants, evaluate=evaluate)
    # every window asks for all variants on its in-sample bars, then for the chosen one alone
    # on the bars right after; nothing else is ever asked
    expected = []
    for w in result.windows:
        expected.append((w.window.in_start, w.window.in_stop, variants))
        expected.append((w.window.in_stop, w.window.out_stop, (w.chosen,)))
    assert evaluate.calls == expected
    assert len(result.windows) == 8
    # truncation: scrambling every bar from a window's in-sample end on leaves its choice alone
    for w in result.windows:
        future = market.copy()
        future[w.window.in_stop :] = rng.normal(0.0, 0.05, size=200 - w.window.in_stop)
        again = walk_forward(
            200, in_sample=40, out_of_sample=20, variants=variants, evaluate=Momentum(future)
        )
        earlier = [r.chosen for r in result.windows[: w.window.index + 1]]
        assert [r.chosen for r in again.windows[: w.window.index + 1]] == earlier
        assert again.windows[w.window.index].in_sample_objective == w.in_sample_objective


def test_the_choice_follows_the_in_sample_objective() -> None:
    # the market rises for 10 bars then falls for 10, and so on: long wins the rising
    # in-sample windows, short the falling ones, and each choice then loses out-of-sample
    market = np.tile(np.r_[np.full(10, 0.01), np.full(10, -0.01)], 3)
    result = walk_forward(
        60, in_sample=10, out_of_sample=10, variants=(-1.0, 0.0, 1.0), evaluate=Momentum(market)
    )
    assert [w.chosen for w in result.windows] == [1.0, -1.0, 1.0, -1.0, 1.0]
    assert [w.chosen_index for w in result.windows] == [2, 0, 2, 0, 2]
    assert all(w.out_of_sample_objective < 0 for w in result.windows)
    assert result.stability.changes == 4
    assert result.stability.change_rate == 1.0
    assert result.stability.distinct == 2


def test_stitching_by_hand() -> None:
    market = np.array([0.0, 0.1, 0.0, 0.1, -0.1, 0.2, 0.05, -0.2, 0.1, 0.0])
    result = walk_forward(
        10,
        in_sample=2,
        out_of_sample=3,
        variants=(1.0, -1.0),
        evaluate=Momentum(market),
        initial_equity=100.0,
    )
    # window 0: in-sample bars 0-1 (+10% long) -> long; trades bars 2-4: 0, +0.1, -0.1
    # window 1: in-sample bars 3-4: long 1.1*0.9-1 = -1%, short 0.9*1.1-1 = -1% -> tie: long
    #           (first); trades bars 5-7: +0.2, +0.05, -0.2
    # window 2: in-sample bars 6-7: long 1.05*0.8 < 1, short 0.95*1.2 = 1.14 -> short;
    #           trades bars 8-9: -0.1, -0.0
    assert [w.chosen for w in result.windows] == [1.0, 1.0, -1.0]
    assert result.bars.tolist() == [2, 3, 4, 5, 6, 7, 8, 9]
    np.testing.assert_allclose(result.returns, [0.0, 0.1, -0.1, 0.2, 0.05, -0.2, -0.1, 0.0])
    equity = 100 * np.cumprod([1.0, 1.1, 0.9, 1.2, 1.05, 0.8, 0.9, 1.0])
    np.testing.assert_allclose(result.equity, equity)
    assert result.equity[-1] == pytest.approx(100 * 1.1 * 0.9 * 1.2 * 1.05 * 0.8 * 0.9)
    assert result.windows[1].in_sample_objective == pytest.approx(-0.01)
    assert result.windows[2].out_of_sample_objective == pytest.approx(-0.1)


def test_nan_objectives_rank_last_and_ties_go_first() -> None:
    def evaluate(start: int, stop: int, variants: Sequence[Hashable]) -> list[Evaluation]:
        table = {"a": math.nan, "b": 0.5, "c": 0.5, "d": math.nan}
        return [Evaluation(table[str(v)], np.zeros(stop - start)) for v in variants]

    result = walk_forward(6, in_sample=3, out_of_sample=3, variants="abcd", evaluate=evaluate)
    assert result.windows[0].chosen == "b"
    assert result.windows[0].nan_objectives == 2

    def all_nan(start: int, stop: int, variants: Sequence[Hashable]) -> list[Evaluation]:
        return [Evaluation(math.nan, np.zeros(stop - start)) for _ in variants]

    assert (
        walk_forward(6, in_sample=3, out_of_sample=3, variants="xy", evaluate=all_nan)
        .windows[0]
        .chosen
        == "x"
    )


def test_parameter_stability() -> None:
    market = np.tile(np.r_[np.full(10, 0.01), np.full(10, -0.01)], 3)
    params = {
        -1.0: {"signal.side": "short", "risk.fraction": 0.5},
        0.0: {"signal.side": "flat", "risk.fraction": 0.0},
        1.0: {"signal.side": "long", "risk.fraction": 1.0},
    }
    times = pd.date_range("2024-01-01", periods=60, freq="h", tz="UTC")
    result = walk_forward(
        60,
        in_sample=10,
        out_of_sample=10,
        variants=(-1.0, 0.0, 1.0),
        evaluate=Momentum(market),
        params=params,
        timestamps=times,
        objective="total_return",
    )
    fraction, side = result.stability.params
    assert fraction.name == "risk.fraction"
    assert fraction.values == (1.0, 0.5, 1.0, 0.5, 1.0)
    assert (fraction.distinct, fraction.changes) == (2, 4)
    assert fraction.std == pytest.approx(np.std([1.0, 0.5, 1.0, 0.5, 1.0]))
    assert fraction.relative_spread == pytest.approx(fraction.std / 1.0)
    assert side.values == ("long", "short", "long", "short", "long")
    assert (side.std, side.relative_spread) == (None, None)
    first = result.windows[0]
    assert first.in_sample_times == (times[0], times[9])
    assert first.out_of_sample_times == (times[10], times[19])
    assert result.timestamps is not None and result.timestamps[0] == times[10]
    assert result.objective == "total_return"


def test_a_broken_evaluate_is_named() -> None:
    def short(start: int, stop: int, variants: Sequence[Hashable]) -> list[Evaluation]:
        return [Evaluation(1.0, np.zeros(stop - start - 1)) for _ in variants]

    with pytest.raises(
        ValueError, match=r"^evaluate returned 2 returns for 'a' on bars \[0, 3\), expected 3$"
    ):
        walk_forward(6, in_sample=3, out_of_sample=3, variants="ab", evaluate=short)

    def missing(start: int, stop: int, variants: Sequence[Hashable]) -> list[Evaluation]:
        return [Evaluation(1.0) for _ in variants[:1]]

    with pytest.raises(
        ValueError, match=r"^evaluate returned 1 evaluations for 2 variants on bars \[0, 3\)$"
    ):
        walk_forward(6, in_sample=3, out_of_sample=3, variants="ab", evaluate=missing)

    def no_returns(start: int, stop: int, variants: Sequence[Hashable]) -> list[Evaluation]:
        return [Evaluation(1.0) for _ in variants]

    with pytest.raises(
        ValueError, match=r"^evaluate returned no returns for 'a' on bars \[3, 6\)$"
    ):
        walk_forward(6, in_sample=3, out_of_sample=3, variants="ab", evaluate=no_returns)


def test_too_few_bars_are_refused_with_the_counts() -> None:
    with pytest.raises(
        UserError,
        match=r"^--walk-forward in_sample=100,out_of_sample=50 needs 150 bars, the data has 120$",
    ):
        walk_forward(
            120, in_sample=100, out_of_sample=50, variants="a", evaluate=Momentum(np.zeros(120))
        )


def test_parse_walk_forward() -> None:
    assert parse_walk_forward("in_sample=500,out_of_sample=100") == WalkForwardSpec(500, 100)
    assert parse_walk_forward(" in_sample = 5 , out_of_sample=2,step=3") == WalkForwardSpec(5, 2, 3)
    assert WalkForwardSpec(5, 2).stride == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("500", "expected in_sample=N,out_of_sample=M[,step=K], was '500'"),
        ("in_sample=5,,", "expected in_sample=N,out_of_sample=M[,step=K], was 'in_sample=5,,'"),
        (
            "in_smple=5,out_of_sample=2",
            "unknown key 'in_smple' (did you mean 'in_sample'?); "
            "expected in_sample=N,out_of_sample=M[,step=K]",
        ),
        ("in_sample=5,in_sample=6", "in_sample is given twice"),
        ("in_sample=0,out_of_sample=2", "in_sample must be a whole number > 0, was '0'"),
        ("in_sample=5,out_of_sample=-2", "out_of_sample must be a whole number > 0, was '-2'"),
        ("in_sample=5,out_of_sample=2.5", "out_of_sample must be a whole number > 0, was '2.5'"),
        ("in_sample=5,out_of_sample=", "out_of_sample must be a whole number > 0, was ''"),
        ("in_sample=5", "out_of_sample is missing; expected in_sample=N,out_of_sample=M[,step=K]"),
        (
            "in_sample=5,out_of_sample=4,step=2",
            "step (2) must be at least out_of_sample (4): out-of-sample windows would overlap",
        ),
    ],
)
def test_parse_walk_forward_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_walk_forward(text)
    assert str(caught.value) == message


def test_walk_forward_argument_reports_through_argparse(capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="tradeloom sweep")
    parser.add_argument("--walk-forward", type=walk_forward_argument)
    assert parser.parse_args(["--walk-forward", "in_sample=9,out_of_sample=3"]).walk_forward == (
        WalkForwardSpec(9, 3)
    )
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--walk-forward", "in_sample=9"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "tradeloom sweep: error: argument --walk-forward: out_of_sample is missing; "
        "expected in_sample=N,out_of_sample=M[,step=K]"
    )


def test_an_empty_window_chooses_nothing_trades_nothing_and_counts_no_change() -> None:
    """Bars before 6 have no prediction: windows 0 and 1 are empty (no choice, flat
    out-of-sample, never asked for an out-of-sample answer); the changes count among the
    windows that chose."""
    asked: list[tuple[int, int, tuple[Hashable, ...]]] = []

    def evaluate(start: int, stop: int, variants: Sequence[Hashable]) -> list[Evaluation]:
        asked.append((start, stop, tuple(variants)))
        empty = stop <= 6
        table = {"a": 1.0, "b": 2.0} if start < 9 else {"a": 3.0, "b": 2.0}
        return [
            Evaluation(math.nan if empty else table[str(v)], np.full(stop - start, 0.01), empty)
            for v in variants
        ]

    result = walk_forward(
        15, in_sample=3, out_of_sample=3, variants="ab", evaluate=evaluate,
        params={"a": {"x": 1}, "b": {"x": 2}},
    )  # fmt: skip
    assert [w.empty for w in result.windows] == [True, True, False, False]
    assert [w.chosen for w in result.windows] == [None, None, "b", "a"]
    assert np.array_equal(result.returns[:6], np.zeros(6))
    assert np.allclose(result.returns[6:], 0.01)
    assert (3, 6, ("a",)) not in asked and (3, 6, ("b",)) not in asked
    assert (result.stability.changes, result.stability.distinct, result.stability.empty) == (
        1,
        2,
        2,
    )
    (x,) = result.stability.params
    assert (x.values, x.changes, x.distinct) == ((None, None, 2, 1), 1, 2)
