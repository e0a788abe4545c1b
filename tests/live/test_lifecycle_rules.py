"""The lifecycle's refusals, written once (`tradeloom.live.lifecycle.rules`, issue 81).

Each rule over a `Lifecycle` built by hand, with its exact words: a command reads the
run's journal into one (`read_lifecycle`), the running process its memory
(`PromotionStage.lifecycle`), and both call these functions; the end-to-end tests
(`test_promotion_gate`, `test_canary`, `test_member_challengers`) show the command's
refusal and the process's journaled one in the same words.
"""

from __future__ import annotations

import pandas as pd

from tradeloom.engine.model_in_force import described_section, in_force_words, promoted_name
from tradeloom.live.lifecycle.rules import (
    DROPPED,
    IN_SHADOW,
    LIFECYCLE_KINDS,
    PROMOTED,
    InForce,
    Lifecycle,
    in_force_origin,
    in_force_refusal,
    lifecycle_of_frames,
    promotion_refusal,
    rollback_refusal,
)

SHA = "ab" * 32
SWAPPED_AT = {"bar": 167, "by": "gate"}


def test_a_swap_to_the_model_in_force_is_refused_naming_where_its_hash_lives() -> None:
    lifecycle = Lifecycle(in_force={"": InForce(SHA, in_force_origin(SWAPPED_AT))})
    assert in_force_refusal(lifecycle, SHA) == (
        f"model: it is the model in force already (sha256 {SHA}, the journal's "
        "model_swapped row of bar 167, by gate)"
    )
    assert in_force_refusal(lifecycle, "cd" * 32) is None
    assert in_force_refusal(lifecycle, SHA, "alpha") is None  # another strategy's
    own = Lifecycle(in_force={"": InForce(SHA, in_force_origin(None))})
    assert in_force_refusal(own, SHA) == (
        f"model: it is the model in force already (sha256 {SHA}, the strategy file's model section)"
    )
    trained = Lifecycle(in_force={"": InForce("", in_force_origin(None))})
    assert in_force_refusal(trained, "") is None  # a model trained in the run: no hash


def test_a_promotion_is_refused_during_a_stage_but_the_canarys_own() -> None:
    canary = Lifecycle(canary="next", challengers={"next": PROMOTED, "other": IN_SHADOW})
    assert promotion_refusal(canary, "next") is None  # the canary's end: full champion
    assert promotion_refusal(canary, "other") == (
        "the canary of next is in progress; promote or roll it back first"
    )
    watch = Lifecycle(watch="next", challengers={"other": IN_SHADOW})
    assert promotion_refusal(watch, "other") == (
        "the watch of next's promotion is in progress; roll it back or wait for its end"
    )


def test_a_promotion_names_the_challengers_and_why_one_is_gone() -> None:
    alone = Lifecycle(challengers={"a": IN_SHADOW, "b": DROPPED, "c": PROMOTED})
    assert promotion_refusal(alone, "a") is None
    assert promotion_refusal(alone, "b") == "challenger b was dropped; it is no longer in shadow"
    assert promotion_refusal(alone, "c") == (
        "challenger c was promoted already; it is no longer in shadow"
    )
    assert (
        promotion_refusal(alone, "nope") == "the strategy has no challenger nope (it has: a, b, c)"
    )
    assert promotion_refusal(Lifecycle(), "x") == "the strategy has no challenger x (it has: none)"
    portfolio = Lifecycle(challengers={"alpha/saved": IN_SHADOW}, portfolio=True)
    assert promotion_refusal(portfolio, "saved") == (
        "the portfolio file's strategies have no challenger saved (they have: alpha/saved; "
        "name one STRATEGY/NAME)"
    )


def test_a_rollback_needs_a_stage() -> None:
    assert rollback_refusal(Lifecycle()) == "no canary or watch is in progress"
    assert rollback_refusal(Lifecycle(canary="next")) is None
    assert rollback_refusal(Lifecycle(watch="next")) is None


def _frames(**rows: list[dict[str, object]]) -> dict[str, pd.DataFrame]:
    columns = {
        "challenger_failed": ["challenger"],
        "model_swapped": ["request"],
        "canary_started": ["challenger"],
        "watch_started": ["challenger"],
        "strategy_at_start": ["strategy", "document"],
        "run_started": ["document"],
        "config_reloaded": ["document"],
    }
    return {
        kind: pd.DataFrame(rows.get(kind, []), columns=columns.get(kind, ["challenger"]))
        for kind in LIFECYCLE_KINDS
    }


def test_the_journal_says_what_the_process_holds() -> None:
    """A command's `Lifecycle` from the journal's rows: the document in force (its last
    reload's), its challengers dropped or promoted, the canary in progress."""
    start = {"challengers": [{"name": "a"}, {"name": "b"}]}
    reloaded = {"challengers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}
    lifecycle = lifecycle_of_frames(
        _frames(
            run_started=[{"document": start}],
            config_reloaded=[{"document": reloaded}],
            challenger_failed=[{"challenger": "b"}],
            model_swapped=[{"request": "challenger:c@0001-promote.json"}],
            canary_started=[{"challenger": "c"}],
        )
    )
    assert lifecycle == Lifecycle(
        canary="c", challengers={"a": IN_SHADOW, "b": DROPPED, "c": PROMOTED}
    )
    members = lifecycle_of_frames(
        _frames(
            strategy_at_start=[
                {"strategy": "alpha", "document": {"challengers": [{"name": "saved"}]}},
                {"strategy": "beta", "document": {}},
            ]
        )
    )
    assert members == Lifecycle(challengers={"alpha/saved": IN_SHADOW}, portfolio=True)


def test_the_model_in_force_in_words() -> None:
    assert promoted_name("challenger:saved@0003-promote.json") == "saved"
    assert promoted_name("canary:saved") is None
    assert described_section({"from_run": "/srv/runs/r", "fold": 2}) == (
        "the saved model of run r (fold 2)"
    )
    assert described_section({"kind": "sklearn", "estimator": "x.Y"}) == (
        "the strategy's own sklearn model (x.Y), trained in the run"
    )
    swap = {"bar": 7, "by": "gate", "request": "challenger:saved", "source": "?", "sha256": SHA}
    assert in_force_words(swap, None) == (
        f"challenger saved's model, since bar 7 (by gate, sha256 {SHA[:12]})"
    )
    own = {
        **swap,
        "signal": '{"kind": "threshold", "min_interval": 3, "threshold": 0.6}',
        "sizing": '{"fraction": 0.25, "kind": "fixed_fraction"}',
    }
    assert in_force_words(own, None) == (
        "challenger saved's model with its signal rule threshold (min_interval 3, threshold "
        "0.6) and its sizing fixed_fraction (fraction 0.25), since bar 7 (by gate, sha256 "
        f"{SHA[:12]})"
    )
    assert in_force_words({**swap, "signal": "", "sizing": ""}, None) == in_force_words(swap, None)
    back = {**swap, "by": "canary", "request": "canary:saved", "bar": 9}
    assert in_force_words(back, None, [{"bar": 9, "challenger": "saved"}]) == (
        f"the champion's model, back from challenger saved's canary, since bar 9 (by canary, "
        f"sha256 {SHA[:12]})"
    )
