"""A promotion puts the challenger's own ``sizing:`` in force with its model and its
signal rule (`tradeloom.live.lifecycle.promoted_signal`), on a paper run on the simulated
clock (the bars and candidates of `tests.live.test_promotion_gate`): the champion never
trades before the promotion (its threshold is out of reach), so every entry is sized by
the sizing in force after it. The challenger is scored in shadow at `OWN` of equity, the
strategy's ``risk.sizing`` says `FILES`; a run that kept the file's sizing after the
promotion would trade positions of another size than the gate evaluated."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.live.live_emulated import trained_registry
from tests.live.test_promoted_signal import _killed_after_promotion, killed_and_restarted
from tests.live.test_promotion_gate import BARS, GATE, gated, play, rows

pytestmark = pytest.mark.slow

OWN = {"kind": "fixed_fraction", "fraction": 0.2}
"""The challenger's own sizing."""

FILES = {"kind": "fixed_fraction", "fraction": 0.5}
"""The strategy file's ``risk.sizing``."""


def sized(registry: Path, *, own: dict[str, Any] | None = OWN) -> dict[str, Any]:
    """`gated`'s better challenger sized by ``own`` (None: it declares no sizing), the
    strategy by `FILES`."""
    document = gated(registry, GATE, better=True)
    document["risk"] = {**document["risk"], "sizing": FILES}
    if own is not None:
        document["challengers"][0]["sizing"] = own
    return document


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def promoted(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    code, run = play(tmp_path_factory.mktemp("promoted"), sized(registry))
    assert code == 0
    return run


def fills(run: Path) -> list[tuple[int, Any, Any]]:
    return [(r["bar"], r["side"], r["quantity"]) for r in rows(run, "fill")]


def fractions(run: Path, after: int = -1) -> list[float]:
    """The size of each accepted entry after bar ``after``, as a fraction of equity."""
    return [
        abs(r["target_fraction"])
        for r in rows(run, "risk_decision")
        if r["bar"] > after and r["outcome"] == "accepted"
    ]


def test_the_entries_after_a_promotion_are_sized_by_the_challengers_sizing(
    promoted: Path,
) -> None:
    [swap] = rows(promoted, "model_swapped")
    assert json.loads(swap["sizing"]) == OWN, "the promotion journals the sizing in force"
    sizes = fractions(promoted)
    assert sizes, "nothing traded after the promotion: proves nothing"
    assert all(r["bar"] >= swap["bar"] for r in rows(promoted, "risk_decision"))
    assert sizes == [OWN["fraction"]] * len(sizes)


def test_a_promoted_sizing_trades_as_the_file_sizing_it_would_have_been(
    registry: Path, promoted: Path, tmp_path: Path
) -> None:
    """The same run with the challenger's sizing written as the strategy's own (and none
    of the challenger's) fills the same quantities at the same bars."""
    document = sized(registry, own=None)
    document["risk"] = {**document["risk"], "sizing": OWN}
    code, run = play(tmp_path, document)
    assert code == 0
    assert fills(run) and fills(run) == fills(promoted)
    [swap] = rows(run, "model_swapped")
    assert swap["sizing"] == "", "a challenger with no sizing keeps the file's"


def test_a_kill_right_after_the_promotion_restarts_with_the_same_sizes(
    registry: Path, promoted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document, played = _killed_after_promotion(registry, tmp_path, monkeypatch, sized(registry))
    code, run = play(tmp_path, document, BARS - played)
    assert code == 0
    assert rows(run, "model_swapped") == rows(promoted, "model_swapped")
    assert fills(run) == fills(promoted)
    sizes = fractions(run)
    assert sizes and sizes == [OWN["fraction"]] * len(sizes)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(tick=st.integers(min_value=1, max_value=BARS - 1), lose=st.booleans())
def test_a_kill_at_any_tick_around_the_promotion_sizes_as_the_run_left_alone(
    registry: Path, promoted: Path, tick: int, lose: bool
) -> None:
    """A kill -9 at any tick (``lose``: with that tick's uncommitted rows lost), before,
    at or after the promotion's: the restart journals the same promotion and fills the
    same quantities as the uninterrupted run."""
    with tempfile.TemporaryDirectory() as folder:
        run = killed_and_restarted(Path(folder), sized(registry), tick, lose)
        assert rows(run, "model_swapped") == rows(promoted, "model_swapped")
        assert fills(run) == fills(promoted)
        assert fractions(run) == fractions(promoted) == [OWN["fraction"]] * len(fractions(run))


def test_parity_replays_the_promoted_sizing_from_its_bar(promoted: Path, tmp_path: Path) -> None:
    """``tradeloom parity`` replays the bars after the promotion with the challenger's
    sizing (its ``model_swapped`` row's): no difference, the same fills."""
    from tradeloom.cli.main import main

    run = tmp_path / "run"
    shutil.copytree(promoted, run)
    assert main(["parity", str(run), "--out", str(tmp_path / "p")]) == 0
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert report["causes"] == {} and report["differences_by_bar"] == []
    reference = tmp_path / "p" / "reference"
    assert fills(reference) == fills(run)
    sizes = fractions(reference)
    assert sizes and sizes == [OWN["fraction"]] * len(sizes)


def test_a_reload_keeps_the_promoted_sizing_unless_it_edits_risk_sizing(
    registry: Path, promoted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hot reload (the restart's, of a file edited while the run was down) that edits
    ``risk:`` but not its ``sizing`` keeps the promoted sizing; one that edits
    ``risk.sizing`` puts the file's new sizing in force."""
    folder = tmp_path / "kept"
    document, played = _killed_after_promotion(registry, folder, monkeypatch, sized(registry))
    limits = {**document["risk"], "max_holding_bars": 500}
    code, run = play(folder, {**document, "risk": limits}, BARS - played)
    assert code == 0 and rows(run, "config_reloaded")
    assert fills(run) == fills(promoted)
    assert fractions(run) == [OWN["fraction"]] * len(fractions(run))

    folder = tmp_path / "edited"
    document, played = _killed_after_promotion(registry, folder, monkeypatch, sized(registry))
    edited = {**document["risk"], "sizing": {"kind": "fixed_fraction", "fraction": 0.3}}
    code, run = play(folder, {**document, "risk": edited}, BARS - played)
    assert code == 0
    [reload] = rows(run, "config_reloaded")
    sizes = fractions(run, reload["bar"])
    assert sizes and sizes == [0.3] * len(sizes)


def test_a_rollback_puts_the_files_sizing_back(registry: Path, tmp_path: Path) -> None:
    """A watch's rollback (`tests.live.test_promotion_watch`'s run, its challenger sized by
    `OWN`) journals '' and sizes from its bar on by the strategy's ``risk.sizing`` again."""
    from tests.live import test_promotion_watch as watch

    document = watch.watched(registry, {"max_drawdown": watch.LIMIT})
    document["challengers"][0]["sizing"] = OWN
    code, run = play(tmp_path / "rolled", document, 120)
    assert code == 0
    promoted, returned = rows(run, "model_swapped")
    assert json.loads(promoted["sizing"]) == OWN and returned["sizing"] == ""
    between = [
        abs(r["target_fraction"])
        for r in rows(run, "risk_decision")
        if promoted["bar"] < r["bar"] <= returned["bar"] and r["outcome"] == "accepted"
    ]
    assert between and between == [OWN["fraction"]] * len(between)
    files = document["risk"]["sizing"]["fraction"]
    after = fractions(run, returned["bar"])
    assert after and after == [files] * len(after)
