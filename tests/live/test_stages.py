"""The bar-boundary stages' one table of control actions (`tradeloom.live.lifecycle.stages`)."""

from __future__ import annotations

import pytest

from tradeloom.engine.control import ACTIONS, SESSION_ACTIONS
from tradeloom.live.lifecycle.challenger_stages import MemberChallengers, Promotions
from tradeloom.live.lifecycle.stages import answering
from tradeloom.live.lifecycle.swap_stage import ModelSwapStage
from tradeloom.live.tick.services import Stage


class _Asks(Stage):
    def __init__(self, *actions: str) -> None:
        self.actions = actions


def test_each_action_but_the_kill_switch_is_answered_by_the_one_stage_declaring_it() -> None:
    swap, promote = _Asks("swap"), _Asks("promote", "rollback")
    table = answering([swap, _Asks(), promote])
    assert dict(table) == {"swap": swap, "promote": promote, "rollback": promote}
    assert set(table) | set(SESSION_ACTIONS) == set(ACTIONS)


def test_two_stages_declaring_one_action_are_refused_naming_both() -> None:
    with pytest.raises(ValueError, match="'rollback' is answered by two stages: _Asks and _Asks"):
        answering([_Asks("swap", "promote", "rollback"), _Asks("rollback")])


@pytest.mark.parametrize(
    "stages",
    [[_Asks("swap")], [_Asks("swap", "promote", "rollback", "kill")]],
    ids=["one unanswered", "the session's own"],
)
def test_an_unanswered_or_a_session_action_is_refused(stages: list[Stage]) -> None:
    with pytest.raises(ValueError, match="the stages answer the control actions"):
        answering(stages)


def test_the_lifecycle_stages_declare_the_requests_they_answer() -> None:
    assert ModelSwapStage.actions == ("swap",)
    assert Promotions.actions == MemberChallengers.actions == ("promote", "rollback")
    assert Stage.actions == ()
