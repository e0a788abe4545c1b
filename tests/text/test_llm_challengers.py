"""A ``text_llm`` strategy with a challenger on paper: the challenger's copy of the
features asks the champion's client (one lock, one rate gate, one breaker, one cache), so
it runs and no headline is asked twice. It stopped on ``TypeError: cannot pickle
'_thread.lock' object`` when the challenger's features were deep-copied, client and all."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.text.llm_fixtures import news_llm_document
from tradeloom.cli.main import main
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.plugins.features.text import TextFeature
from tradeloom.schemas.loader import load_strategy
from tradeloom.testing.llm_server import ChatServer


def _document(base_url: str) -> dict[str, Any]:
    document = news_llm_document(
        base_url, bars=600, train_window=200, retrain_every=200, n_estimators=10
    )
    model = document["model"]
    document["challengers"] = [
        {"name": "cautious", "model": model, "signal": {"kind": "threshold", "threshold": 0.1}}
    ]
    return document


def test_a_copy_of_a_text_feature_shares_its_scorer_and_owns_its_scores(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_document("http://127.0.0.1:9/v1"), sort_keys=False))
    (config,) = load_strategy(path)[:1]
    features = build_pipeline(config, mode="paper", served=True).features
    text = next(f for f in features if isinstance(f, TextFeature))
    text._scored[("doc", "hash")] = 0
    text.reasons["doc"] = "why"

    copied = next(f for f in copy.deepcopy(features) if isinstance(f, TextFeature))

    assert copied is not text and copied.scorer is text.scorer
    assert copied._scored == text._scored and copied._scored is not text._scored
    assert copied.reasons == text.reasons and copied.reasons is not text.reasons
    copied._scored[("other", "hash")] = 1
    assert ("other", "hash") not in text._scored


@pytest.mark.slow  # a paper run with a walk-forward forest and its challenger's
def test_a_text_llm_strategy_with_a_challenger_runs_on_paper_asking_each_headline_once(
    tmp_path: Path,
) -> None:
    with ChatServer() as server:
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(_document(f"{server.base_url}"), sort_keys=False))
        code = main(
            ["run", str(path), "--mode", "paper", "--clock", "simulated", "--speed", "max",
             "--max-bars", "6", "-q", "--out", str(tmp_path / "run")]
        )  # fmt: skip
        asked = [r.body["messages"][-1]["content"] for r in server.received if r.body]

    assert code == 0
    assert asked and len(asked) == len(set(asked))  # the challenger asked nothing again
    rows = list(read_rows(tmp_path / "run" / "journal.sqlite", ["challenger_bar"]))
    assert {r.values["challenger"] for r in rows} == {"cautious"}
    assert len(rows) == 6
