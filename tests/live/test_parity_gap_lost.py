"""A hot reload during a canary with the ``max_parity_gap`` rule: the run's replay trades
the strategy the stage started with and cannot follow, so the rule journals one
``parity_gap_lost`` row and reads no gap from that bar on, rather than a wrong one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from tests.live.live_emulated import emulated_run, rows, tick_bars
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
                stage = runner.promotions
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
    assert lost["message"] == (
        f"a hot reload at bar {lost['bar']} changed the strategy the replay trades; "
        "max_parity_gap reads no gap until the stage ends"
    )
    assert gaps[:2] == [0.0, 0.0] and len(gaps) == 6
    assert all(math.isnan(g) for g in gaps[2:])
    assert rows(journal, "canary_rolled_back") == []
