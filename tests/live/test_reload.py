"""Hot reload of a running strategy's file: what is swapped, what is refused, what is quiet."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
from pathlib import Path

import pytest

from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.live.lifecycle.reload import Reload, ReloadRefused, StrategyWatcher
from tradeloom.schemas import StrategyConfig, load_strategy

_STRATEGY = Path(__file__).resolve().parents[2] / "strategies" / "btc_rf.yaml"
_FILE = "btc_rf.yaml"
_RESTART = "restart the run to change it"


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, StrategyConfig]:
    """Copy btc_rf.yaml into the working directory and load it, as a run would."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(_STRATEGY, tmp_path / _FILE)
    path = Path(_FILE)
    config, _ = load_strategy(path)
    return path, config


@pytest.fixture
def watcher(running: tuple[Path, StrategyConfig]) -> StrategyWatcher:
    path, config = running
    return StrategyWatcher(path, config)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def _line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_an_unchanged_file_is_no_reload(watcher: StrategyWatcher) -> None:
    assert watcher.check() is None
    assert watcher.check() is None


def test_a_threshold_edit_swaps_the_signal(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, _ = running
    assert watcher.check() is None
    _edit(path, "threshold: 0.30", "threshold: 0.35")

    reload = watcher.check()

    assert isinstance(reload, Reload)
    assert reload.changed == ("signal",)
    assert reload.changes == ("signal.threshold: 0.3 -> 0.35",)
    assert reload.describe() == "signal changed"
    assert reload.config.signal.params.threshold == 0.35
    assert reload.pipeline.config is reload.config
    assert watcher.current is reload.config
    assert watcher.check() is None


def test_apply_swaps_only_the_changed_layers(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, config = running
    live = build_pipeline(config)
    _edit(path, "threshold: 0.30", "threshold: 0.35")
    reload = watcher.check()
    assert isinstance(reload, Reload)

    swapped = reload.apply(live)

    assert swapped.config is reload.config
    assert swapped.signal is reload.pipeline.signal
    kept = [f.name for f in dataclasses.fields(Pipeline) if f.name not in ("config", "signal")]
    assert all(getattr(swapped, name) is getattr(live, name) for name in kept)


def test_a_risk_limit_edit_swaps_sizer_and_rules(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, config = running
    live = build_pipeline(config)
    _edit(path, "max_drawdown: 0.15", "max_drawdown: 0.2")
    _edit(path, "max_holding_bars: 48", "max_holding_bars: 24\n  stop_loss: 0.02")

    reload = watcher.check()

    assert isinstance(reload, Reload)
    assert reload.changed == ("risk",)
    assert reload.changes == (
        "risk.rules.0.max_drawdown: 0.15 -> 0.2",
        "risk.max_holding_bars: 48 -> 24",
        "risk.stop_loss: absent -> 0.02",
    )
    swapped = reload.apply(live)
    assert (swapped.sizer, swapped.rules) == (reload.pipeline.sizer, reload.pipeline.rules)
    assert (swapped.signal, swapped.model, swapped.venue) == (live.signal, live.model, live.venue)
    assert (swapped.config.max_holding_bars, swapped.config.stop_loss) == (24, 0.02)


def test_broken_yaml_is_refused_once_then_the_fix_reloads(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, _ = running
    _edit(path, "min_interval: 4", "min_interval: [4")
    line = _line_of(path, "risk:")  # where the unclosed list meets the next key

    refused = watcher.check()

    assert refused == ReloadRefused(
        (f"{_FILE}:{line}:5: invalid YAML: expected ',' or ']', but got ':'",)
    )
    assert refused.describe() == (
        f"reload refused, the running strategy is unchanged: {refused.errors[0]}"
    )
    assert watcher.check() is None  # the same broken content is reported once

    _edit(path, "min_interval: [4", "min_interval: 8")
    reload = watcher.check()
    assert isinstance(reload, Reload)
    assert reload.changes == ("signal.min_interval: 4 -> 8",)


def test_a_refusal_read_again_is_news_only_when_it_changed(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    """A stage's end reads the file again (`StrategyWatcher.look_again`): a version
    refused during the stage for another reason (broken YAML) is refused again, and
    reported only when the refusal is not the one reported for that content."""
    path, _ = running
    _edit(path, "min_interval: 4", "min_interval: [4")
    refused = watcher.check()
    assert isinstance(refused, ReloadRefused)
    assert watcher.refused(refused)

    watcher.look_again()
    again = watcher.check()
    assert again == refused  # read again, refused for the same reason
    assert not watcher.refused(again)  # reported once per content and reason

    watcher.look_again()
    assert watcher.check() == refused
    assert watcher.refused(ReloadRefused(("the runner's other reason",)))  # changed: news

    _edit(path, "min_interval: [4", "min_interval: 8")
    assert isinstance(watcher.check(), Reload)
    _edit(path, "min_interval: 8", "min_interval: [4")
    assert watcher.check() == refused
    assert watcher.refused(refused)  # saved again after another content: news again


def test_a_version_the_runner_refuses_is_taken_back(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    """A `Reload` the runner refuses (a check of its own) leaves the watcher as it was:
    the strategy running is the one the next edit is compared with."""
    path, config = running
    _edit(path, "threshold: 0.30", "threshold: 0.35")
    reload = watcher.check()
    assert isinstance(reload, Reload)
    assert watcher.current is reload.config  # taken, until the runner refuses it

    assert watcher.refused(ReloadRefused(("the runner's reason",)))
    assert watcher.current is config
    _edit(path, "threshold: 0.35", "threshold: 0.30")
    assert watcher.check() is None  # the version running: nothing changed
    _edit(path, "threshold: 0.30", "threshold: 0.40")
    edited = watcher.check()
    assert isinstance(edited, Reload)
    assert edited.changes == ("signal.threshold: 0.3 -> 0.4",)


def test_an_invalid_value_is_refused_with_its_location(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, config = running
    _edit(path, "fraction: 0.25", "fraction: 1.5")
    line = _line_of(path, "fraction: 1.5")

    refused = watcher.check()

    assert isinstance(refused, ReloadRefused)
    assert refused.errors == (f"{_FILE}:{line}:15 risk.sizing.fraction: must be <= 1, was 1.5",)
    assert watcher.current is config


def test_a_market_change_is_refused_naming_the_path(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, config = running
    _edit(path, "symbol: BTC/USDT", "symbol: ETH/USDT")
    line = _line_of(path, "symbol: ETH/USDT")

    refused = watcher.check()

    assert isinstance(refused, ReloadRefused)
    assert refused.errors == (
        f"{_FILE}:{line}:11 data.symbol: cannot change while the strategy runs "
        "('BTC/USDT' -> 'ETH/USDT'): a different market or timeframe is a different run; "
        f"{_RESTART}",
    )
    assert watcher.current is config
    assert watcher.check() is None


def test_a_feature_change_is_refused_even_with_a_swappable_one(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, _ = running
    _edit(path, "kind: volatility\n    window: 24", "kind: volatility\n    window: 48")
    _edit(path, "threshold: 0.30", "threshold: 0.35")
    line = _line_of(path, "window: 48")

    refused = watcher.check()

    assert isinstance(refused, ReloadRefused)
    assert refused.errors == (
        f"{_FILE}:{line}:13 features.4.window: cannot change while the strategy runs "
        "(24 -> 48): the running model was trained on these features and needs a retrain "
        f"from scratch; {_RESTART}",
    )


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("name: btc_rf", "name: btc_rf2", "name"),
        ("seed: 42", "seed: 43", "seed"),
        ("max_depth: 5", "max_depth: 6", "model.params.max_depth"),
        ("fee_bps: 10", "fee_bps: 12", "execution.fee_bps"),
    ],
)
def test_every_section_that_is_not_swappable_is_refused(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig], old: str, new: str, path: str
) -> None:
    _edit(running[0], old, new)

    refused = watcher.check()

    assert isinstance(refused, ReloadRefused)
    assert len(refused.errors) == 1
    assert f" {path}: cannot change while the strategy runs " in refused.errors[0]
    assert refused.errors[0].endswith(_RESTART)


def test_comments_and_layout_are_no_reload(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, _ = running
    assert watcher.check() is None
    _edit(path, "threshold: 0.30", "threshold:   0.30   # tuned later")
    _edit(path, "  min_interval: 4", "\n  min_interval: 4\n")

    assert watcher.check() is None


def test_the_run_overrides_keep_winning(
    running: tuple[Path, StrategyConfig],
) -> None:
    path, _ = running
    config, _ = load_strategy(path, ["signal.threshold=0.4"])
    watcher = StrategyWatcher(path, config, ["signal.threshold=0.4"])
    _edit(path, "threshold: 0.30", "threshold: 0.35")

    assert watcher.check() is None


def test_a_missing_file_is_refused_once(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, _ = running
    text = path.read_text(encoding="utf-8")
    path.unlink()

    assert watcher.check() == ReloadRefused((f"{_FILE}: no such file",))
    assert watcher.check() is None

    path.write_text(text, encoding="utf-8")
    assert watcher.check() is None


def test_a_fifo_in_place_of_the_file_is_refused_at_once(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, _ = running
    path.unlink()
    os.mkfifo(path)  # no one writes it: a plain read would wait forever

    def hang(signum: int, frame: object) -> None:
        pytest.fail("the watcher waits on the FIFO (a hang)")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, 10)
    try:
        refused = watcher.check()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert refused == ReloadRefused(
        (f"{_FILE}: is a FIFO (named pipe), not a regular file (a strategy file)",)
    )
    assert watcher.check() is None  # said once


def test_secrets_are_masked_in_refusals(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "reload-canary-key-1f3a"
    monkeypatch.setenv("TL_RELOAD_KEY", canary)
    path, _ = running
    _edit(
        path,
        "  kind: synthetic\n",
        "  kind: ccxt\n  exchange: binance\n  api_key: ${TL_RELOAD_KEY}\n",
    )
    _edit(path, "  bars: 20000\n", "")

    refused = watcher.check()

    assert isinstance(refused, ReloadRefused)
    assert [line.split(" ", 2)[1] for line in refused.errors] == [
        "data.kind:",
        "data.exchange:",
        "data.api_key:",
        "data.bars:",
    ]
    assert "(absent -> ***)" in refused.errors[2]
    assert all(canary not in line and "TL_RELOAD_KEY" not in line for line in refused.errors)


def test_risk_limits_added_are_swapped_key_by_key(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, _ = running
    _edit(
        path,
        "max_holding_bars: 48",
        "max_holding_bars: 48\n  limits:\n    max_order_notional: 5000",
    )
    with path.open("a", encoding="utf-8") as file:
        file.write("\nlive:\n  retrain_cron: '0 0 * * *'\n")

    reload = watcher.check()

    assert isinstance(reload, Reload)
    assert reload.changed == ("risk", "live")
    assert reload.changes == (
        "risk.limits.max_order_notional: absent -> 5000",
        "live.retrain_cron: absent -> '0 0 * * *'",
    )
    assert reload.config.risk_limits.max_order_notional == 5000


def test_live_capital_is_refused(
    watcher: StrategyWatcher, running: tuple[Path, StrategyConfig]
) -> None:
    path, _ = running
    with path.open("a", encoding="utf-8") as file:
        file.write("\nlive:\n  capital: 1000\n")
    line = _line_of(path, "capital: 1000")

    refused = watcher.check()

    assert refused == ReloadRefused(
        (
            f"{_FILE}:{line}:12 live.capital: cannot change while the strategy runs "
            f"(absent -> 1000): the portfolio's accounting started from it; {_RESTART}",
        )
    )
