"""A ``text_llm`` strategy with a challenger on paper: the challenger's copy of the
features asks the champion's client (one lock, one rate gate, one breaker, one cache), so
it runs and no headline is asked twice. It stopped on ``TypeError: cannot pickle
'_thread.lock' object`` when the challenger's features were deep-copied, client and all.

A challenger a hot reload adds decides on copies of the running features too: it copied
the reload's newly built ones, whose scorer asked the model every headline of the
history again, apart from the run's rate gate, and kept its answers where the run never
wrote them (a restart starts it on the running features: on other answers)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.text.llm_fixtures import news_llm_document
from tradeloom.cli.main import main
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.journal.sqlite import SqliteJournal
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.features.text import TextFeature
from tradeloom.schemas.loader import load_strategy
from tradeloom.testing.llm_server import ChatServer
from tradeloom.text.llm_cache import RUN_FILE, read_answers


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


@pytest.mark.slow  # a paper run with a walk-forward forest, and a challenger added
def test_a_challenger_a_reload_adds_asks_the_running_scorer_and_rests_on_kept_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, object]] = []
    with ChatServer() as server:
        document = _document(server.base_url)
        edited = yaml.safe_dump(document, sort_keys=False)  # the challenger added
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({**document, "challengers": []}, sort_keys=False))
        run = tmp_path / "run"

        real_tick = LiveRunner.tick

        def tick(self: LiveRunner, *args: Any, **kwargs: Any) -> int:
            processed = real_tick(self, *args, **kwargs)
            if self.bars_processed == 3 and path.read_text() != edited:
                path.write_text(edited)  # taken at the next tick's bar boundary
                os.utime(path, ns=(1, 1))  # (an old mtime: the watcher trusts its stat)
            return processed

        real_flush = SqliteJournal.flush

        def flush(self: SqliteJournal, *, durable: bool = True) -> None:
            if self._buffered:
                kinds = {schema.kind for schema in self._buffer}
                kept = len(read_answers(run / RUN_FILE)) if (run / RUN_FILE).is_file() else 0
                asked = len({r.body["messages"][-1]["content"] for r in server.received})
                events.append((f"{asked}/{kept}", kinds))
            real_flush(self, durable=durable)

        monkeypatch.setattr(LiveRunner, "tick", tick)
        monkeypatch.setattr(SqliteJournal, "flush", flush)
        code = main(
            ["run", str(path), "--mode", "paper", "--clock", "simulated", "--speed", "max",
             "--max-bars", "6", "-q", "--out", str(run)]
        )  # fmt: skip
        asked = [r.body["messages"][-1]["content"] for r in server.received if r.body]

    assert code == 0
    assert len(list(read_rows(run / "journal.sqlite", ["challenger_added"]))) == 1
    bars = list(read_rows(run / "journal.sqlite", ["challenger_bar"]))
    assert {r.values["challenger"] for r in bars} == {"cautious"} and len(bars) == 3
    assert asked and len(asked) == len(set(asked))  # the added one asked nothing again
    assert len(read_answers(run / RUN_FILE)) == len(asked)
    # every answer read was on disk before each commit, the reload's included
    at_reload = [said for said, kinds in events if "challenger_added" in kinds]
    assert at_reload
    for said, kinds in events:
        asked_then, kept_then = map(int, said.split("/"))
        assert kept_then >= asked_then, f"{said} at {kinds}"
