"""examples/news_llm.yaml through the real CLI against the stand-in server: the answers
kept with the run and shared, a rerun asking nothing, a damaged cache refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests import forkserver
from tradeloom.testing.llm_server import ChatServer, Reply
from tradeloom.text.llm_cache import RUN_FILE, read_answers

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "news_llm.yaml"
FAST = [
    "data.bars=1200",
    "model.walk_forward.train_window=400",
    "model.walk_forward.retrain_every=400",
    "model.params.n_estimators=10",
]


def llm_feature(document: dict) -> int:
    """Return the position of the example's text_llm feature."""
    return next(i for i, f in enumerate(document["features"]) if f["kind"] == "text_llm")


def run(out: Path, cache: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    args = ["run", str(EXAMPLE), "--out", str(out)]
    args += [a for s in (*FAST, *sets) for a in ("--set", s)]
    env = {**os.environ, "TRADELOOM_LLM_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    return forkserver.run(  # the real command, forked: no new interpreter's imports
        [sys.executable, "-m", "tradeloom.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
        check=False,
    )


@dataclass(frozen=True)
class FirstRun:
    """The example's first run against the stand-in server, which stays up for the module:
    its folder, its shared cache (read, never written, by the tests: a test that damages
    it damages a copy), the server and the ``--set`` that points the example at it."""

    folder: Path
    cache: Path
    server: ChatServer
    at: str
    asked: int


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    folder = tmp_path_factory.mktemp("news_llm")
    i = llm_feature(yaml.safe_load(EXAMPLE.read_text()))
    with ChatServer() as server:
        at = f"features.{i}.client.base_url={server.base_url}"
        first = run(folder / "one", folder / "cache", at)
        assert first.returncode == 0, first.stderr
        yield FirstRun(folder / "one", folder / "cache", server, at, len(server.received))


@pytest.mark.slow
def test_the_example_runs_its_answers_are_kept_and_a_rerun_asks_nothing(
    tmp_path: Path, first_run: FirstRun
) -> None:
    i = llm_feature(yaml.safe_load(EXAMPLE.read_text()))
    cache, server, at, asked = first_run.cache, first_run.server, first_run.at, first_run.asked
    answers = read_answers(first_run.folder / RUN_FILE)
    assert asked == len(answers) > 100  # one call per distinct headline seen
    assert len(list(cache.glob("*/*.json"))) == asked
    assert len(server.received) == asked  # nothing asked since

    again = run(tmp_path / "two", cache, at)
    assert again.returncode == 0, again.stderr
    assert len(server.received) == asked  # 0 calls
    one = pd.read_parquet(first_run.folder / "features.parquet")
    two = pd.read_parquet(tmp_path / "two" / "features.parquet")
    assert [c for c in one.columns if c.startswith("news_llm_")] == [
        "news_llm_sentiment",
        "news_llm_relevance",
        "news_llm_count",
    ]
    pd.testing.assert_frame_equal(one, two)
    assert (tmp_path / "two" / RUN_FILE).read_bytes() == (first_run.folder / RUN_FILE).read_bytes()

    # a replay from the run's own file: no shared folder, no calls, the same numbers
    replay = run(
        tmp_path / "three",
        tmp_path / "empty",
        at,
        f"features.{i}.answers={first_run.folder}",
        f"features.{i}.shared_cache=false",
        f"features.{i}.calls=false",
    )
    assert replay.returncode == 0, replay.stderr
    assert len(server.received) == asked
    three = pd.read_parquet(tmp_path / "three" / "features.parquet")
    pd.testing.assert_frame_equal(one, three)


@pytest.mark.slow
def test_a_damaged_cache_stops_the_run_in_one_line(tmp_path: Path, first_run: FirstRun) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(first_run.cache, cache)  # the first run's answers, damaged below
    server, at = first_run.server, first_run.at
    stored = sorted(cache.glob("*/*.json"))[0]
    record = json.loads(stored.read_text())
    record["answer"] = '{"sentiment": 1, "relevance": 1}'  # edited by hand
    stored.write_text(json.dumps(record))
    asked = len(server.received)

    done = run(tmp_path / "two", cache, at)

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"{stored}: answer {record['key'][:12]} fails its check; the cache is damaged: delete it\n"
    )
    assert len(server.received) == asked  # never asked again, never answered otherwise


@pytest.mark.slow
def test_malformed_answers_are_journaled_and_the_run_goes_on(tmp_path: Path) -> None:
    from tradeloom.journal.reader import read_events

    i = llm_feature(yaml.safe_load(EXAMPLE.read_text()))
    with ChatServer() as server:
        server.script += [Reply("I cannot answer that.")] * 3
        done = run(
            tmp_path / "one",
            tmp_path / "cache",
            f"features.{i}.client.base_url={server.base_url}",
        )
    assert done.returncode == 0, done.stderr
    rows = list(read_events(tmp_path / "one" / "journal.sqlite", ["document_unscored"]))
    assert [(r.feature, r.reason) for r in rows] == [
        ("news_llm", "answer not JSON: 'I cannot answer that.'")
    ] * 3
