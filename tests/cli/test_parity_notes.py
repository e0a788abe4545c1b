"""An estimator that is not compiled is said to be, once: ``tradeloom validate`` and a
paper run print a located note, and the model logs ``model_not_compiled`` once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeloom.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_validate_and_a_paper_run_say_once_that_an_estimator_is_not_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "examples" / "two_strategies" / "reversion_eth.yaml").read_text()
    mlp = text.replace(
        "sklearn.linear_model.LogisticRegression", "sklearn.neural_network.MLPClassifier"
    ).replace("    C: 1.0", "    max_iter: 30\n    hidden_layer_sizes: [8]")
    mlp = mlp.replace("bars: 1500", "bars: 700").replace("train_window: 500", "train_window: 300")
    (tmp_path / "mlp.yaml").write_text(mlp)
    (tmp_path / "lr.yaml").write_text(text)
    line = next(i for i, s in enumerate(mlp.splitlines(), 1) if "estimator:" in s)
    note = (
        "MLPClassifier is not compiled; compiled are DecisionTreeClassifier, "
        "ExtraTreesClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier, "
        "LinearDiscriminantAnalysis, LogisticRegression, LogisticRegressionCV, "
        "RandomForestClassifier, SGDClassifier from scikit-learn; LGBMClassifier from "
        "LightGBM; XGBClassifier from XGBoost; a paper or live run "
        "predicts each bar alone with its predict_proba, which may differ from the "
        "backtest's batch prediction in the last bits"
    )
    located = f"mlp.yaml:{line}:14 model.estimator: note: {note}"

    # reversion_eth's LogisticRegression is compiled: no note (and no warning: a shipped
    # file sizes by fixed_fraction, with a long-only signal on its spot venue)
    assert main(["validate", "lr.yaml"]) == 0
    assert capsys.readouterr().err.splitlines() == []
    assert main(["validate", "mlp.yaml"]) == 0
    mine = [located]
    assert capsys.readouterr().err.splitlines() == mine

    paper = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "--max-bars", "5"]
    assert main(["run", "mlp.yaml", *paper, "--out", "paper", "-q"]) == 0
    err = capsys.readouterr().err.splitlines()
    # the notes once the run has started (a refused run says its refusal alone), among logs
    said = [line for line in err if not line.startswith("{")]
    assert said == mine
    logged = [json.loads(line) for line in err if line.startswith("{")]
    warned = [e for e in logged if e["event"] == "model_not_compiled"]
    assert [(e["estimator"], e["note"]) for e in warned] == [("MLPClassifier", note)]
