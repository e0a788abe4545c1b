"""``tradeloom kill --flatten`` through the command line, on the simulated clock: the run
journals the request, halts as a kill does, closes every position with market orders
(``EXIT_FLATTEN``) through its risk engine and venue, and a restart never flattens twice."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import forkserver
from tests.builders import OMIT, strategy_text
from tests.live.live_emulated import rows
from tradeloom.engine.status import read_status
from tradeloom.journal import read_rows

ONE_MARKET = strategy_text(
    name="flat_demo", signal={"threshold": 0.001}, execution={"allow_short": True}
)

UNIVERSE = strategy_text(
    name="flat_universe",
    seed=3,
    data={"symbol": OMIT, "symbols": ["BTC/USDT", "ETH/USDT"]},
    signal={"threshold": 0.001},
    risk={"sizing": {"fraction": 0.3}},
    execution={"initial_cash": 50000, "allow_short": True},
)


def tradeloom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # this checkout's package first (tests may run from a worktree beside an installed one)
    return forkserver.tradeloom(*args, cwd=cwd, pythonpath=Path(__file__).resolve().parents[2])


def play(cwd: Path, bars: int) -> None:
    done = tradeloom(
        "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
        "--max-bars", str(bars), "-q", cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def positions(run: Path) -> dict[str, float]:
    """Each symbol's position, as ``tradeloom status`` reads it from the journal."""
    return {p.symbol: p.quantity for p in read_status(run).positions}


def flatten_and_restart(tmp_path: Path, strategy: str, name: str) -> list[dict[str, Any]]:
    (tmp_path / "s.yaml").write_text(strategy)
    run = tmp_path / "runs" / f"{name}-paper-simulated"
    journal = run / "journal.sqlite"
    play(tmp_path, 4)
    assert any(abs(q) > 0 for q in positions(run).values()), "no position to flatten"

    kill = tradeloom("kill", str(run), "--flatten", "--reason", "leave now", cwd=tmp_path)
    assert kill.returncode == 0, kill.stderr
    assert kill.stdout.strip().endswith("is latched when it next starts")
    play(tmp_path, 3)

    requests = rows(journal, "control_request")
    assert [(r["action"], r["reason"], r["by"]) for r in requests] == [
        ("flatten", "leave now", "cli")
    ]
    states = rows(journal, "trading_state")
    assert [(s["state"], s["code"]) for s in states] == [("HALTED", "KILL_SWITCH")]
    assert states[0]["message"] == "flatten: leave now (by cli)"
    flattening = [
        {"bar": r.bar, "symbol": r.symbol, **r.values}
        for r in read_rows(journal, ["order"])
        if r.values["reason"] == "EXIT_FLATTEN"
    ]
    assert flattening and all(r["bar"] == requests[0]["bar"] + 1 for r in flattening)
    assert all(q == 0.0 for q in positions(run).values())
    # nothing but the flatten's orders after the kill
    later = [r["reason"] for r in rows(journal, "order") if r["bar"] > states[0]["bar"]]
    assert set(later) == {"EXIT_FLATTEN"}

    play(tmp_path, 2)  # a restart replays the flatten: no second order, still HALTED
    again = [r for r in rows(journal, "order") if r["reason"] == "EXIT_FLATTEN"]
    assert [r["id"] for r in again] == [r["id"] for r in flattening]
    assert len(rows(journal, "restarted")) == 2
    assert [s["code"] for s in rows(journal, "trading_state")] == ["KILL_SWITCH"]
    return flattening


@pytest.mark.slow
def test_kill_flatten_closes_the_position_once_on_one_market(tmp_path: Path) -> None:
    flattening = flatten_and_restart(tmp_path, ONE_MARKET, "flat_demo")
    assert len(flattening) == 1


@pytest.mark.slow
def test_kill_flatten_closes_every_symbol_of_a_universe(tmp_path: Path) -> None:
    flattening = flatten_and_restart(tmp_path, UNIVERSE, "flat_universe")
    assert {r["symbol"] for r in flattening} == {"BTC/USDT", "ETH/USDT"}
