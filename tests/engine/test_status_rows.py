"""``tradeloom status`` from the journal's rows (`tradeloom.engine.status_rows`) says what
the frames' reader (`read_run`) says, to the byte, for every shape of run it reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.builders import OMIT, counted_yaml_parses, strategy_text
from tradeloom.cli.main import main
from tradeloom.engine.status import read_run
from tradeloom.engine.status_rows import _group_sums, read_status
from tradeloom.engine.status_text import format_status

NOW = pd.Timestamp("2030-06-01T12:34:56.789Z")


def assert_rows_read_as_frames(run_dir: Path) -> None:
    """Assert the rows' status of ``run_dir`` is the frames', as text and as JSON."""
    rows = read_status(run_dir, now=NOW)
    frames = read_run(run_dir, now=NOW).status
    assert format_status(rows) == format_status(frames)
    assert rows.to_json() == frames.to_json()


def paper(tmp_path: Path, text: str, bars: int, *more: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "s.yaml").write_text(text)
    out = tmp_path / "run"
    args = ["-q", "run", str(tmp_path / "s.yaml"), "--mode", "paper", "--clock", "simulated"]
    code = main([*args, "--speed", "max", "--max-bars", str(bars), "--out", str(out), *more])
    assert code == 0
    return out


MONITORED = strategy_text(
    name="rows_demo",
    signal={"threshold": 0.001},
    execution={"allow_short": True},
    monitoring=[
        {
            "kind": "rolling_auc",
            "window": 30,
            "min_samples": 10,
            "warning_below": 0.9,
            "critical_below": 0.1,
        }
    ],
)


@pytest.mark.slow
def test_a_one_market_paper_run_reads_the_same_and_again_after_it_continues(
    tmp_path: Path,
) -> None:
    run = paper(tmp_path, MONITORED, 30)
    assert_rows_read_as_frames(run)
    status = read_status(run, now=NOW)
    assert status.fills > 0 and status.health is not None, "a run that shows too little"
    assert paper(tmp_path, MONITORED, 5) == run  # the same command continues it
    assert_rows_read_as_frames(run)


def test_status_parses_the_runs_strategy_file_once(tmp_path: Path) -> None:
    """The journal's check of its strategy file (`tradeloom.journal.owner`) and the
    timeframe status reads from it share one parse: PyYAML's is a tenth of a status."""
    run = paper(tmp_path, MONITORED, 5)
    with counted_yaml_parses() as seen:
        assert read_status(run, now=NOW).bars == 5
    assert seen == [run / "strategy.yaml"]


@pytest.mark.slow
def test_a_universe_paper_run_and_a_backtest_are_read_by_the_frames(tmp_path: Path) -> None:
    universe = strategy_text(
        name="rows_universe",
        seed=3,
        data={"symbol": OMIT, "symbols": ["BTC/USDT", "ETH/USDT"]},
        signal={"threshold": 0.001},
        risk={"sizing": {"fraction": 0.3}},
        execution={"initial_cash": 50000, "allow_short": True},
    )
    assert_rows_read_as_frames(paper(tmp_path / "u", universe, 6))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "s.yaml").write_text(MONITORED)
    out = tmp_path / "b" / "run"
    assert main(["-q", "run", str(tmp_path / "b" / "s.yaml"), "--out", str(out)]) == 0
    assert_rows_read_as_frames(out)


@pytest.mark.parametrize("keys", ["a", "ab", "abc", "abcd"])
@pytest.mark.parametrize("order", ["sorted", "shuffled", "with NaN"])
def test_a_group_sum_is_pandas_groupby_sum_to_the_bit(keys: str, order: str) -> None:
    rng = np.random.default_rng(len(keys))
    for _ in range(50):
        n = int(rng.integers(1, 120))
        values = rng.normal(size=n) * 10.0 ** rng.integers(-3, 17, size=n)
        labels = rng.choice(list(keys), size=n).astype(object)
        if order == "sorted":
            labels = np.sort(labels)
        if order == "with NaN":
            values[rng.integers(0, n)] = np.nan
        frame = pd.DataFrame({"k": labels, "v": values})
        expected = frame.groupby("k", sort=True)["v"].sum().to_dict()
        assert _group_sums(zip(labels, values.tolist(), strict=True)) == expected


def test_a_group_sum_skips_no_key_and_keeps_infinities() -> None:
    values = [0.1, 1e16, -1e16, 0.2, 0.3, float("nan"), 1 / 3, 2.5e-9, -0.7, float("inf"), 4.0]
    keys = ["b", "a", "a", "b", "a", "a", "c", "c", "b", "d", None]
    frame = pd.DataFrame({"k": keys, "v": values})
    expected = frame.groupby("k", sort=True)["v"].sum().to_dict()
    assert _group_sums(zip(keys, values, strict=True)) == expected
