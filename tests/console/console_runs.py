"""Small real run folders for the console's tests (`make_runs`): a backtest of one
market, a backtest of a universe (watched by a rolling AUC monitor per symbol), a paper
run on the simulated clock, and a copy of the backtest whose strategy file holds a
canary secret."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests import forkserver
from tests.builders import OMIT, REPORTED, strategy_text
from tradeloom.backtest.run import run_strategy
from tradeloom.console.tokens import Tokens
from tradeloom.engine.wiring import build_pipeline
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-7f3c9e1d5b2a4c6e8f0a"
"""A secret that must appear in no page and no answer."""
TOKENS = Tokens("read-token-0123456789abcdef", "write-token-0123456789abcdef", "the test")

# a user's outputs: the console links and serves each run's report.html (and no page of
# it may show the canary)
ONE = strategy_text(REPORTED, name="one", execution={"allow_short": True})

UNIVERSE = strategy_text(
    REPORTED,
    name="many",
    data={"symbol": OMIT, "symbols": ["BTC/USDT", "ETH/USDT"]},
    execution={"allow_short": True},
    monitoring=[
        {
            "kind": "rolling_auc",
            "window": 60,
            "min_samples": 20,
            "warning_below": 0.55,
            "critical_below": 0.45,
        }
    ],
)


def tradeloom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = forkserver.tradeloom(*args, cwd=cwd, pythonpath=ROOT)
    assert done.returncode == 0, done.stderr
    return done


def backtest(strategy: Path, out: Path) -> None:
    """Backtest ``strategy`` into ``out`` as ``tradeloom run`` does, in this process (a
    command line's process costs 2 s of CPU more)."""
    config, plugins = load_strategy(strategy, [])
    run_strategy(build_pipeline(config), plugins, out=out)


def make_runs(work: Path) -> Path:
    """Make ``work/runs/`` with ``one-bt``, ``many-bt``, ``one-paper-simulated`` and
    ``canary-bt``; return it."""
    (work / "one.yaml").write_text(ONE)
    (work / "many.yaml").write_text(UNIVERSE)
    (work / "paper.yaml").write_text(ONE.replace("name: one", "name: one"))
    runs = work / "runs"
    backtest(work / "one.yaml", runs / "one-bt")
    backtest(work / "many.yaml", runs / "many-bt")
    tradeloom(
        "run", "paper.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
        "--max-bars", "3", "-q", cwd=work,
    )  # fmt: skip
    shutil.copytree(runs / "one-bt", runs / "canary-bt")
    strategy = runs / "canary-bt" / "strategy.yaml"
    strategy.write_text(
        strategy.read_text().replace("execution:", f"api_key: {CANARY}\nexecution:", 1)
    )
    return runs
