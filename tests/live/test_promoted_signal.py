"""A promotion puts the challenger's whole decision rule in force: its model and its
``signal:`` section (`tradeloom.live.lifecycle.promoted_signal`), on a paper run on the
simulated clock (the bars and candidates of `tests.live.test_promotion_gate`): the
champion's rule never trades (its threshold is out of reach), the challenger's does, so
a run that kept the champion's rule after the promotion would signal nothing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.live.live_emulated import trained_registry
from tests.live.test_promotion_gate import BARS, GATE, TRADING, gated, play, rows
from tradeloom.cli.main import main
from tradeloom.live.lifecycle import promotion

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def promoted(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    code, run = play(tmp_path_factory.mktemp("promoted"), gated(registry, GATE, better=True))
    assert code == 0
    return run


def signals(run: Path) -> list[tuple[int, Any]]:
    return [(r["bar"], r["direction"]) for r in rows(run, "signal")]


def test_the_signals_after_a_promotion_follow_the_challengers_rule(promoted: Path) -> None:
    [swap] = rows(promoted, "model_swapped")
    assert swap["signal"], "the promotion journals the rule it puts in force"
    after = [r for r in rows(promoted, "live_bar") if r["bar"] > swap["bar"]]
    expected = [r["bar"] for r in after if abs(r["probability"] - 0.5) * 2 >= TRADING["threshold"]]
    assert expected, "the challenger's rule would never trade here: proves nothing"
    assert [bar for bar, _ in signals(promoted) if bar > swap["bar"]] == expected


def test_status_names_the_promoted_rule_with_the_model(
    promoted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tradeloom status`` (and the console, by the same words) says the challenger's own
    signal rule is in force with its model: an operator reading it knows which threshold
    trades now."""
    [swap] = rows(promoted, "model_swapped")
    capsys.readouterr()
    assert main(["status", str(promoted), "--json"]) == 0
    words = json.loads(capsys.readouterr().out)["models"][""]
    rule = ", ".join(f"{k} {v}" for k, v in json.loads(swap["signal"]).items() if k != "kind")
    assert words.startswith(
        f"challenger saved's model with its signal rule threshold ({rule}), since bar {swap['bar']}"
    )
    assert f"threshold {TRADING['threshold']}" in words


def test_a_kill_after_the_promotion_restarts_under_the_challengers_rule(
    registry: Path, promoted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote = promotion.promote_passed
    played = [0]

    def dying(books: Any, *args: Any) -> None:
        played[0] += 1
        before = len(books.shadows)
        promote(books, *args)
        if len(books.shadows) < before:  # promoted, committed: kill -9 now
            store: Any = books.journal
            store._db.close()
            raise KeyboardInterrupt("kill -9")

    document = gated(registry, GATE, better=True)
    with monkeypatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, run = play(tmp_path, document)
    assert died != 0
    code, run = play(tmp_path, document, BARS - played[0])
    assert code == 0
    assert rows(run, "model_swapped") == rows(promoted, "model_swapped")
    assert signals(run) == signals(promoted)
    fills = [(r["bar"], r["side"], r["quantity"]) for r in rows(run, "fill")]
    assert fills == [(r["bar"], r["side"], r["quantity"]) for r in rows(promoted, "fill")]


def test_a_challenger_without_a_signal_keeps_the_champions(registry: Path, tmp_path: Path) -> None:
    document = gated(registry, GATE, better=True)
    document["signal"] = TRADING
    document["challengers"][0].pop("signal")
    code, run = play(tmp_path, document)
    assert code == 0
    [swap] = rows(run, "model_swapped")
    assert swap["signal"] == ""


def test_parity_replays_the_promoted_rule_from_its_bar(promoted: Path, tmp_path: Path) -> None:
    """``tradeloom parity`` replays the bars after the promotion under the challenger's
    rule (its ``model_swapped`` row's): no difference, the same signals."""
    import json
    import shutil

    from tradeloom.cli.main import main

    run = tmp_path / "run"
    shutil.copytree(promoted, run)
    assert main(["parity", str(run), "--out", str(tmp_path / "p")]) == 0
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert report["causes"] == {} and report["differences_by_bar"] == []
    assert signals(tmp_path / "p" / "reference") == signals(run)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(tick=st.integers(min_value=1, max_value=BARS - 1), lose=st.booleans())
def test_a_kill_at_any_tick_around_the_promotion_decides_as_the_run_left_alone(
    registry: Path, promoted: Path, tick: int, lose: bool
) -> None:
    """A kill -9 at any tick (``lose``: with that tick's uncommitted rows lost), before,
    at or after the promotion's: the restart journals the same promotion, signals and
    fills as the uninterrupted run."""
    document = gated(registry, GATE, better=True)
    with tempfile.TemporaryDirectory() as folder:
        run = killed_and_restarted(Path(folder), document, tick, lose)
        assert rows(run, "model_swapped") == rows(promoted, "model_swapped")
        assert signals(run) == signals(promoted)
        fills = [(r["bar"], r["side"], r["quantity"]) for r in rows(run, "fill")]
        assert fills == [(r["bar"], r["side"], r["quantity"]) for r in rows(promoted, "fill")]


def killed_and_restarted(folder: Path, document: dict[str, Any], tick: int, lose: bool) -> Path:
    """Play ``document`` in ``folder`` killed -9 at its ``tick``-th promotion stage (``lose``:
    with that tick's uncommitted rows lost), then restart it to the last bar: its run."""
    promote = promotion.promote_passed
    played = [0]

    def dying(books: Any, *args: Any) -> Any:
        played[0] += 1
        stage = promote(books, *args)
        if played[0] == tick:
            store: Any = books.journal
            if lose:
                store._buffer.clear()
                store._buffered = 0
            store._db.close()
            raise KeyboardInterrupt("kill -9")
        return stage

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, _ = play(folder, document)
        assert died != 0
    code, run = play(folder, document, BARS - played[0])
    assert code == 0
    return run


def _killed_after_promotion(
    registry: Path,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    document: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], int]:
    """A run killed -9 right after its promotion committed: its document, the ticks played."""
    promote = promotion.promote_passed
    played = [0]

    def dying(books: Any, *args: Any) -> None:
        played[0] += 1
        before = len(books.shadows)
        promote(books, *args)
        if len(books.shadows) < before:
            store: Any = books.journal
            store._db.close()
            raise KeyboardInterrupt("kill -9")

    document = document or gated(registry, GATE, better=True)
    with monkeypatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, _ = play(folder, document)
    assert died != 0
    return document, played[0]


def test_a_file_edited_while_down_keeps_the_promoted_rule_unless_it_edits_the_signal(
    registry: Path, promoted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hot reload (here the restart's, of a file edited while the run was down) that
    leaves ``signal:`` alone keeps the promoted rule; one that edits it puts the edited
    rule in force."""
    document, played = _killed_after_promotion(registry, tmp_path / "kept", monkeypatch)
    code, run = play(tmp_path / "kept", {**document, "description": "edited"}, BARS - played)
    assert code == 0 and rows(run, "config_reloaded")
    assert signals(run) == signals(promoted)

    document, played = _killed_after_promotion(registry, tmp_path / "edited", monkeypatch)
    edited = {"kind": "threshold", "threshold": 0.2}
    code, run = play(tmp_path / "edited", {**document, "signal": edited}, BARS - played)
    assert code == 0
    [reload] = rows(run, "config_reloaded")
    after = [r for r in rows(run, "live_bar") if r["bar"] > reload["bar"]]
    expected = [r["bar"] for r in after if abs(r["probability"] - 0.5) * 2 >= 0.2]
    assert [bar for bar, _ in signals(run) if bar > reload["bar"]] == expected
    assert expected != [r["bar"] for r in after if abs(r["probability"] - 0.5) * 2 >= 0.02]


def test_a_promotion_keeps_the_regimes_labelled_as_the_run_left_alone(
    registry: Path, tmp_path: Path
) -> None:
    """(review) A strategy with ``regime:``: the promotion rebuilds the strategy with the
    challenger's rule (`ruled_strategy`), whose ``regime`` is an equal, new object, and
    `rule_in_force` reset the regime labellers on identity (``is not``): from the
    promotion on the run labels its bars from scratch (a warm-up of trend_window bars,
    a volatility rank over a short lookback), where the run without a challenger, the
    backtest and ``tradeloom parity`` go on labelling from the history. A challenger
    deciding in ``regimes`` trades on other bars than it was evaluated on."""
    regime = {"trend_window": 4, "volatility_window": 3, "volatility_lookback": 6}
    document = gated(registry, GATE, better=True)
    document["regime"] = regime
    code, run = play(tmp_path / "promoted", document)
    assert code == 0
    [swap] = rows(run, "model_swapped")
    assert swap["signal"]
    alone = dict(document)
    alone.pop("challengers")
    code, left = play(tmp_path / "alone", alone)
    assert code == 0

    def labels(of: Path) -> list[tuple[int, str, str]]:
        return [(r["bar"], r["trend"], r["volatility"]) for r in rows(of, "regime_changed")]

    assert [r for r in labels(left) if r[0] > swap["bar"]], "no change after the promotion"
    assert labels(run) == labels(left)
