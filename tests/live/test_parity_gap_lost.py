"""A hot reload during a canary with the ``max_parity_gap`` rule: the run's replay trades
the strategy the stage started with and cannot follow, so the rule journals one
``parity_gap_lost`` row and reads no gap from that bar on, rather than a wrong one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.live.live_emulated import crash, emulated_run, promotions_of, rows, tick_bars
from tests.live.test_canary import live_text
from tests.live.test_canary_parity_gap import gaps_read


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.live.live_emulated import trained_registry

    return trained_registry(tmp_path_factory.mktemp("registry"))


def test_a_hot_reload_in_a_canary_stops_the_gap_rule_in_one_row(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = yaml.safe_load(live_text(registry))
    canary = document["challengers"][0]["promote_when"]["canary"]
    canary["rollback_when"] = {"max_parity_gap": 1e-12}
    canary["bars"] = 8
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    text = yaml.safe_dump(document, sort_keys=False)
    with (
        gaps_read(monkeypatch) as gaps,
        emulated_run(tmp_path, monkeypatch, text=text) as run,
    ):
        runner = run.runner(run_dir, mode="paper", watch_file=True)
        runner.start()
        try:
            for _ in range(80):
                tick_bars(run, runner, 1)
                stage = promotions_of(runner)
                if stage is not None and stage.canary is not None and len(gaps) == 2:
                    break
            assert len(gaps) == 2, "the canary did not start"
            document["signal"] = {**document["signal"], "threshold": 0.03}
            run.strategy.write_text(yaml.safe_dump(document, sort_keys=False))
            tick_bars(run, runner, 4)
        finally:
            runner.stop("test over")
    [reloaded] = rows(journal, "config_reloaded")
    assert reloaded["changed"] == ["signal"]
    [lost] = rows(journal, "parity_gap_lost")
    assert (lost["challenger"], lost["cause"]) == ("next", "reload")
    assert lost["bar"] == reloaded["bar"] + 1  # the first close the reloaded file traded
    assert lost["message"] == (  # the reload's own bar, as a restart names it
        f"a hot reload at bar {reloaded['bar']} changed the strategy the replay trades; "
        "max_parity_gap reads no gap until the stage ends"
    )
    assert gaps[:2] == [0.0, 0.0] and len(gaps) == 6
    assert all(math.isnan(g) for g in gaps[2:])
    assert rows(journal, "canary_rolled_back") == []


def _same_bar(
    registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    reload_first: bool,
    restart: bool,
) -> tuple[dict[str, list[dict[str, Any]]], list[float]]:
    """Trade a paper run whose canary (``max_parity_gap``) only an operator starts; at one
    bar, two wake ticks (no new bar) hot-reload the file and start the canary by hand, in
    the order ``reload_first`` says; with ``restart``, kill -9 right after them (both
    committed) and restart. Return the rows of the reload, the canary and its rule, and
    the gaps the rule read."""
    from tradeloom.engine.control import request_promote

    document = yaml.safe_load(live_text(registry))
    document["challengers"][0]["promote_when"] = {
        "min_bars": 200,  # the gate never passes here: only an operator promotes
        "canary": {"fraction": 0.25, "bars": 6, "rollback_when": {"max_parity_gap": 0.5}},
    }
    tmp_path.mkdir()
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    text = yaml.safe_dump(document, sort_keys=False)
    with (
        gaps_read(monkeypatch) as gaps,
        emulated_run(tmp_path, monkeypatch, text=text) as run,
    ):
        runner = run.runner(run_dir, mode="paper", watch_file=True)
        runner.inbox.install_signal_handlers()  # the promote's SIGUSR2 comes to this process
        try:
            runner.start()
            tick_bars(run, runner, 3)
            for step in ("reload", "promote") if reload_first else ("promote", "reload"):
                if step == "reload":
                    document["signal"] = {**document["signal"], "threshold": 0.03}
                    run.strategy.write_text(yaml.safe_dump(document, sort_keys=False))
                else:
                    request_promote(run_dir, "next", "by hand")
                runner.tick()  # a wake tick: no bar closed
            if restart:
                crash(runner)
                runner.inbox.restore_signal_handlers()
                runner = run.runner(run_dir, mode="paper", watch_file=True)
                runner.inbox.install_signal_handlers()
                runner.start()
            tick_bars(run, runner, 8)
            runner.stop("test over")
        finally:
            runner.inbox.restore_signal_handlers()
    journal = run_dir / "journal.sqlite"
    kinds = ("config_reloaded", "canary_started", "canary_passed", "parity_gap_lost")
    found = {kind: rows(journal, kind) for kind in kinds}
    for row in found["canary_started"] + found["canary_passed"]:
        row.pop("request")  # the promote's file, named by the time it was written
    return found, gaps


def test_a_reload_before_a_canary_at_its_start_bar_keeps_the_gap_rule_after_a_restart(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The canary started after the reload, its replay trading the reloaded file: the
    rule never loses its gap, and a restart that finds the reload at the canary's start
    bar reads the journal's order and keeps it too, with no ``parity_gap_lost`` row."""
    straight, gaps = _same_bar(
        registry, tmp_path / "straight", monkeypatch, reload_first=True, restart=False
    )
    restarted, again = _same_bar(
        registry, tmp_path / "restarted", monkeypatch, reload_first=True, restart=True
    )
    [reloaded] = straight["config_reloaded"]
    [started] = straight["canary_started"]
    assert reloaded["bar"] == started["bar"]
    assert straight["parity_gap_lost"] == restarted["parity_gap_lost"] == []
    [passed] = straight["canary_passed"]
    assert passed["bar"] == started["bar"] + 6
    assert restarted == straight
    assert len(gaps) == 6 and not any(math.isnan(g) for g in gaps)
    assert again == [0.0, *gaps]  # the restart read the rules at its last bar again


def test_a_reload_after_a_canary_at_its_start_bar_is_one_row_with_or_without_a_restart(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The canary started before the reload: its replay cannot follow the reloaded file,
    and its one ``parity_gap_lost`` row, at the first close the reloaded file traded,
    names the reload's own bar whether the run was killed and restarted in between or
    not."""
    straight, gaps = _same_bar(
        registry, tmp_path / "straight", monkeypatch, reload_first=False, restart=False
    )
    restarted, again = _same_bar(
        registry, tmp_path / "restarted", monkeypatch, reload_first=False, restart=True
    )
    [reloaded] = straight["config_reloaded"]
    [started] = straight["canary_started"]
    assert reloaded["bar"] == started["bar"]
    [lost] = straight["parity_gap_lost"]
    assert (lost["bar"], lost["challenger"], lost["cause"]) == (
        reloaded["bar"] + 1,
        "next",
        "reload",
    )
    assert lost["message"] == (
        f"a hot reload at bar {reloaded['bar']} changed the strategy the replay trades; "
        "max_parity_gap reads no gap until the stage ends"
    )
    assert restarted == straight
    assert len(gaps) == 6 and all(math.isnan(g) for g in gaps)
    assert len(again) == 7 and all(math.isnan(g) for g in again)
