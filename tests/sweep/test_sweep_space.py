"""The axes of a sweep: ``--grid`` lists and ranges, the grid, the seeded random draw, the
sweep file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloom.errors import ConfigError, Problem
from tradeloom.sweep.space import Axis, Space, axis_from_text, parse_grid
from tradeloom.sweep.sweep_file import load_sweep_file

HERE = Path(__file__).resolve().parent


def test_a_list_axis_reads_each_value_as_yaml() -> None:
    axis = axis_from_text("signal.threshold=0.1,0.2,abc,true")
    assert isinstance(axis, Axis)
    assert axis.values == (0.1, 0.2, "abc", True)
    assert axis.where == "--grid signal.threshold=0.1,0.2,abc,true"


def test_a_range_includes_its_stop_and_keeps_decimals_exact() -> None:
    axis = axis_from_text("signal.threshold=0.1:0.3:0.1")
    assert isinstance(axis, Axis)
    assert axis.values == (0.1, 0.2, 0.3)
    ints = axis_from_text("risk.max_holding_bars=4:10:3")
    assert isinstance(ints, Axis) and ints.values == (4, 7, 10)


def test_a_timestamp_is_a_value_not_a_range() -> None:
    axis = axis_from_text("data.start=2023-01-01T00:00:00Z")
    assert isinstance(axis, Axis) and len(axis.values) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "signal.threshold=0.1:0.3:0",
            "--grid signal.threshold=0.1:0.3:0 signal.threshold: step must not be 0",
        ),
        (
            "signal.threshold=0.3:0.1:0.1",
            "--grid signal.threshold=0.3:0.1:0.1 signal.threshold: "
            "stop (0.1) is before start (0.3)",
        ),
        (
            "signal.threshold=0.1:x:0.1",
            "--grid signal.threshold=0.1:x:0.1 signal.threshold: stop must be a number, was 'x'",
        ),
        (
            "signal.threshold=0.1,,0.2",
            "--grid signal.threshold=0.1,,0.2 signal.threshold: "
            "a value is empty (write V1,V2,... without empty items)",
        ),
        (
            "signal.threshold=0.1,0.1",
            "--grid signal.threshold=0.1,0.1 signal.threshold: the value 0.1 is given twice",
        ),
        (
            "threshold",
            "--grid threshold: expected KEY.PATH=V1,V2,... or KEY.PATH=START:STOP:STEP, "
            "e.g. signal.threshold=0.1,0.2,0.3",
        ),
    ],
)
def test_a_bad_axis_is_one_line_naming_the_argument(text: str, message: str) -> None:
    problem = axis_from_text(text)
    assert isinstance(problem, Problem)
    assert str(problem) == message


def test_every_bad_axis_is_reported_together() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_grid(["a.b=1:0:1", "a.c=1,1", "a.d=1,2"])
    assert len(caught.value.problems) == 2


def test_the_grid_runs_the_first_axis_slowest_and_at_matches_it() -> None:
    space = Space((Axis("a", (1, 2), "x"), Axis("b", ("p", "q", "r"), "y")))
    grid = [v.values for v in space.grid()]
    assert grid == [(1, "p"), (1, "q"), (1, "r"), (2, "p"), (2, "q"), (2, "r")]
    assert [space.at(i).values for i in range(6)] == grid


def test_the_random_draw_is_distinct_and_seeded() -> None:
    space = Space((Axis("a", tuple(range(10)), "x"), Axis("b", tuple(range(10)), "y")))
    first = space.sample(30, seed=3)
    assert len({v.values for v in first}) == 30
    assert first == space.sample(30, seed=3)
    assert first != space.sample(30, seed=4)
    assert len(space.sample(500, seed=0)) == 100  # never more than the grid


def test_a_sweep_file_gives_axes_located_at_their_keys(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text((HERE / "small_strategy.yaml").read_text())
    sweep = tmp_path / "s.sweep.yaml"
    sweep.write_text(
        "strategy: s.yaml\n"
        "grid:\n"
        "  signal.threshold: [0.02, 0.04]\n"
        "  risk.sizing.fraction: {start: 0.1, stop: 0.3, step: 0.1}\n"
        "objective: sortino\n"
    )
    settings, space, strategy = load_sweep_file(sweep)
    assert strategy == tmp_path / "s.yaml"
    assert settings.objective == "sortino"
    assert [a.values for a in space.axes] == [(0.02, 0.04), (0.1, 0.2, 0.3)]
    assert space.axes[0].where == f"{sweep}:3:3"


def test_a_bad_sweep_file_names_file_line_and_column(tmp_path: Path) -> None:
    sweep = tmp_path / "s.sweep.yaml"
    sweep.write_text(
        "strategy: missing.yaml\n"
        "grid:\n"
        "  signal.threshold: {start: 0.3, stop: 0.1, step: 0.1}\n"
        "objectiv: sharpe\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_sweep_file(sweep)
    # every problem in one round: an unknown key hides none of the others
    assert caught.value.lines() == [
        f"{sweep}:1:11 strategy: no strategy file at {tmp_path / 'missing.yaml'}",
        f"{sweep}:3:3 signal.threshold: stop (0.1) is before start (0.3)",
        f"{sweep}:4:1 objectiv: unknown key (did you mean 'objective'?)",
    ]
