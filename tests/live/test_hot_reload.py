"""Editing the strategy file of a running strategy: a valid change of a swappable section
takes effect at the next bar with the position kept; anything else is refused, logged and
journaled, and the old configuration keeps running."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.live_emulated import STRATEGY, emulated_run, rows, tick_bars


def test_edits_are_swapped_in_at_the_next_bar_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir, mode="paper", watch_file=True)
        runner.start()
        tick_bars(run, runner, 120)
        position = runner.session_or_fail.engine.portfolio.position
        before = len(rows(journal, "signal"))
        assert before > 10

        # a stricter signal rule: swapped at the next tick, the position kept
        run.strategy.write_text(
            STRATEGY.replace("threshold: 0.04, min_interval: 2", "threshold: 0.99")
        )
        reload_bar = len(runner.session_or_fail.history)
        runner.tick()
        (reloaded,) = rows(journal, "config_reloaded")
        assert reloaded["changed"] == ["signal"]
        assert "signal.threshold: 0.04 -> 0.99" in reloaded["changes"]
        assert runner.session_or_fail.engine.portfolio.position == position
        tick_bars(run, runner, 40)
        after = [r for r in rows(journal, "signal") if r["bar"] >= reload_bar]
        assert after == []  # no probability is 99% confident

        # features change: refused, the running configuration stays
        run.strategy.write_text(STRATEGY.replace("window: 14", "window: 21"))
        runner.tick()
        (refused,) = rows(journal, "config_reload_refused")
        assert "features" in refused["errors"][0] and "restart" in refused["errors"][0]

        # a broken file: refused with its location, trading goes on
        run.strategy.write_text("name: live_rf\nsignal: [\n")
        runner.tick()
        broken = rows(journal, "config_reload_refused")[-1]
        assert broken["errors"][0].startswith(str(run.strategy))
        tick_bars(run, runner, 5)
        assert runner.session_or_fail.p.config.name == "live_rf"
        runner.stop("test over")


def test_a_run_restarts_after_a_hot_reload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir, watch_file=True)
        runner.start()
        tick_bars(run, runner, 150)
        run.strategy.write_text(STRATEGY.replace("fraction: 0.5", "fraction: 0.3"))
        tick_bars(run, runner, 60)
        assert rows(journal, "config_reloaded")
        ids = {r["id"] for r in rows(journal, "order")}
        assert runner.journal is not None
        runner.journal._db.close()  # crash
        runner.inbox.release_pid()
        again = run.runner(run_dir, watch_file=True)
        again.start()  # replayed under the edited file: the bars before the edit are not compared
        tick_bars(run, again, 60)
        again.stop("test over")
        sent = [o.client_order_id for o in run.emulator.exchange.orders()]
    assert len(sent) == len(set(sent))
    new_ids = {r["id"] for r in rows(journal, "order")} - ids
    assert new_ids and not new_ids & ids
    (reconciled,) = rows(journal, "reconciled")
    assert abs(reconciled["venue_position"] - reconciled["position"]) <= reconciled["tolerance"]


def test_a_restart_refuses_a_file_whose_features_changed_while_it_was_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeloom.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir, mode="paper")
        runner.start()
        tick_bars(run, runner, 20)
        runner.stop("deploy")
        run.strategy.write_text(STRATEGY.replace("window: 14", "window: 21"))
        again = run.runner(run_dir, mode="paper")
        with pytest.raises(ConfigError) as refused:
            again.start()
        again.stop("refused")
    (line,) = refused.value.lines()
    assert "features.2.window: changed since the run last traded (14 -> 21)" in line
    assert "start a new run" in line


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.live.live_emulated import trained_registry

    return trained_registry(tmp_path_factory.mktemp("registry"))


def test_a_file_refused_during_a_canary_is_not_refused_again_when_it_ends(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit of the model during a canary is held until the stage ends, when the file
    is read again; the file broken meanwhile (invalid YAML) was refused once, and that
    read refuses the same content for the same reason: no second row."""
    import yaml

    from tests.live.test_canary import live_text
    from tradeloom.engine.control import request_promote

    document = yaml.safe_load(live_text(registry))
    document["challengers"][0]["promote_when"] = {
        "min_bars": 200,  # the gate never passes here: only an operator promotes
        "canary": {"fraction": 0.25, "bars": 3},
    }
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, text=yaml.safe_dump(document)) as run:
        runner = run.runner(run_dir, mode="paper", watch_file=True)
        runner.inbox.install_signal_handlers()  # the promote's SIGUSR2 comes to this process
        try:
            runner.start()
            tick_bars(run, runner, 2)
            request_promote(run_dir, "next", "by hand")
            runner.tick()
            document["model"] = {**document["model"], "fold": 1}
            run.strategy.write_text(yaml.safe_dump(document))
            runner.tick()  # held: the canary is in progress
            run.strategy.write_text(yaml.safe_dump(document) + "signal: [\n")
            runner.tick()  # refused: invalid YAML
            tick_bars(run, runner, 5)  # the canary ends, the file is read again
            document["model"] = {**document["model"], "fold": 0}
            run.strategy.write_text(yaml.safe_dump(document))
            runner.tick()  # the fix: the file is the running strategy's again
            runner.stop("test over")
        finally:
            runner.inbox.restore_signal_handlers()
    [started] = rows(journal, "canary_started")
    [passed] = rows(journal, "canary_passed")
    assert passed["bar"] == started["bar"] + 3
    held, broken = rows(journal, "config_reload_refused")
    assert held["errors"][0].endswith(
        "model: the canary of next is in progress; promote or roll it back first"
    )
    assert "invalid YAML" in broken["errors"][0]
    assert held["bar"] == broken["bar"] == started["bar"]
    assert rows(journal, "config_reloaded") == []
