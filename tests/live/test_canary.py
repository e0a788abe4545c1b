"""A canary stage and its rollback on a paper run (``--clock simulated``, in process).

Seeded candidates on the bars of `tests.live.test_challengers`: the champion is the
registry's first fold (a saved model: a rollback swaps its file back in), the challenger
its latest fold, gated with a canary. A passed gate swaps the challenger's model in at a
fraction of the champion's size (each accepted entry's ``target_fraction`` is the
sizing's fraction times the canary's), the champion decides in shadow (``(champion)``
rows), and after the canary's bars the challenger is the full champion; a rule that
fires (a drawdown limit) puts the champion's model back by the swap's path. Each step is
journaled with its figures, which a recomputation from the journal equals. kill -9 at
the canary's start, in its middle and at its rollback (before and after the commit):
the restart takes the right stage up again and its journal is the uninterrupted run's,
no order twice (and a live run on the exchange emulator killed in its canary sends no
client order id twice). By hand: ``tradeloom promote`` and ``tradeloom rollback`` through
the mailbox (a model swap is refused while a canary runs); ``tradeloom status`` shows the
stage.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.live.live_emulated import trained_registry
from tests.live.test_challengers import play, strategy
from tradeloom.cli.main import main
from tradeloom.engine.control import request_promote, request_swap
from tradeloom.journal import read_rows, verify
from tradeloom.live.lifecycle import promotion, promotion_stage
from tradeloom.live.lifecycle.canary import canary_figures
from tradeloom.live.lifecycle.promotion_stage import PromotionStage
from tradeloom.live.lifecycle.watched import CHAMPION_SHADOW, fired
from tradeloom.schemas.strategy import RollbackWhen
from tradeloom.stats import auc, calibration_error

BARS = 40
"""Bars each run trades live."""

SIZING = 0.5
"""The strategy's fixed fraction (`tests.live.test_challengers.strategy`)."""

FRACTION = 0.25
CANARY_BARS = 6
TRADING = {"kind": "threshold", "threshold": 0.02}
GATE = {"min_bars": 4, "alpha": 0.5}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backtest's run directory whose folds were saved (champion and challenger)."""
    return trained_registry(tmp_path_factory.mktemp("registry"))


def canaried(registry: Path, rollback_when: dict[str, Any] | None = None) -> dict[str, Any]:
    """The champion (the registry's first fold) with challenger ``next`` (its latest),
    gated with a canary of `FRACTION` for `CANARY_BARS` bars."""
    canary: dict[str, Any] = {"fraction": FRACTION, "bars": CANARY_BARS}
    if rollback_when is not None:
        canary["rollback_when"] = rollback_when
    entry = {
        "name": "next",
        "model": {"kind": "saved", "from_run": str(registry)},
        "promote_when": {**GATE, "canary": canary},
    }
    champion = {"kind": "saved", "from_run": str(registry), "fold": 0}
    return strategy(champion, [entry], signal=TRADING)


def rows(run: Path, kind: str) -> list[dict[str, Any]]:
    return [
        {"bar": r.bar, "timestamp": r.timestamp, **r.values}
        for r in read_rows(run / "journal.sqlite", [kind])
    ]


def kept(run: Path) -> list[tuple[Any, ...]]:
    """What a restart must keep: every row of the run's decisions and books, in order
    (NaN as a word, to compare). Not compared: the wall time; a shadow's champion equity
    at a bar a restart journals again (kill -9 lost it: NaN, as a challenger's); the
    model a swap replaced, in words (a restart loads it from its kept copy)."""
    kinds = [
        "model_swapped", "canary_started", "canary_passed", "canary_rolled_back",
        "challenger_gate", "challenger_bar", "challenger_fill", "signal", "risk_decision",
        "order", "fill", "live_bar",
    ]  # fmt: skip
    loose = {"wall_time", "champion_equity", "previous"}
    return [
        (
            r.kind,
            r.bar,
            tuple(sorted((k, _word(v, str(run))) for k, v in r.values.items() if k not in loose)),
        )
        for r in read_rows(run / "journal.sqlite", kinds)
    ]


def _word(value: Any, run: str) -> Any:
    if isinstance(value, str) and value.startswith("shadow_demo-"):
        return value.rsplit("-", 1)[-1]  # a client order id: its run's key is its folder's
    if isinstance(value, str):
        return value.replace(run, "RUN_DIR")  # a kept file's path, in words
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, list):
        return tuple(_word(v, run) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _word(v, run)) for k, v in value.items()))
    return value


@pytest.fixture(scope="module")
def passed(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run whose challenger is promoted through its canary."""
    code, run = play(tmp_path_factory.mktemp("passed"), canaried(registry), BARS)
    assert code == 0
    return run


@pytest.fixture(scope="module")
def rolled(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run whose canary is rolled back by its drawdown limit."""
    document = canaried(registry, {"max_drawdown": LIMIT})
    code, run = play(tmp_path_factory.mktemp("rolled"), document, BARS)
    assert code == 0
    return run


LIMIT = 0.0005
"""A drawdown limit the canary's first losing bars pass (its rollback's rule)."""


def test_a_passed_gate_promotes_through_the_canary_to_full_champion(passed: Path) -> None:
    run = passed
    [gate] = [g for g in rows(run, "challenger_gate") if g["verdict"] == "promote"]
    [started] = rows(run, "canary_started")
    [ended] = rows(run, "canary_passed")
    swapped = rows(run, "model_swapped")
    assert [(s["bar"], s["by"], s["request"]) for s in swapped] == [
        (gate["bar"], "gate", "challenger:next")
    ]
    start = started["bar"]
    assert start == gate["bar"]
    assert (started["challenger"], started["fraction"], started["bars"], started["by"]) == (
        "next",
        FRACTION,
        CANARY_BARS,
        "gate",
    )
    assert started["champion_sha256"] == swapped[0]["previous_sha256"]
    assert (run / started["champion"]["path"]).is_file()  # kept: a rollback needs it
    assert (ended["bar"], ended["bars"], ended["by"]) == (
        start + CANARY_BARS,
        CANARY_BARS,
        "canary",
    )
    assert ended["drawdown"] == pytest.approx(drawdown(run, start, ended["bar"]), abs=1e-12)
    # the champion decided in shadow during the canary, and only then
    shadow = [r["bar"] for r in rows(run, "challenger_bar") if r["challenger"] == CHAMPION_SHADOW]
    assert shadow == list(range(start + 1, ended["bar"] + 1))
    # the decisions: at the canary's fraction of the champion's sizing, full size after
    sizes = accepted(run)
    during = [size for bar, size in sizes if start < bar <= ended["bar"]]
    outside = [size for bar, size in sizes if not start < bar <= ended["bar"]]
    assert during, "the candidate never entered during the canary"
    assert outside, "no entry outside the canary"
    assert all(size == pytest.approx(SIZING * FRACTION, rel=1e-12) for size in during)
    assert all(size == pytest.approx(SIZING, rel=1e-12) for size in outside)


def accepted(run: Path) -> list[tuple[int, float]]:
    """Each accepted entry's bar and the fraction of equity it holds."""
    return [
        (r["bar"], abs(r["target_fraction"]))
        for r in rows(run, "risk_decision")
        if r["outcome"] == "accepted"
    ]


def equity_at(run: Path) -> dict[int, float]:
    """The run's equity at each live bar's close (its equity.csv, by the bar's time)."""
    import pandas as pd

    frame = pd.read_csv(run / "equity.csv")
    by_time = dict(zip(pd.to_datetime(frame["timestamp"], utc=True), frame["equity"], strict=True))
    return {r["bar"]: float(by_time[pd.Timestamp(r["timestamp"])]) for r in rows(run, "live_bar")}


def drawdown(run: Path, start: int, bar: int) -> float:
    equity = equity_at(run)
    curve = [equity[t] for t in range(start, bar + 1)]
    return max(0.0, 1.0 - curve[-1] / max(curve))


def test_a_drawdown_past_its_limit_rolls_the_canary_back(rolled: Path, registry: Path) -> None:
    run = rolled
    [started] = rows(run, "canary_started")
    [back] = rows(run, "canary_rolled_back")
    assert rows(run, "canary_passed") == []
    assert (back["challenger"], back["by"], back["rule"], back["limit"]) == (
        "next",
        "canary",
        "max_drawdown",
        LIMIT,
    )
    assert back["figure"] > LIMIT and back["figure"] == back["drawdown"]
    assert back["figure"] == pytest.approx(drawdown(run, started["bar"], back["bar"]), abs=1e-12)
    # every bar before it: the rule did not fire
    for bar in range(started["bar"] + 1, back["bar"]):
        assert drawdown(run, started["bar"], bar) <= LIMIT
    promoted, returned = rows(run, "model_swapped")
    assert (returned["bar"], returned["by"], returned["request"]) == (
        back["bar"],
        "canary",
        "canary:next",
    )
    assert returned["sha256"] == promoted["previous_sha256"] == started["champion_sha256"]
    # after it, the champion's model decides again at its full size
    after = [size for bar, size in accepted(run) if bar > back["bar"]]
    assert all(size == pytest.approx(SIZING) for size in after)
    code, alone = play(run.parent / "alone", canaried(registry) | {"challengers": []}, BARS)
    assert code == 0
    mine = {r["bar"]: r["probability"] for r in rows(run, "live_bar")}
    theirs = {r["bar"]: r["probability"] for r in rows(alone, "live_bar")}
    assert [mine[b] for b in mine if b > back["bar"]] == [
        theirs[b] for b in mine if b > back["bar"]
    ]
    assert [mine[b] for b in mine if started["bar"] < b <= back["bar"]] != [
        theirs[b] for b in mine if started["bar"] < b <= back["bar"]
    ]


def die(store: Any) -> None:
    """kill -9: what is not committed is lost."""
    store._buffer.clear()
    store._buffered = 0
    store._db.close()
    raise KeyboardInterrupt("kill -9")


def bars_played(run: Path) -> int:
    return len({r["bar"] for r in rows(run, "live_bar")})


def test_a_kill_at_the_canarys_start_restarts_in_the_canary(
    registry: Path, passed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote = promotion.promote_passed

    def dying(*args: Any) -> Any:
        canary = promote(*args)
        if canary is not None:  # committed with its swap: kill -9 now
            die(args[0].journal)
        return canary

    document = canaried(registry)
    with monkeypatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, run = play(tmp_path, document)
    assert died != 0
    assert len(rows(run, "canary_started")) == 1
    code, run = play(tmp_path, document, BARS - bars_played(run))
    assert code == 0
    assert kept(run) == kept(passed)


def killed_in_the_canary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: dict[str, Any], bars: int
) -> Path:
    """Play ``document`` until kill -9 strikes ``bars`` bars into its canary (that bar's
    shadow rows not committed); return the run folder."""
    after_bar = PromotionStage.after_bar

    def dying(self: PromotionStage, session: Any) -> None:
        after_bar(self, session)
        canary = self.canary
        if canary is not None and len(session.history) - 1 - canary.started.bar == bars:
            die(self.books.journal)

    with monkeypatch.context() as patched:
        patched.setattr(PromotionStage, "after_bar", dying)
        died, run = play(tmp_path, document)
    assert died != 0
    assert rows(run, "canary_passed") == rows(run, "canary_rolled_back") == []
    return run


def test_a_kill_in_the_middle_of_the_canary_loses_nothing(
    registry: Path, passed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = canaried(registry)
    run = killed_in_the_canary(tmp_path, monkeypatch, document, 3)
    code, run = play(tmp_path, document, BARS - bars_played(run))
    assert code == 0
    assert kept(run) == kept(passed)
    ids = [r["id"] for r in rows(run, "order")]
    assert len(ids) == len(set(ids))


def test_a_canary_journals_its_rollback_rules(rolled: Path) -> None:
    [started] = rows(rolled, "canary_started")
    rules = RollbackWhen.model_validate_json(started["rollback_when"])
    assert rules == RollbackWhen(max_drawdown=LIMIT)
    assert rules.min_samples == 20  # every field, the defaults too


def test_a_restart_in_a_canary_whose_entry_left_the_file_rolls_back_at_the_same_bar(
    registry: Path, rolled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The canary's rules are its ``canary_started`` row's: with no challenger left in
    the file (the restart has no books but the champion's shadow), the restart goes on
    in the canary and rolls back where the uninterrupted run did."""
    document = canaried(registry, {"max_drawdown": LIMIT})
    run = killed_in_the_canary(tmp_path, monkeypatch, document, 1)
    code, run = play(tmp_path, {**document, "challengers": []}, BARS - bars_played(run))
    assert code == 0
    [back] = rows(run, "canary_rolled_back")
    [uninterrupted] = rows(rolled, "canary_rolled_back")
    assert (back["bar"], back["rule"], back["figure"]) == (
        uninterrupted["bar"],
        "max_drawdown",
        uninterrupted["figure"],
    )
    assert kept(run) == kept(rolled)


def test_a_restart_in_a_canary_refuses_its_rules_edited_while_down(
    registry: Path, rolled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit of the canary's entry is refused in one line (exit 2), as a reload refuses
    it, nothing journaled; put back, the restart rolls back at the same bar."""
    document = canaried(registry, {"max_drawdown": LIMIT})
    run = killed_in_the_canary(tmp_path, monkeypatch, document, 1)
    head = verify(run / "journal.sqlite").head
    edited = canaried(registry, {"max_drawdown": 0.5, "min_samples": 5})
    code, _ = play(tmp_path, edited, BARS - bars_played(run))
    assert code == 2
    assert verify(run / "journal.sqlite").head == head
    code, run = play(tmp_path, document, BARS - bars_played(run))
    assert code == 0
    assert kept(run) == kept(rolled)


def test_a_kill_between_the_gates_verdict_and_its_commit_promotes_at_the_same_bar(
    registry: Path, passed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bar's rows committed (the gate's ``promote`` verdict), the promotion not: the
    restart promotes at that bar, as the uninterrupted run did, not one bar late."""
    promote = promotion.promote_passed

    def dying(books: Any, *args: Any) -> Any:
        if books.promotable():
            books.journal.flush()
            die(books.journal)
        return promote(books, *args)

    document = canaried(registry)
    with monkeypatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, run = play(tmp_path, document)
    assert died != 0
    assert rows(run, "model_swapped") == []
    code, run = play(tmp_path, document, BARS - bars_played(run))
    assert code == 0
    [started] = rows(run, "canary_started")
    assert started["bar"] == rows(passed, "canary_started")[0]["bar"]
    assert kept(run) == kept(passed)


@pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "before-commit"])
def test_a_kill_at_the_rollback_restarts_with_the_champion_once(
    committed: bool,
    registry: Path,
    rolled: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    roll_back = promotion_stage.roll_back

    def dying(canary: Any, *args: Any, **kwargs: Any) -> bool:
        books = kwargs["books"]
        if committed:
            roll_back(canary, *args, **kwargs)
        else:
            books.journal.flush()  # the bar's rows: the rule fired, nothing of it written
        die(books.journal)
        return False

    document = canaried(registry, {"max_drawdown": LIMIT})
    with monkeypatch.context() as patched:
        patched.setattr(promotion_stage, "roll_back", dying)
        died, run = play(tmp_path, document)
    assert died != 0
    assert len(rows(run, "canary_rolled_back")) == (1 if committed else 0)
    code, run = play(tmp_path, document, BARS - bars_played(run))
    assert code == 0
    assert kept(run) == kept(rolled)  # rolled back once, at the same bar
    ids = [r["id"] for r in rows(run, "order")]
    assert len(ids) == len(set(ids))


def test_an_operator_promotes_and_rolls_back_by_hand(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = canaried(registry)
    document["challengers"][0]["promote_when"] = {
        "min_bars": 200,  # the gate never passes here: only an operator promotes
        "canary": {"fraction": FRACTION, "bars": 100},
    }
    code, run = play(tmp_path, document, 6)
    assert code == 0
    capsys.readouterr()
    assert main(["rollback", str(run)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"{run}: rollback refused: rollback: no canary or watch is in progress"
    )
    assert main(["promote", str(run), "--challenger", "nope"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{run}: promotion refused: --challenger: the strategy has no challenger nope "
        "(it has: next)"
    )
    assert main(["promote", str(run), "--challenger", "next", "--reason", "looks good"]) == 0
    assert "the promote is checked and applied when it next starts" in capsys.readouterr().out
    code, run = play(tmp_path, document, 4)
    assert code == 0
    [started] = rows(run, "canary_started")
    [swapped] = rows(run, "model_swapped")
    first_live = min(r["bar"] for r in rows(run, "live_bar"))
    assert started["bar"] == swapped["bar"] == first_live + 5  # at the restart's first tick
    assert (started["by"], started["reason"], swapped["by"]) == ("cli", "looks good", "cli")
    assert swapped["request"].startswith("challenger:next@") and swapped["request"].endswith(
        "-promote.json"
    )
    capsys.readouterr()
    assert main(["status", str(run), "--json"]) == 0
    stage = json.loads(capsys.readouterr().out)["canary"]
    assert (stage["stage"], stage["challenger"], stage["fraction"], stage["bars"]) == (
        "canary",
        "next",
        FRACTION,
        4,
    )
    assert main(["status", str(run)]) == 0
    assert (
        f"canary     next at 25% of the champion's size since bar {started['bar']}: 4 of 100 "
        "bars (by cli)"
    ) in capsys.readouterr().out
    # issue 81: the command exited 0 ("swap requested"); it refuses as the process does
    during = "the canary of next is in progress; promote or roll it back first"
    capsys.readouterr()
    assert main(["swap", str(run), "--model", str(registry)]) == 2
    assert capsys.readouterr().err == f"{run}: model swap refused: {during}\n"
    request_swap(run, registry, None, "another model meanwhile")  # past the command's check
    assert main(["rollback", str(run), "--reason", "enough"]) == 0
    code, run = play(tmp_path, document, 2)
    assert code == 0
    [refused] = rows(run, "model_swap_refused")
    assert (refused["bar"], refused["errors"]) == (started["bar"] + 4, [during])
    times = {r["bar"]: r["timestamp"] for r in rows(run, "live_bar")}
    assert refused["timestamp"] == times[refused["bar"]]  # issue 81: its bar's time
    [back] = rows(run, "canary_rolled_back")
    assert (back["bar"], back["by"], back["rule"], back["reason"]) == (
        started["bar"] + 4,
        "cli",
        "",
        "enough",
    )
    assert back["figure"] is None and back["limit"] is None  # NaN: no rule
    returned = rows(run, "model_swapped")[-1]
    assert (returned["by"], returned["sha256"]) == ("cli", started["champion_sha256"])
    assert not list((run / "control").glob("*.json"))  # every request answered
    capsys.readouterr()
    assert main(["status", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["canary"]["stage"] == "rolled_back"


def test_a_challenger_without_a_canary_is_promoted_by_hand_at_once(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = canaried(registry)
    del document["challengers"][0]["promote_when"]
    code, run = play(tmp_path, document, 3)
    assert code == 0
    assert main(["promote", str(run), "--challenger", "next"]) == 0
    code, run = play(tmp_path, document, 3)
    assert code == 0
    [swapped] = rows(run, "model_swapped")
    assert (swapped["by"], swapped["request"].split("@")[0]) == ("cli", "challenger:next")
    assert rows(run, "canary_started") == []
    assert max(r["bar"] for r in rows(run, "challenger_bar")) == swapped["bar"]  # it stopped
    capsys.readouterr()
    assert main(["promote", str(run), "--challenger", "next"]) == 2  # promoted already
    assert capsys.readouterr().err.strip() == (
        f"{run}: promotion refused: --challenger: challenger next was promoted already; it "
        "is no longer in shadow"
    )
    code, run = play(tmp_path, document, 2)  # a restart does not shadow it again
    assert code == 0
    assert max(r["bar"] for r in rows(run, "challenger_bar")) == swapped["bar"]


def test_an_operators_promotion_the_swap_refuses_leaves_the_challenger_in_shadow(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.live.test_challengers import LOGIT

    document = strategy(challengers=[{"name": "logit", "model": LOGIT}])  # trains in the run
    code, run = play(tmp_path, document, 3)
    assert code == 0
    capsys.readouterr()
    assert main(["promote", str(run), "--challenger", "logit"]) == 2
    saved_only = (
        "model: a running run swaps in a saved model only (from_run: a run directory, or "
        "path: with sha256) that predicts one bar; a model that trains on the run's bars "
        "needs a new run"
    )  # the command's words are the process's (`model_problems`)
    assert capsys.readouterr().err.strip() == (
        f"{run}: promotion refused: --challenger: logit: {saved_only}"
    )
    request_promote(run, "logit", "asked past the check")  # the process checks again
    code, run = play(tmp_path, document, 2)
    assert code == 0
    [refused] = rows(run, "model_swap_refused")
    assert (refused["by"], refused["request"].split("@")[0]) == ("cli", "challenger:logit")
    assert refused["errors"] == [saved_only]
    assert rows(run, "model_swapped") == [] and rows(run, "challenger_failed") == []
    shadowed = [r["bar"] for r in rows(run, "challenger_bar") if r["challenger"] == "logit"]
    assert shadowed[-1] == max(r["bar"] for r in rows(run, "live_bar"))  # it shadows on
    assert not list((run / "control").glob("*.json"))


def test_status_shows_a_passed_canary(passed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["status", str(passed), "--json"]) == 0
    stage = json.loads(capsys.readouterr().out)["canary"]
    assert (stage["stage"], stage["bars"], stage["by"]) == ("passed", CANARY_BARS, "canary")
    assert main(["status", str(passed)]) == 0
    out = capsys.readouterr().out
    assert f"canary     next passed after {CANARY_BARS} bars: the full champion (by canary)" in out


def test_the_figures_of_the_rules() -> None:
    equity = np.array([100.0, 104.0, 101.4, 103.0])
    rng = np.random.default_rng(7)
    closes = np.cumsum(rng.normal(size=(40, 1)), axis=0) + 100.0
    probabilities = rng.uniform(size=(39, 1))
    figures = canary_figures(equity, probabilities, closes, horizon=2, min_samples=5)
    assert figures.drawdown == pytest.approx(1.0 - 103.0 / 104.0)
    p = probabilities[:37, 0]
    up = closes[3:, 0] > closes[1:38, 0]
    assert figures.samples == 37
    assert figures.auc == auc(p, up)
    assert figures.calibration_error == calibration_error(p, up.astype(float), 10)[0]
    few = canary_figures(equity, probabilities, closes, horizon=2, min_samples=38)
    assert math.isnan(few.auc) and math.isnan(few.calibration_error) and few.samples == 37
    rules = RollbackWhen(max_drawdown=0.005, min_auc=0.9, max_calibration_error=0.01)
    assert fired(rules, figures) == ("max_drawdown", figures.drawdown, 0.005)
    assert fired(rules.model_copy(update={"max_drawdown": 0.5}), figures) == (
        "min_auc",
        figures.auc,
        0.9,
    )
    assert fired(rules.model_copy(update={"max_drawdown": 0.5}), few) is None  # waits
    no_auc = rules.model_copy(update={"max_drawdown": 0.5, "min_auc": None})
    assert fired(no_auc, figures) == ("max_calibration_error", figures.calibration_error, 0.01)


def test_a_canary_needs_a_saved_champion_and_a_valid_fraction(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    document = canaried(registry)
    document["model"] = strategy()["model"]  # a forest that trains in the run
    document["challengers"][0]["promote_when"]["canary"]["fraction"] = 0
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    capsys.readouterr()
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert (
        lines[-1] == f"{path}:47:17 challengers.0.promote_when.canary.fraction: must be > 0, was 0"
    )
    document["challengers"][0]["promote_when"]["canary"]["fraction"] = 0.5
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert main(["validate", str(path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.endswith(
        "challengers.0.promote_when.canary: a canary's rollback swaps the champion's model "
        "file back in; the strategy's model must be a saved model (from_run: RUN or path: "
        "with sha256), not one of kind sklearn that trains in the run"
    )


LIVE_END = 130
"""The emulator's bar the live runs end at (they start at its bar 100)."""


def live_text(registry: Path) -> str:
    """`tests.live.live_emulated.STRATEGY` traded live with `canaried`'s champion and
    challenger."""
    import yaml

    from tests.live.live_emulated import STRATEGY

    document = yaml.safe_load(STRATEGY)
    canary = canaried(registry)
    document["model"] = canary["model"]
    document["signal"] = TRADING
    document["challengers"] = canary["challengers"]
    return yaml.safe_dump(document, sort_keys=False)


def test_a_live_run_killed_in_its_canary_sends_no_order_twice(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.live.live_emulated import crash, emulated_run, promotions_of, tick_until

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch, text=live_text(registry)) as run:
        runner = run.runner(run_dir)
        runner.inbox.install_signal_handlers()
        runner.start()
        try:
            while run.emulator.exchange.position < LIVE_END:
                run.emulator.advance()
                runner.tick()
                stage = promotions_of(runner)
                canary = None if stage is None else stage.canary
                if (
                    canary is not None
                    and runner.bars_processed
                    and (len(runner.session_or_fail.history) - 1 - canary.started.bar == 2)
                ):
                    break
            else:
                pytest.fail("the gate never promoted the challenger through its canary")
            crash(runner)  # kill -9 two bars into the canary
        finally:
            runner.inbox.restore_signal_handlers()
        again = run.runner(run_dir)
        again.inbox.install_signal_handlers()
        again.start()
        try:
            again_stage = promotions_of(again)
            assert again_stage is not None and again_stage.canary is not None
            tick_until(run, again, LIVE_END)
            again.stop("test over")
        finally:
            again.inbox.restore_signal_handlers()
        ids = [o.client_order_id for o in run.emulator.exchange.orders()]
        assert run.emulator.errors == []
    assert ids and len(ids) == len(set(ids))
    [started] = rows(run_dir, "canary_started")
    [ended] = rows(run_dir, "canary_passed")
    assert ended["bar"] == started["bar"] + CANARY_BARS
    shadow = [
        r["bar"] for r in rows(run_dir, "challenger_bar") if r["challenger"] == CHAMPION_SHADOW
    ]
    assert shadow == list(range(started["bar"] + 1, ended["bar"] + 1))  # each bar once
    during = [size for bar, size in accepted(run_dir) if started["bar"] < bar <= ended["bar"]]
    assert during and all(size == pytest.approx(SIZING * FRACTION, rel=1e-12) for size in during)


@pytest.mark.parametrize("outcome", ["passed", "rolled"])
def test_parity_of_a_run_through_its_canary_finds_no_difference(
    outcome: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A canary from flat, passed or rolled back: the replay sizes each entry at the
    canary's share as the run did (its ``canary_*`` rows), the challengers are no part of
    it, and the live parity monitor's window check says ok."""
    import shutil

    from tradeloom.diagnostics.live_parity import window_parity

    run = tmp_path / "run"
    shutil.copytree(request.getfixturevalue(outcome), run)  # the monitor writes into it
    assert main(["parity", str(run), "--out", str(tmp_path / "p")]) == 0
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert report["causes"] == {} and report["differences_by_bar"] == []
    sizes = [size for _, size in accepted(tmp_path / "p" / "reference")]
    assert sizes == [size for _, size in accepted(run)]
    assert SIZING * FRACTION in [pytest.approx(size, rel=1e-12) for size in sizes]
    last = max(r["bar"] for r in rows(run, "live_bar"))
    assert window_parity(run, last, 10, 0.0)["verdict"] == "ok"
