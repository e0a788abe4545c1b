"""The one "did you mean" rule: case-blind, nearest by difflib, ties by the shared start."""

from __future__ import annotations

import pytest

from tradeloom.suggestions import closest, did_you_mean


@pytest.mark.parametrize(
    ("word", "choices", "expected"),
    [
        ("RSI", ["rsi", "ema"], "rsi"),  # case is no difference
        ("SHARPE", ["sharpe", "sortino"], "sharpe"),
        ("Paper", ["backtest", "paper", "live"], "paper"),
        ("sizng", ["sizing", "rules"], "sizing"),
        ("XNYZ", ["XNZE", "XNYS"], "XNYS"),  # equally near: the longer shared start
        ("knd", ["kind"], "kind"),
        ("period", ["kind"], None),
        ("anything", [], None),
    ],
)
def test_closest_names_the_likeliest_misspelt_choice(
    word: str, choices: list[str], expected: str | None
) -> None:
    assert closest(word, choices) == expected


def test_did_you_mean_is_a_suffix_or_nothing() -> None:
    assert did_you_mean("Sortin", ["sharpe", "sortino"]) == " (did you mean 'sortino'?)"
    assert did_you_mean("zzz", ["sharpe"]) == ""
