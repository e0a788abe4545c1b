"""The ``max_parity_gap`` rollback rule: the run's return since a canary (or a watch)
started against its replay's on the same bars (`tradeloom.live.lifecycle.parity_twin`).

On paper the replay books what the run books, bar for bar: the gap is exactly 0 at every
close, and a canary with the smallest limit passes; kill -9 in its middle and the restart
(whose replay is rebuilt from the journal) reads the same gaps and journals the same run.
On the exchange emulator a clean canary stays within its limit, and one whose orders are
filled in parts from its start (the emulator's `PartialFill`, as
tests/diagnostics/test_parity_causes.py injects it) rolls back with the rule named and
its figure, which ``tradeloom parity``'s replay of the run gives too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.live.test_canary import (
    BARS,
    CANARY_BARS,
    bars_played,
    canaried,
    equity_at,
    kept,
    killed_in_the_canary,
    live_text,
    rows,
)
from tests.live.test_challengers import play
from tradeloom.cli.main import main
from tradeloom.live.lifecycle import promotion_stage
from tradeloom.live.lifecycle.watched import CanaryFigures, fired
from tradeloom.schemas.strategy import RollbackWhen
from tradeloom.testing import PartialFill

POST = "POST /api/v3/order"
TINY = 1e-12
"""A limit only a replay that differs from the run by more than rounding passes."""
LIVE_LIMIT = 1e-4
"""The live runs' limit: a tenth of the 10 bps fee on a canary's position, far above what
a clean run's rounding (lot sizes, the fee taken in the base asset) leaves."""
LIVE_END = 135
"""The emulator's bar the live runs end at (they start at its bar 100)."""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.live.live_emulated import trained_registry

    return trained_registry(tmp_path_factory.mktemp("registry"))


@contextmanager
def gaps_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Collect the parity gap the stage reads at each close (`fired`'s third argument)."""
    seen: list[float] = []

    def spy(rules: RollbackWhen, figures: CanaryFigures, gap: float = math.nan) -> Any:
        seen.append(gap)
        return fired(rules, figures, gap)

    with monkeypatch.context() as patched:
        patched.setattr(promotion_stage, "fired", spy)
        yield seen


def test_the_rule_fires_past_its_limit_on_either_side() -> None:
    figures = CanaryFigures(0.0, math.nan, math.nan, 0)
    rules = RollbackWhen(max_parity_gap=0.002)
    assert fired(rules, figures, 0.002) is None
    assert fired(rules, figures, -0.0021) == ("max_parity_gap", 0.0021, 0.002)
    assert fired(rules, figures, 0.003) == ("max_parity_gap", 0.003, 0.002)
    assert fired(rules, figures) is None  # no replay: NaN, never fires
    assert fired(RollbackWhen(), figures, 0.5) is None  # no such rule
    both = RollbackWhen(max_drawdown=0.01, max_parity_gap=0.002)
    assert fired(both, CanaryFigures(0.02, math.nan, math.nan, 0), 0.003)[0] == "max_drawdown"


@given(
    gap=st.floats(-1.0, 1.0, allow_nan=False),
    limit=st.floats(1e-9, 0.999, allow_nan=False),
)
def test_the_gap_rule_fires_exactly_past_its_size(gap: float, limit: float) -> None:
    figures = CanaryFigures(0.0, math.nan, math.nan, 0)
    verdict = fired(RollbackWhen(max_parity_gap=limit), figures, gap)
    assert (verdict is not None) == (abs(gap) > limit)
    if verdict is not None:
        assert verdict == ("max_parity_gap", abs(gap), limit)


def test_rules_without_the_gap_journal_as_before() -> None:
    rules = RollbackWhen(max_drawdown=0.03)
    assert "max_parity_gap" not in rules.journaled()
    assert RollbackWhen.model_validate_json(rules.journaled()) == rules
    gap = RollbackWhen(max_parity_gap=0.002)
    assert RollbackWhen.model_validate_json(gap.journaled()).max_parity_gap == 0.002


@pytest.fixture(scope="module")
def paper(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """An uninterrupted paper run through a canary with the tiniest gap limit, and the
    gaps read at its closes."""
    with pytest.MonkeyPatch.context() as monkeypatch, gaps_read(monkeypatch) as gaps:
        document = canaried(registry, {"max_parity_gap": TINY})
        code, run = play(tmp_path_factory.mktemp("paper"), document, BARS)
    assert code == 0
    return run, gaps


def test_on_paper_the_replay_books_what_the_run_books(paper: tuple[Path, list[float]]) -> None:
    run, gaps = paper
    [started] = rows(run, "canary_started")
    [ended] = rows(run, "canary_passed")
    assert rows(run, "canary_rolled_back") == []
    assert ended["bar"] == started["bar"] + CANARY_BARS
    assert RollbackWhen.model_validate_json(started["rollback_when"]).max_parity_gap == TINY
    assert len(gaps) == CANARY_BARS and gaps == [0.0] * CANARY_BARS


def test_a_kill_in_the_canary_rebuilds_the_replay_from_the_journal(
    registry: Path,
    paper: tuple[Path, list[float]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uninterrupted, _ = paper
    document = canaried(registry, {"max_parity_gap": TINY})
    run = killed_in_the_canary(tmp_path, monkeypatch, document, 3)
    with gaps_read(monkeypatch) as gaps:
        code, run = play(tmp_path, document, BARS - bars_played(run))
    assert code == 0
    assert kept(run) == kept(uninterrupted)
    # the restart read its last bar again, then the canary's remaining bars: all 0
    assert gaps == [0.0] * (CANARY_BARS - 3 + 1)


def test_a_watch_on_paper_reads_no_gap(registry: Path, tmp_path: Path) -> None:
    from tests.live.test_promotion_watch import watched

    code, run = play(tmp_path, watched(registry, {"max_parity_gap": TINY}, bars=5), BARS)
    assert code == 0
    [done] = rows(run, "watch_passed")
    assert done["parity_gap"] == 0.0 and done["bars"] == 5


def live_canary(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry: Path,
    *,
    parts: float | None,
) -> Path:
    """A live run on the emulator whose challenger is promoted through a canary with the
    rule ``max_parity_gap: LIVE_LIMIT``; from the canary's start every order fills at most
    ``parts`` of its quantity a bar (None: as the emulator fills it). Return its folder."""
    from tests.live.live_emulated import emulated_run, promotions_of

    document = yaml.safe_load(live_text(registry))
    canary = document["challengers"][0]["promote_when"]["canary"]
    canary["rollback_when"] = {"max_parity_gap": LIVE_LIMIT}
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch, text=yaml.safe_dump(document)) as run:
        runner = run.runner(run_dir)
        runner.start()
        injected = False
        try:
            while run.emulator.exchange.position < LIVE_END:
                run.emulator.advance()
                runner.tick()
                stage = promotions_of(runner)
                started = stage is not None and stage.canary is not None
                if parts is not None and started and not injected:
                    run.emulator.faults.always(POST, PartialFill(parts))
                    injected = True
        finally:
            runner.stop("test over")
        assert run.emulator.errors == []
    return run_dir


def test_a_clean_live_canary_stays_within_its_gap(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with gaps_read(monkeypatch) as gaps:
        run = live_canary(tmp_path, monkeypatch, registry, parts=None)
    [started] = rows(run, "canary_started")
    [ended] = rows(run, "canary_passed")
    assert rows(run, "canary_rolled_back") == []
    assert ended["bar"] == started["bar"] + CANARY_BARS
    assert len(gaps) == CANARY_BARS and all(abs(g) <= LIVE_LIMIT for g in gaps)


def test_a_live_canary_filled_in_parts_rolls_back_on_its_gap(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = live_canary(tmp_path, monkeypatch, registry, parts=0.2)
    [started] = rows(run, "canary_started")
    [back] = rows(run, "canary_rolled_back")
    assert rows(run, "canary_passed") == []
    assert (back["challenger"], back["by"], back["rule"], back["limit"]) == (
        "next",
        "canary",
        "max_parity_gap",
        LIVE_LIMIT,
    )
    assert back["figure"] > LIVE_LIMIT
    assert back["reason"].startswith(f"max_parity_gap: {back['figure']:.6g} past the limit")
    parts = {r["order_id"] for r in rows(run, "fill") if r["bar"] > started["bar"]}
    assert parts, "no order filled during the canary"
    returned = rows(run, "model_swapped")[-1]
    assert (returned["bar"], returned["by"]) == (back["bar"], "canary")
    # the figure is what `tradeloom parity`'s replay of the run gives
    out = tmp_path / "parity"
    main(["parity", str(run), "--out", str(out)])
    mine = equity_at(run)
    frame = pd.read_csv(out / "reference" / "equity.csv")
    theirs = dict(
        zip(
            pd.to_datetime(frame["timestamp"], utc=True), frame["equity"].astype(float), strict=True
        )
    )
    time = {r["bar"]: pd.Timestamp(r["timestamp"]) for r in rows(run, "live_bar")}
    s, t = started["bar"], back["bar"]
    gap = mine[t] / mine[s] - theirs[time[t]] / theirs[time[s]]
    assert back["figure"] == pytest.approx(abs(gap), rel=1e-6)
    assert np.isfinite(gap)
