"""The promotion stage's shared pieces, alone: one reading of a stage's rules for the
canary and the watch (`review_stage`), one wording for a stage in progress
(`stage_in_progress`), and the parity rule's replay, started for every stage that has
the rule (`stage_twin`) and missed loudly (`Watched.parity_gap`).

The runs that use them are tests/live/test_canary.py and test_promotion_watch.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tradeloom.live.lifecycle.promotion_stage import review_stage, stage_in_progress
from tradeloom.live.lifecycle.promotion_watch import Watch
from tradeloom.live.lifecycle.watched import CanaryFigures, stage_twin
from tradeloom.schemas.strategy import RollbackWhen


def stage(drawdown: float, *, start: int, bars: int, stuck: bool = False) -> Any:
    """A stage since bar ``start`` for ``bars`` bars whose figures are ``drawdown``."""
    figures = CanaryFigures(drawdown, math.nan, math.nan, 0)
    return SimpleNamespace(
        stuck=stuck,
        rules=RollbackWhen(max_drawdown=0.01),
        started=SimpleNamespace(bar=start, bars=bars),
        figures=lambda session, judged=False: figures,
        parity_gap=lambda session: math.nan,
    )


def reviewed(watched: Any, bars: int) -> list[tuple[Any, ...]]:
    """What `review_stage` asked of ``watched`` at the close of a history of ``bars``."""
    asked: list[tuple[Any, ...]] = []
    session: Any = SimpleNamespace(history=range(bars))
    review_stage(
        watched,
        session,
        roll_back=lambda reason, rule: asked.append(("back", reason, rule)),
        pass_=lambda n: asked.append(("pass", n)),
    )
    return asked


def test_a_rule_that_fires_rolls_back_with_its_reason() -> None:
    assert reviewed(stage(0.02, start=10, bars=5), 14) == [
        (
            "back",
            "max_drawdown: 0.02 past the limit 0.01 after 3 bars",
            ("max_drawdown", 0.02, 0.01),
        )
    ]


def test_a_stage_passes_once_its_bars_are_done_and_not_before() -> None:
    assert reviewed(stage(0.0, start=10, bars=5), 15) == []
    assert reviewed(stage(0.0, start=10, bars=5), 16) == [("pass", 5)]
    assert reviewed(stage(0.02, start=10, bars=5), 16)[0][0] == "back"  # a rule first


def test_a_stuck_stage_is_read_no_more() -> None:
    assert reviewed(stage(0.02, start=10, bars=5, stuck=True), 16) == []


def test_a_stage_in_progress_has_one_wording() -> None:
    assert stage_in_progress("next", None) == (
        "the canary of next is in progress; promote or roll it back first"
    )
    assert stage_in_progress(None, "next") == (
        "the watch of next's promotion is in progress; roll it back or wait for its end"
    )
    assert stage_in_progress(None, None) is None


def test_a_stage_without_the_gap_rule_has_no_replay() -> None:
    started: Any = SimpleNamespace(bar=3, equity=1.0)
    session: Any = None  # never read: no replay is built
    assert stage_twin(session, session, started, RollbackWhen(max_drawdown=0.1), Path(".")) is None


def test_a_gap_rule_without_its_replay_is_refused_loudly() -> None:
    started: Any = SimpleNamespace(challenger="next", bar=3)
    watch = Watch(started, RollbackWhen(max_parity_gap=0.01), 1)  # its twin never started
    refused = "the stage of next since bar 3 has a max_parity_gap rule and no replay of the run"
    with pytest.raises(RuntimeError, match=rf"^{refused} to read it from$"):
        watch.parity_gap(None)  # type: ignore[arg-type]
    assert math.isnan(Watch(started, RollbackWhen(), 1).parity_gap(None))  # type: ignore[arg-type]
