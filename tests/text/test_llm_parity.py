"""``tradeloom parity`` of a paper run whose text features asked an LLM: the replay reads
the run's answers and asks nothing; an answer a backtest reads otherwise, or not at all,
is named ``llm_answer_changed``."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import structlog
import yaml

from tradeloom.testing.llm_server import ChatServer
from tradeloom.text.llm_cache import CachedAnswer, read_answers

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "news_llm.yaml"
SETTINGS = (
    "data.bars=600",
    "model.walk_forward.train_window=200",
    "model.walk_forward.retrain_every=200",
    "model.params.n_estimators=10",
)


def tradeloom(*args: str) -> str:
    from tradeloom.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(["--quiet", *args])
    structlog.reset_defaults()
    assert code == 0, err.getvalue()
    return out.getvalue()


@pytest.mark.slow
def test_parity_replays_the_runs_answers_and_names_a_changed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("TRADELOOM_LLM_CACHE", str(shared))
    i = next(
        n for n, f in enumerate(yaml.safe_load(EXAMPLE.read_text())["features"])
        if f["kind"] == "text_llm"
    )  # fmt: skip
    paper = tmp_path / "paper"
    with ChatServer() as server:
        sets = [f"features.{i}.client.base_url={server.base_url}", *SETTINGS]
        sets = [a for s in sets for a in ("--set", s)]
        tradeloom("run", str(EXAMPLE), "--out", str(tmp_path / "backtest"), *sets)
        asked = len(server.received)
        tradeloom(
            "run", str(EXAMPLE), "--mode", "paper", "--clock", "simulated", "--speed", "max",
            "--out", str(paper), *sets,
        )  # fmt: skip
        assert len(server.received) == asked  # the paper run read the backtest's answers
        answers = read_answers(paper / "llm_answers.jsonl")
        assert set(answers) <= set(read_answers(tmp_path / "backtest" / "llm_answers.jsonl"))
        assert len(answers) > 50

        said = tradeloom("parity", str(paper))
        assert len(server.received) == asked  # the replay asked nothing
    # paper on the simulated clock steps the backtest's LLM features bit for bit
    columns = ["news_llm_sentiment", "news_llm_relevance", "news_llm_count"]
    batch = pd.read_parquet(tmp_path / "backtest" / "features.parquet").set_index("timestamp")
    live = pd.read_parquet(paper / "features.parquet").set_index("timestamp")
    assert live["news_llm_count"].sum() > 100
    pd.testing.assert_frame_equal(live[columns], batch.loc[live.index, columns], check_exact=True)
    assert "no difference: every bar's probability" in said
    assert "llm_answer_changed" not in said

    # the backtest's cache: one question answered otherwise, one never asked
    first, second = sorted(shared.glob("*/*.json"))[:2]
    record = json.loads(first.read_text())
    other = CachedAnswer(record["key"], record["request"], '{"sentiment": 1, "relevance": 1}')
    first.write_text(json.dumps(other.record()))
    absent = json.loads(second.read_text())["key"]
    second.unlink()

    said = tradeloom("parity", str(paper))

    assert (
        "llm_answer_changed: 2 LLM answers the run read are not a backtest's (1 answered "
        "otherwise, 1 absent from the shared cache); parity.json lists them"
    ) in said.splitlines()
    summary = json.loads((paper / "parity" / "parity.json").read_text())
    assert summary["causes"]["llm_answer_changed"]["count"] == 2
    hows = {a["key"]: (a["how"], a["backtest"]) for a in summary["llm_answers"]}
    assert hows == {
        record["key"]: ("changed", '{"sentiment": 1, "relevance": 1}'),
        absent: ("absent", None),
    }
