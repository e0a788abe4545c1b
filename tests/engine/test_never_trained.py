"""A run whose model never trained says so: a warning line, a CRITICAL health, and a
backtest exits 1 (`tradeloom.engine.health.never_trained`).

It used to end HEALTHY with exit 0 and no word, its equity flat: nothing predicted,
nothing traded. The folder is still written whole, for the diagnosis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.builders import REPORTED, strategy, write_strategy
from tradeloom.cli.main import main
from tradeloom.domain import ModelTraining
from tradeloom.engine.health import never_trained, run_health

_NO_FOLD = (
    "MODEL_NEVER_TRAINED: the model never trained: no walk-forward fold could train: the "
    "first needs 152 bars with every feature known before the bar it predicts "
    "(min_train_rows 150 + label.horizon 2 + embargo 0)"
)


@dataclass
class _WalkForward:
    def first_fold_bar(self) -> tuple[int, str]:
        return 152, "min_train_rows 150 + label.horizon 2 + embargo 0"


def _fold(index: int, skipped: str = "") -> ModelTraining:
    return ModelTraining(index, 0, 149, 152, 251, 150, 70, 2, "RandomForestClassifier", skipped)


def test_the_reason_names_the_skipped_folds_or_the_rows_missing() -> None:
    model = _WalkForward()
    skipped = [_fold(0, "single class in training rows"), _fold(1, "single class in training rows")]
    assert never_trained(model, skipped) == (
        "MODEL_NEVER_TRAINED: the model never trained: its 2 walk-forward folds were skipped "
        "(single class in training rows); it predicted nothing"
    )
    features = pd.DataFrame(
        {"log_return_1": np.r_[np.nan, np.ones(99)], "obv": np.full(100, np.nan)}
    )
    assert never_trained(model, [], features) == (
        f"{_NO_FOLD}, and 0 of the 100 bars have every feature (obv is NaN on every bar); "
        "it predicted nothing"
    )
    assert never_trained(model, [], None) == f"{_NO_FOLD}; it predicted nothing"
    assert never_trained(model, [*skipped, _fold(2)]) is None  # one fold trained
    assert never_trained(object(), []) is None  # precomputed, a saved model: trains nothing


def test_a_model_that_never_trained_makes_the_run_critical_whatever_its_monitors_say() -> None:
    assert run_health(["HEALTHY"], "MODEL_NEVER_TRAINED: ...") == "CRITICAL"
    assert run_health([], "MODEL_NEVER_TRAINED: ...") == "CRITICAL"
    assert run_health(["HEALTHY", "WARNING"], None) == "WARNING"
    assert run_health([], None) is None


def _untrainable(folder: Path) -> Path:
    """The base strategy with a 300-bar SMA over 400 bars: 101 bars have every feature,
    the first fold needs 152."""
    doc = strategy(
        REPORTED,  # a run that never trained still writes its whole folder
        features=[{"kind": "log_return", "period": 1}, {"kind": "sma", "window": 300}],
        monitoring=[{"kind": "rolling_auc", "window": 100}],
    )
    return write_strategy(folder, doc)


def test_a_backtest_whose_model_never_trained_warns_is_critical_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["run", str(_untrainable(tmp_path)), "--out", str(out), "-q"]) == 1
    printed = capsys.readouterr()
    reason = f"{_NO_FOLD}, and 101 of the 400 bars have every feature; it predicted nothing"
    lines = printed.out.splitlines()
    assert "  health                    CRITICAL at the end (the model never trained)" in lines
    assert f"  warning                   {reason}" in lines
    assert printed.err.splitlines()[-1] == f"run failed: {reason}"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model_never_trained"] == reason
    assert (metrics["health"], metrics["health_worst"]) == ("CRITICAL", "CRITICAL")
    assert metrics["monitoring"]["rolling_auc"]["status"] == "HEALTHY"  # the monitor's own
    assert (out / "report.html").is_file()  # the folder is whole


def test_a_paper_run_whose_model_never_trained_is_critical_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its exit stays the stop's (a supervisor restarts a run that exits 1); its health
    and its last line say it."""
    out = tmp_path / "paper"
    command = ["run", str(_untrainable(tmp_path)), "--mode", "paper", "--clock", "simulated"]
    assert main([*command, "--out", str(out), "--max-bars", "3", "-q"]) == 0
    reason = f"{_NO_FOLD}; it predicted nothing"
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"; health CRITICAL: {reason}")
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["health"], metrics["model_never_trained"]) == ("CRITICAL", reason)
