"""A model of the single-market form trains live as it did: a paper run of it journals the
built-in model's rows.

A third-party model written before the protocols were over symbols trains its folds live
by ``train_next(bars, features, reason=...)`` and ``scheduled_start(bars, features)``;
`TrainerOverSymbols` drives it as the `LiveTrainer` of its universe of one, with a
`TradeloomDeprecationWarning`. The fixture plugin ``one_market_rf``
(``tests/fixtures/plugins/one_market_model.py``) is the built-in ``sklearn`` model seen
through those calls: its paper run on the simulated clock, folds trained as bars close,
journals the very rows of the built-in model's run. So does ``universe_rf``, the same
model written over symbols (``fit_predict_universe``) whose live trainer is still of the
single-market form, driven through `LiveTrainerOverSymbols`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests import forkserver
from tests.builders import BASE, strategy_text
from tests.live.live_emulated import rows

pytestmark = pytest.mark.slow  # paper runs through the CLI

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
KINDS = ("model_trained", "signal", "risk_decision", "order", "fill", "live_bar")


def _paper(folder: Path, kind: str, *more: str) -> Path:
    text = strategy_text(
        name="sim_demo",
        plugins=["one_market_model"],
        data={"bars": 160},
        model={
            **BASE["model"],
            "kind": kind,
            "walk_forward": {"train_window": 50, "retrain_every": 7},
        },
    )
    (folder / f"{kind}.yaml").write_text(text, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIXTURES)]),
        "PYTHONWARNINGS": "default",
    }
    run = folder / kind
    command = [
        sys.executable, "-m", "tradeloom.cli.main", "run", f"{kind}.yaml", "--mode", "paper",
        "--clock", "simulated", "--speed", "max", "-q", "--out", str(run), *more,
    ]  # fmt: skip
    proc = forkserver.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert ("TradeloomDeprecationWarning" in proc.stderr) is (kind != "sklearn")
    return run / "journal.sqlite"


def _journaled(journal: Path) -> dict[str, list[dict[str, object]]]:
    # an order's id starts with the run's (a hash of its file: the kinds differ)
    drop = {"wall_time", "seconds", "id", "order_id", "client_order_id", "correlation_id"}
    return {
        kind: [{k: v for k, v in row.items() if k not in drop} for row in rows(journal, kind)]
        for kind in KINDS
    }


@pytest.mark.parametrize("kind", ["one_market_rf", "universe_rf"])
def test_a_single_market_trainer_trains_live_as_the_built_in_model(
    tmp_path: Path, kind: str
) -> None:
    old = _journaled(_paper(tmp_path, kind, "--max-bars", "20"))
    new = _journaled(_paper(tmp_path, "sklearn", "--max-bars", "20"))

    assert len(old["model_trained"]) >= 3  # the fold in effect, then folds as bars close
    assert len(old["live_bar"]) == 20
    assert old == new
