"""A run collects garbage less often while it builds its results, a backtest command
hardly at all while it starts up, and each leaves the pace as it found it
(`tradeloom.runtime.collection_pace`)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from tradeloom.runtime.collection_pace import (
    RUN_THRESHOLD,
    START_UP_THRESHOLD,
    fewer_collections,
    settle,
    start_up,
)


def test_the_pace_is_slower_inside_and_restored_after_even_on_failure() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (RUN_THRESHOLD, before[1], before[2])
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a failed run")
    assert gc.get_threshold() == before


def test_a_caller_that_already_collects_less_often_keeps_its_pace() -> None:
    before = gc.get_threshold()
    gc.set_threshold(RUN_THRESHOLD * 3, before[1], before[2])
    try:
        with fewer_collections():
            assert gc.get_threshold()[0] == RUN_THRESHOLD * 3
    finally:
        gc.set_threshold(*before)


def test_a_start_up_collects_rarely_then_settles_at_the_run_pace_leaving_nothing_frozen() -> None:
    before = gc.get_threshold()
    with start_up():
        assert gc.get_threshold() == (START_UP_THRESHOLD, before[1], before[2])
        made = [[index] for index in range(1000)]  # objects the start-up keeps
        settle()
        assert gc.get_threshold() == (RUN_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() >= len(made)  # never walked again in the run
        with fewer_collections():  # the run's own block keeps the run's pace
            assert gc.get_threshold() == (RUN_THRESHOLD, before[1], before[2])
        assert gc.get_threshold() == (RUN_THRESHOLD, before[1], before[2])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # an embedding program's collector as it was
    with pytest.raises(RuntimeError), start_up():
        raise RuntimeError("a start-up that failed before its run")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_settle_outside_a_start_up_changes_nothing() -> None:
    before = gc.get_threshold()
    settle()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_backtest_and_the_answering_commands_start_up_at_the_start_up_pace_a_live_run_not(
    tmp_path: Path,
) -> None:
    from tradeloom.cli.main import _parser, _start_up_pace

    strategy = str(tmp_path / "s.yaml")
    before = gc.get_threshold()
    with _start_up_pace(_parser().parse_args(["run", strategy])):
        assert gc.get_threshold() == (max(before[0], START_UP_THRESHOLD), before[1], before[2])
    assert gc.get_threshold() == before
    for mode in ("paper", "live"):
        with _start_up_pace(_parser().parse_args(["run", strategy, "--mode", mode])):
            assert gc.get_threshold() == before
    # the commands that read and answer keep the start-up pace to their end
    run_dir = str(tmp_path / "run")
    for argv in (
        ["validate", strategy],
        ["status", run_dir],
        ["journal", "verify", run_dir],
        ["kill", run_dir],
        ["resume", run_dir],
    ):
        with _start_up_pace(_parser().parse_args(argv)):
            assert gc.get_threshold()[0] == max(before[0], START_UP_THRESHOLD), argv
        assert gc.get_threshold() == before
    for argv in (["report", run_dir], ["sweep", strategy]):  # long work: the default pace
        with _start_up_pace(_parser().parse_args(argv)):
            assert gc.get_threshold() == before, argv


def test_what_a_start_up_made_is_aged_not_walked_when_its_pace_is_restored() -> None:
    """The young generation is left empty: restoring the caller's pace does not make the
    next allocation walk everything the start-up made (`_aged`)."""
    before = gc.get_threshold()
    gc.collect()
    with start_up():
        made = [[index] for index in range(5 * before[0])]  # past the caller's threshold
        assert gc.get_count()[0] >= len(made)
    assert gc.get_count()[0] < before[0]  # no young collection due
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    assert made[-1] == [len(made) - 1]
