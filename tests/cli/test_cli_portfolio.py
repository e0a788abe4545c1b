"""``signal.top_k`` and ``risk.portfolio`` through the ``tradeloom`` command, on one symbol.

A run of a YAML strategy over a CSV market this test writes journals the portfolio
refusal with its code and message; bad values are refused by ``tradeloom validate``
with one located line and exit 2.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.builders import write_bars
from tradeloom.cli.main import main
from tradeloom.journal import read_rows

STRATEGY = """\
name: concentrated
data:
  kind: csv
  path: bars.csv
  symbol: BTC/USDT
features:
  - kind: log_return
    period: 1
model:
  kind: precomputed
  column: p_up
signal:
  kind: threshold
  threshold: 0.3
  top_k: 1
risk:
  sizing:
    kind: fixed_fraction
    fraction: 0.6
  portfolio:
    max_weight: 0.5
    groups: {majors: [BTC/USDT]}
    max_group_exposure: 0.5
execution:
  kind: simulated
  initial_cash: 10000
  fill: close
"""


def _bars(folder: Path) -> None:
    write_bars(folder, [100.0] * 3, [0.9, math.nan, math.nan], wick=0.0, volume=1e6)


def test_a_position_over_the_weight_limit_is_refused_and_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _bars(tmp_path)
    (tmp_path / "s.yaml").write_text(STRATEGY, encoding="utf-8")
    assert main(["run", "s.yaml", "--out", "run"]) == 0
    journal = tmp_path / "run" / "journal.sqlite"
    (rejection,) = read_rows(journal, ["rejection"])
    assert rejection.bar == 0
    assert rejection.values["code"] == "MAX_WEIGHT"
    assert rejection.values["message"] == "weight=0.6000 of equity, limit=0.5"
    assert list(read_rows(journal, ["order"])) == []


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("  top_k: 1\n", "  top_k: 0\n", "s.yaml:15:10 signal.top_k: must be >= 1, was 0"),
        (
            "    groups: {majors: [BTC/USDT]}\n",
            "    groups: {majors: [BTC/USD]}\n",
            "s.yaml:22:23 risk.portfolio.groups.majors.0: unknown symbol 'BTC/USD' (did you "
            "mean 'BTC/USDT'?); the data's symbols are 'BTC/USDT'",
        ),
        (
            "    max_group_exposure: 0.5\n",
            "",
            "s.yaml:21:5 risk.portfolio: groups need max_group_exposure, the cap of each "
            "group's exposure",
        ),
    ],
)
def test_portfolio_settings_that_cannot_hold_are_refused_at_validate(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    line: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    _bars(tmp_path)
    assert STRATEGY.count(old) == 1
    (tmp_path / "s.yaml").write_text(STRATEGY.replace(old, new), encoding="utf-8")
    assert main(["validate", "s.yaml"]) == 2
    assert capsys.readouterr() == ("", line + "\n")
