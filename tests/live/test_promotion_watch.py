"""The watch after a full promotion (``promote_when.watch``) on a paper run
(``--clock simulated``, in process), with `tests.live.test_canary`'s seeded candidates.

A promotion without a canary is watched from its ``model_swapped`` row; one through a
canary from its ``canary_passed`` row. A rule that fires in the watch (a drawdown limit)
puts the previous champion's model back (``promotion_rolled_back`` with the rule, its
figure and limit; the figure recomputed from the run's equity); a watch whose bars pass
ends (``watch_passed``). kill -9 during the watch and at its rollback (before and after
the commit): the restart takes the watch up from its ``watch_started`` row and its
journal is the uninterrupted run's, no order twice. A misspelt key is one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.live.test_canary import (
    CANARY_BARS,
    FRACTION,
    GATE,
    SIZING,
    TRADING,
    accepted,
    bars_played,
    die,
    drawdown,
    kept,
    rows,
)
from tests.live.test_challengers import play, strategy
from tradeloom.cli.main import main
from tradeloom.engine.control import request_promote, request_swap
from tradeloom.engine.status import read_run
from tradeloom.journal import read_rows
from tradeloom.live.lifecycle import promotion_stage
from tradeloom.live.lifecycle.promotion_stage import PromotionStage
from tradeloom.live.recovery.journal_state import read_state
from tradeloom.schemas.strategy import RollbackWhen

BARS = 40
"""Bars each run trades live."""

WATCH_BARS = 8
LIMIT = 0.0005
"""A drawdown limit the watch's first losing bars pass (its rollback's rule)."""


def watched(
    registry: Path,
    rollback_when: dict[str, Any] | None = None,
    *,
    canary: bool = False,
    bars: int = WATCH_BARS,
) -> dict[str, Any]:
    """The champion (the registry's first fold) with challenger ``next`` (its latest),
    gated and watched for ``bars`` bars after its full promotion (through a canary of
    `FRACTION` for `CANARY_BARS` bars when ``canary``)."""
    watch: dict[str, Any] = {"bars": bars}
    if rollback_when is not None:
        watch["rollback_when"] = rollback_when
    gate: dict[str, Any] = {**GATE, "watch": watch}
    if canary:
        gate["canary"] = {"fraction": FRACTION, "bars": CANARY_BARS}
    entry = {"name": "next", "model": {"kind": "saved", "from_run": str(registry)}}
    champion = {"kind": "saved", "from_run": str(registry), "fold": 0}
    return strategy(champion, [{**entry, "promote_when": gate}], signal=TRADING)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.live.live_emulated import trained_registry

    return trained_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def rolled(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run whose direct promotion is rolled back by its watch."""
    document = watched(registry, {"max_drawdown": LIMIT})
    code, run = play(tmp_path_factory.mktemp("rolled"), document, BARS)
    assert code == 0
    return run


@pytest.fixture(scope="module")
def passed(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run promoted through its canary and watched to the end."""
    code, run = play(tmp_path_factory.mktemp("passed"), watched(registry, canary=True), BARS)
    assert code == 0
    return run


def test_a_drawdown_in_the_watch_puts_the_previous_champion_back(rolled: Path) -> None:
    run = rolled
    promoted, returned = rows(run, "model_swapped")
    [started] = rows(run, "watch_started")
    [back] = rows(run, "promotion_rolled_back")
    assert rows(run, "canary_started") == rows(run, "watch_passed") == []
    assert (promoted["by"], promoted["request"]) == ("gate", "challenger:next")
    assert (started["bar"], started["challenger"], started["bars"], started["by"]) == (
        promoted["bar"],
        "next",
        WATCH_BARS,
        "gate",
    )
    assert started["champion_sha256"] == promoted["previous_sha256"]
    assert (run / started["champion"]["path"]).is_file()  # kept: the rollback needs it
    assert RollbackWhen.model_validate_json(started["rollback_when"]) == RollbackWhen(
        max_drawdown=LIMIT
    )
    assert (back["challenger"], back["by"], back["rule"], back["limit"]) == (
        "next",
        "watch",
        "max_drawdown",
        LIMIT,
    )
    assert back["figure"] > LIMIT and back["figure"] == back["drawdown"]
    assert back["figure"] == pytest.approx(drawdown(run, started["bar"], back["bar"]), abs=1e-12)
    assert back["bars"] == back["bar"] - started["bar"] <= WATCH_BARS
    for bar in range(started["bar"] + 1, back["bar"]):  # the rule fired at its first bar
        assert drawdown(run, started["bar"], bar) <= LIMIT
    assert (returned["bar"], returned["by"], returned["request"]) == (
        back["bar"],
        "watch",
        "watch:next",
    )
    assert returned["sha256"] == promoted["previous_sha256"]
    # the promoted model traded at its full size: a watch scales nothing
    assert all(size == pytest.approx(SIZING, rel=1e-12) for _, size in accepted(run))


def test_a_canary_passed_is_watched_and_the_watch_ends(passed: Path) -> None:
    run = passed
    [canary] = rows(run, "canary_started")
    [ended] = rows(run, "canary_passed")
    [started] = rows(run, "watch_started")
    [done] = rows(run, "watch_passed")
    assert rows(run, "promotion_rolled_back") == []
    assert started["bar"] == ended["bar"] == canary["bar"] + CANARY_BARS
    assert (started["by"], started["request"]) == ("canary", "challenger:next")
    assert started["champion"] == canary["champion"]  # the file the canary kept
    assert started["champion_sha256"] == canary["champion_sha256"]
    assert (done["bar"], done["bars"], done["challenger"]) == (
        started["bar"] + WATCH_BARS,
        WATCH_BARS,
        "next",
    )
    assert done["drawdown"] == pytest.approx(drawdown(run, started["bar"], done["bar"]), abs=1e-12)
    assert done["parity_gap"] is None  # NaN: no max_parity_gap rule
    [swapped] = rows(run, "model_swapped")  # the one promotion, never swapped back
    assert swapped["bar"] == canary["bar"]


def test_a_file_without_a_watch_journals_its_canary_as_before(passed: Path) -> None:
    """``canary_started`` holds the watch's rules; without a watch its new column is empty
    and its rules' JSON has no rule added since (the rows of runs before are unchanged)."""
    [canary] = rows(passed, "canary_started")
    assert '"bars":8' in canary["watch"].replace(" ", "")
    assert "max_parity_gap" not in canary["rollback_when"]


def killed_in_the_watch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: dict[str, Any], bars: int
) -> Path:
    """Play ``document`` until kill -9 strikes ``bars`` bars into its watch (that bar's
    rows not committed); return the run folder."""
    after_bar = PromotionStage.after_bar

    def dying(self: PromotionStage, session: Any) -> None:
        after_bar(self, session)
        watch = self.watch
        if watch is not None and len(session.history) - 1 - watch.started.bar == bars:
            die(self.books.journal)

    with monkeypatch.context() as patched:
        patched.setattr(PromotionStage, "after_bar", dying)
        died, run = play(tmp_path, document)
    assert died != 0
    assert rows(run, "watch_passed") == rows(run, "promotion_rolled_back") == []
    assert len(rows(run, "watch_started")) == 1
    return run


def test_a_kill_in_the_middle_of_the_watch_loses_nothing(
    registry: Path, passed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = watched(registry, canary=True)
    run = killed_in_the_watch(tmp_path, monkeypatch, document, 3)
    code, run = play(tmp_path, document, BARS - bars_played(run))
    assert code == 0
    assert kept(run) == kept(passed) and watch_rows(run) == watch_rows(passed)
    ids = [r["id"] for r in rows(run, "order")]
    assert len(ids) == len(set(ids))


def watch_rows(run: Path) -> list[tuple[Any, ...]]:
    """The watch's rows, as `kept` compares rows."""
    return [
        (kind, r["bar"], sorted((k, str(v)) for k, v in r.items() if k != "timestamp"))
        for kind in ("watch_started", "watch_passed", "promotion_rolled_back")
        for r in rows(run, kind)
    ]


def test_a_restart_in_a_watch_rolls_back_at_the_same_bar(
    registry: Path, rolled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed in the watch, restarted with the challenger gone from the file: the watch's
    rules are its ``watch_started`` row's, and it rolls back where the uninterrupted run
    did."""
    document = watched(registry, {"max_drawdown": LIMIT})
    [back] = rows(rolled, "promotion_rolled_back")
    [started] = rows(rolled, "watch_started")
    assert back["bar"] - started["bar"] >= 2, "the rule fired too soon to kill in between"
    run = killed_in_the_watch(tmp_path, monkeypatch, document, 1)
    code, run = play(tmp_path, {**document, "challengers": []}, BARS - bars_played(run))
    assert code == 0
    assert kept(run) == kept(rolled) and watch_rows(run) == watch_rows(rolled)


@pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "before-commit"])
def test_a_kill_at_the_watchs_rollback_restarts_with_the_champion_once(
    committed: bool,
    registry: Path,
    rolled: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    roll_back = promotion_stage.roll_back

    def dying(watch: Any, files: Any, plugins: Any, session: Any, recorder: Any, **kw: Any) -> bool:
        if committed:
            roll_back(watch, files, plugins, session, recorder, **kw)
        recorder.journal.flush()  # the bar's rows, and the rollback's when committed
        die(recorder.journal)
        return False

    document = watched(registry, {"max_drawdown": LIMIT})
    with monkeypatch.context() as patched:
        patched.setattr(promotion_stage, "roll_back", dying)
        died, run = play(tmp_path, document)
    assert died != 0
    assert len(rows(run, "promotion_rolled_back")) == (1 if committed else 0)
    code, run = play(tmp_path, document, BARS - bars_played(run))
    assert code == 0
    assert kept(run) == kept(rolled) and watch_rows(run) == watch_rows(rolled)
    ids = [r["id"] for r in rows(run, "order")]
    assert len(ids) == len(set(ids))


def test_an_operator_rolls_a_watched_promotion_back(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = watched(registry, bars=100)  # no rule: only an operator rolls back
    code, run = play(tmp_path, document, 20)
    assert code == 0
    [started] = rows(run, "watch_started")
    capsys.readouterr()
    assert main(["promote", str(run), "--challenger", "next"]) == 2
    busy = "the watch of next's promotion is in progress; roll it back or wait for its end"
    assert capsys.readouterr().err.strip() == f"{run}: promotion refused: --challenger: {busy}"
    # the running process refuses in the same words, a promotion and a swap alike
    request_promote(run, "next", "asked past the check")
    request_swap(run, registry, None, "another model meanwhile")
    code, run = play(tmp_path, document, 1)
    assert code == 0
    refused = sorted(r["errors"][0] for r in rows(run, "model_swap_refused"))
    assert refused == [f"promote refused: {busy}", busy]
    assert main(["rollback", str(run), "--reason", "not convinced"]) == 0
    code, run = play(tmp_path, document, 2)
    assert code == 0
    [back] = rows(run, "promotion_rolled_back")
    assert (back["by"], back["rule"], back["reason"]) == ("cli", "", "not convinced")
    assert back["figure"] is None and back["limit"] is None  # NaN: no rule
    returned = rows(run, "model_swapped")[-1]
    assert (returned["by"], returned["sha256"]) == ("cli", started["champion_sha256"])
    assert not list((run / "control").glob("*.json"))  # answered
    capsys.readouterr()
    assert main(["rollback", str(run)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{run}: rollback refused: rollback: no canary or watch is in progress"
    )


def test_a_misspelt_watch_key_is_one_line(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    document = watched(registry, {"max_parity_gap": 0.01})
    document["challengers"][0]["promote_when"]["watch"]["barz"] = 3
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    capsys.readouterr()
    assert main(["validate", str(path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "challengers.0.promote_when.watch.barz:" in line and "bars" in line
    document = watched(registry, {"max_parity_gap": 1.5})
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert main(["validate", str(path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.endswith(
        "challengers.0.promote_when.watch.rollback_when.max_parity_gap: must be < 1, was 1.5"
    )
    document = watched(registry)
    document["model"] = strategy()["model"]  # a forest that trains in the run
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert main(["validate", str(path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.endswith(
        "challengers.0.promote_when.watch: a watch's rollback swaps the champion's model "
        "file back in; the strategy's model must be a saved model (from_run: RUN or path: "
        "with sha256), not one of kind sklearn that trains in the run"
    )


def test_status_shows_the_watch(
    rolled: Path, passed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    [back] = rows(rolled, "promotion_rolled_back")
    [started] = rows(rolled, "watch_started")
    capsys.readouterr()
    assert main(["status", str(rolled), "--json"]) == 0
    watch = json.loads(capsys.readouterr().out)["watch"]
    assert (watch["stage"], watch["challenger"], watch["since_bar"], watch["bars"]) == (
        "rolled_back",
        "next",
        started["bar"],
        back["bars"],
    )
    assert (watch["by"], watch["rule"], watch["limit"]) == ("watch", "max_drawdown", LIMIT)
    assert main(["status", str(rolled)]) == 0
    assert (
        f"watch      next's promotion rolled back after {back['bars']} bars: max_drawdown "
    ) in capsys.readouterr().out
    assert main(["status", str(passed)]) == 0
    out = capsys.readouterr().out
    assert f"watch      next's promotion final after {WATCH_BARS} bars watched" in out


def test_the_console_and_status_name_the_champion_back_from_the_watch(rolled: Path) -> None:
    [back] = rows(rolled, "promotion_rolled_back")
    swapped = rows(rolled, "model_swapped")[-1]
    words = (
        f"the previous champion's model, back from challenger next's watch, since bar "
        f"{back['bar']} (by watch, sha256 {swapped['sha256'][:12]})"
    )
    assert promotion_stage.promotion_choices(rolled).in_force == words
    assert read_run(rolled).status.models == {"": words}


def test_a_state_read_for_some_kinds_names_no_last_row(rolled: Path) -> None:
    path = rolled / "journal.sqlite"
    last = max(r.seq for r in read_rows(path))
    assert read_state(path).last_seq == last
    some = read_state(path, ["watch_started"])  # the journal's last row is another kind's
    assert some.watch is not None and some.last_seq is None
