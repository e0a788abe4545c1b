"""A run's stages are timed only while recorded, by the clock the recording chose."""

from __future__ import annotations

import itertools

from tradeloom.runtime.stage_times import recording, stage


def test_stages_are_recorded_by_the_chosen_clock_and_only_while_recording() -> None:
    with stage("unrecorded"):
        pass
    ticks = itertools.count(0.0, 0.5)
    with recording(lambda: next(ticks)) as outer:
        with stage("a"), stage("b"):  # a: 0.0 -> 1.5, b inside it: 0.5 -> 1.0
            pass
        with recording() as inner, stage("c"):  # the wall clock again, inside
            pass
        with stage("d"):  # the outer clock is back: 2.0 -> 2.5
            pass
    assert outer == [("b", 0.5), ("a", 1.5), ("d", 0.5)]
    assert [name for name, _ in inner] == ["c"] and 0 <= inner[0][1] < 1
    with stage("after"):
        pass
    assert [name for name, _ in outer] == ["b", "a", "d"]
