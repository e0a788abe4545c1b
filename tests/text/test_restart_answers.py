"""A restarted paper run reads back the LLM answers it kept and asks none of them again.

A restart rebuilds its features over the history and replays the journaled bars, and its
scorer's caches started empty: with ``shared_cache: false`` every headline answered
before the stop was asked again, and a model that answered differently (or not at all)
changed what the restarted run traded on, while the run's file kept the first answers:
``tradeloom parity`` and a backtest with ``answers:`` replayed other numbers than the
run's."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import structlog
import yaml

from tests.text.llm_fixtures import news_llm_document
from tradeloom.cli.main import main
from tradeloom.testing.llm_server import ChatServer, Reply
from tradeloom.text.llm_cache import RUN_FILE, read_answers


def _strategy(tmp_path: Path, base_url: str) -> Path:
    document = news_llm_document(
        base_url, bars=400, train_window=150, retrain_every=400, n_estimators=5
    )
    for feature in document["features"]:
        if feature["kind"] == "text_llm":
            feature["client"].update(max_attempts=1, backoff_seconds=0.01)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _paper(strategy: Path, out: Path, bars: int) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(
            ["--quiet", "run", str(strategy), "--mode", "paper", "--clock", "simulated",
             "--speed", "max", "--max-bars", str(bars), "--out", str(out)]
        )  # fmt: skip
    structlog.reset_defaults()
    assert code == 0, err.getvalue()


def _text_features(run: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run / "features.parquet").set_index("timestamp")
    return frame[[c for c in frame.columns if c.startswith("news_llm_")]]


def _asked(server: ChatServer) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in server.received if r.body]


def _otherwise(body: Any) -> Reply:
    return Reply(json.dumps({"sentiment": -0.5, "relevance": 0.25}))


def _refuse(body: Any) -> Reply:
    return Reply(status=500, body='{"error": {"message": "overloaded"}}')


@pytest.mark.slow  # two paper runs of a walk-forward forest
@pytest.mark.parametrize("then", ["answers otherwise", "refuses"])
def test_a_restarted_run_asks_no_headline_again_and_keeps_its_first_answers(
    tmp_path: Path, then: str
) -> None:
    run = tmp_path / "run"
    with ChatServer() as server:
        strategy = _strategy(tmp_path, server.base_url)
        _paper(strategy, run, 3)
        asked_first = set(_asked(server))
        kept = read_answers(run / RUN_FILE)
        assert asked_first and len(kept) == len(asked_first)
        traded = _text_features(run)

        # the model answers each headline otherwise now, or not at all
        server.answer = _refuse if then == "refuses" else _otherwise
        server.received.clear()
        _paper(strategy, run, 3)
        asked_again = asked_first & set(_asked(server))

    assert not asked_again, f"{len(asked_again)} of {len(asked_first)} headlines asked again"
    after = read_answers(run / RUN_FILE)
    assert {key: after[key] for key in kept} == kept
    # the bars before the stop, replayed by the restart, read the answers they traded on
    replayed = _text_features(run).loc[traded.index]
    pd.testing.assert_frame_equal(replayed, traded, check_exact=True)
