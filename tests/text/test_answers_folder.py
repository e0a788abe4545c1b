"""A paper or live run started in a folder that already holds LLM answers.

A folder with the answers and no journal holds no run this one could continue: they
are another run's (or a copy), and the start is refused in one line naming the folder
and the file, before anything is written (`check_live_run_dir`). A journal that holds no
start yet (a first start killed after its answers were written, before its commit; the
journal binds the same strategy file, another is refused) holds the run's own answers.
They were neither read nor kept apart: the start again asked the model every headline
anew, traded on what it said then, and its first write merged the file's answers in,
the file's winning where both answered one question, so the file (what parity and a
backtest with ``answers:`` replay) said what the run had not traded on. They are now
read first, as a restart reads them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from tests.text.llm_fixtures import news_llm_document
from tradeloom.live.recovery.journal_state import read_state
from tradeloom.testing.llm_server import ChatServer, Reply
from tradeloom.text.llm_cache import (
    RUN_FILE,
    CachedAnswer,
    answer_line,
    read_answers,
    request_key,
)

ROOT = Path(__file__).resolve().parents[2]


def _run(strategy: Path, out: Path, bars: int = 2) -> tuple[int, str]:
    from tradeloom.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(
            ["--quiet", "run", str(strategy), "--mode", "paper", "--clock", "simulated",
             "--speed", "max", "--max-bars", str(bars), "--out", str(out)]
        )  # fmt: skip
    structlog.reset_defaults()
    return code, err.getvalue()


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


def test_a_new_run_in_a_folder_with_answers_and_no_journal_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    request = {"model": "m", "document": "doc"}
    line = answer_line(CachedAnswer(request_key(request), request, "{}"))
    (out / RUN_FILE).write_text(line, encoding="utf-8")
    with ChatServer() as server:
        code, err = _run(_strategy(tmp_path, server.base_url), out)
        assert server.received == []  # refused before any headline was asked
    assert (code, err.strip()) == (
        2,
        f"--out {out}: holds files that are not a run's ({RUN_FILE}); a run never "
        "overwrites them: give an empty or new folder",
    )
    assert sorted(p.name for p in out.iterdir()) == [RUN_FILE]
    assert (out / RUN_FILE).read_text(encoding="utf-8") == line


def test_a_new_run_in_a_folder_with_received_documents_and_no_journal_is_refused(
    tmp_path: Path,
) -> None:
    """The documents a feed received (``documents/<name>.jsonl`` and its cursor) are
    another run's without its journal, as its answers are: a new run would read them as
    its own and resume the feed after their cursor."""
    from tests.text.feed_fixtures import document, write_strategy
    from tradeloom.text.feeds import FEEDS_DIR

    out = tmp_path / "run"
    kept = out / FEEDS_DIR
    kept.mkdir(parents=True)
    line = json.dumps({**document(1), "received_at": "2024-01-02T01:00:00Z"}) + "\n"
    (kept / "news.jsonl").write_text(line, encoding="utf-8")
    (kept / "news.cursor").write_text("feed-0001", encoding="utf-8")
    feed = {"kind": "http_poll", "url": "http://127.0.0.1:9/news", "interval_seconds": 0.02}
    code, err = _run(write_strategy(tmp_path, feed), out)
    assert (code, err.strip()) == (
        2,
        f"--out {out}: holds files that are not a run's ({FEEDS_DIR}); a run never "
        "overwrites them: give an empty or new folder",
    )
    assert sorted(p.name for p in out.iterdir()) == [FEEDS_DIR]
    assert sorted(p.name for p in kept.iterdir()) == ["news.cursor", "news.jsonl"]
    assert (kept / "news.jsonl").read_text(encoding="utf-8") == line


def _asked(server: ChatServer) -> set[str]:
    return {r.body["messages"][-1]["content"] for r in server.received if r.body}


def _otherwise(body: Any) -> Reply:
    return Reply(json.dumps({"sentiment": -0.5, "relevance": 0.25}))


_KILLED_AT_START = """
import os, signal, sys
from tradeloom.cli.main import main
from tradeloom.live.tick.services import JournalLink

def killed(self):
    real(self)  # the history's answers written, fsync'd
    os.kill(os.getpid(), signal.SIGKILL)  # before the start's commit: kill -9

real, JournalLink.prepare_commit = JournalLink.prepare_commit, killed
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # a paper start killed, then one that trades
def test_a_start_after_a_first_start_killed_before_it_traded_reads_its_answers_as_its_own(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    with ChatServer() as server:
        strategy = _strategy(tmp_path, server.base_url)
        child = subprocess.run(
            [sys.executable, "-c", _KILLED_AT_START, "--quiet", "run", str(strategy),
             "--mode", "paper", "--clock", "simulated", "--speed", "max",
             "--max-bars", "2", "--out", str(out)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert read_state(out / "journal.sqlite").started is None  # it never started
        kept = read_answers(out / RUN_FILE)  # what the killed start's features read
        asked = _asked(server)
        assert asked and len(kept) == len(asked)

        server.answer = _otherwise  # the model answers each headline otherwise now
        server.received.clear()
        code, err = _run(strategy, out)
        assert code == 0, err
        assert not asked & _asked(server)  # none of those asked again
    after = read_answers(out / RUN_FILE)
    assert {key: after[key] for key in kept} == kept
