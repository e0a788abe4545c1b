"""An LLM endpoint that refuses connections (nothing listens there): a backtest stops in
one line, a paper run trades on with its documents unscored at once (the breaker), and
the breaker closes when the server is back. Real sockets on 127.0.0.1, the real client."""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import structlog
import yaml
from structlog.testing import capture_logs

from tests.compile_line import without_compile_line
from tests.text.llm_fixtures import documents, scorer
from tests.text.test_news_llm_example import EXAMPLE, llm_feature, run
from tradeloom.journal import read_events
from tradeloom.testing.llm_server import ChatServer, Reply
from tradeloom.text.llm_calls import Breaker
from tradeloom.text.llm_scorer import LlmUnreachable

NOT_ASKED = re.compile(
    r"^endpoint unreachable, not asked: cannot connect to http://127\.0\.0\.1:\d+/v1: "
    r"\[Errno \d+\] Connection refused \(\d+ times in a row; asked again [\d.]+ s after the "
    r"last\)$"
)


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 where nothing listens: a connection to it is refused (and
    no other process can take the port while the test holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1"


class At:
    """A fake monotonic clock for the breaker."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_refused_endpoint_opens_the_breaker_and_later_documents_are_not_asked() -> None:
    with closed_port() as port, ChatServer() as unused:
        made = scorer(unused, None, base_url=url(port), max_attempts=2, concurrency=1)
        made._stop = False  # a paper run's scorer (built with mode paper)
        scores = made.score(documents("a", "b", "c"))
    first, *rest = scores.reasons
    # the first document is given its attempts (2: it opens the breaker at the second)
    assert re.fullmatch(r"cannot connect to .*Connection refused", first), first
    assert all(NOT_ASKED.fullmatch(r) for r in rest), rest
    assert np.isnan(scores.values).all()
    assert made.breaker.is_open and made.breaker.opened == 1
    assert unused.received == []


def test_a_paper_runs_refused_endpoint_is_one_warning_its_retries_debug_lines() -> None:
    with closed_port() as port, ChatServer() as unused:
        made = scorer(
            unused, None, base_url=url(port), max_attempts=3, concurrency=1, backoff_seconds=0.01
        )
        made._stop = False
        with capture_logs() as logs:
            made.score(documents("a", "b", "c"))
    told = [(e["event"], e["log_level"]) for e in logs]
    assert told == [("read_retry", "debug")] * 2 + [("llm_unreachable", "warning")]
    assert {k: v for k, v in logs[-1].items() if k not in ("event", "log_level")} == {
        "feature": "features: text_llm 'llm'",
        "error": f"cannot connect to {url(port)}: [Errno 111] Connection refused",
        "attempts": 3,
        "asked_again_seconds": 60.0,
    }


def test_the_breaker_closes_when_the_server_is_back() -> None:
    clock = At()
    with closed_port() as port, ChatServer() as unused:
        made = scorer(unused, None, base_url=url(port), max_attempts=2, max_backoff_seconds=30)
        made._stop = False
        made.breaker = Breaker(2, 30.0, clock=clock)
        down = made.score(documents("a", "b"))
    assert made.breaker.is_open
    assert all("Connection refused" in r for r in down.reasons)
    with ChatServer(port=port) as server:  # the server comes back on the same port
        held = made.score(documents("c", "d"))
        assert all(NOT_ASKED.fullmatch(r) for r in held.reasons), held.reasons
        assert server.received == []  # cooling down: nothing sent, nothing waited for
        clock.now += 30.0
        back = made.score(documents("c", "d"))
        assert len(server.received) == 2
    assert back.reasons == ("", "")
    assert not np.isnan(back.values).any()
    assert not made.breaker.is_open and made.breaker.opened == 1


def test_a_server_that_answers_again_resets_the_count_of_refusals() -> None:
    """Refusals count in a row: an answer in between
    starts the count again, so the breaker does not open."""
    breaker = Breaker(2, 60.0)
    breaker.refused("cannot connect")
    breaker.reached()
    breaker.refused("cannot connect")
    assert not breaker.is_open
    breaker.refused("cannot connect")
    assert breaker.is_open


def test_refusals_of_requests_in_flight_while_it_is_open_do_not_open_it_again() -> None:
    """Requests sent before the breaker opened and refused after count once as its
    opening (the paper run's one warning each time it opens); after its cool-down, the
    next refusal opens it again."""
    now = [0.0]
    breaker = Breaker(2, 30.0, clock=lambda: now[0])
    for _ in range(4):  # the second opens it; two more in flight, refused while open
        breaker.refused("cannot connect")
    assert breaker.is_open and breaker.opened == 1
    now[0] += 31.0
    assert not breaker.is_open
    breaker.refused("cannot connect")  # half open: the first refusal opens it again
    assert breaker.is_open and breaker.opened == 2


def test_a_5xx_is_still_retried_with_backoff_and_does_not_open_the_breaker(
    tmp_path: Path,
) -> None:
    with ChatServer() as server:
        server.script += [Reply(status=503), Reply(status=503)]
        made = scorer(server, None, max_attempts=3)
        with capture_logs() as logs:
            scores = made.score(documents("a"))
    assert len(server.received) == 3
    assert scores.reasons == ("",)
    assert not made.breaker.is_open
    retried = [(e["event"], e["log_level"]) for e in logs]
    assert retried == [("read_retry", "warning")] * 2  # a busy server's retries are told


def test_a_backtests_scorer_stops_once_the_answers_that_came_are_cached(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    with ChatServer() as server:
        port = int(server.base_url.split(":")[-1].split("/")[0])
        assert scorer(server, shared).score(documents("a", "b")).reasons == ("", "")
    assert len(list(shared.rglob("*.json"))) == 2
    made = scorer(server, shared, max_attempts=2)  # the next run's: its server is gone
    with pytest.raises(LlmUnreachable) as raised:
        made.score(documents("a", "b", "c", "d"))
    assert str(raised.value) == (  # built from no file's entry: only the kind and name
        f"features: text_llm 'llm': cannot connect to {url(port)}: [Errno 111] Connection "
        "refused (2 attempts in a row); start the model's server (or correct client.base_url) "
        "and run again: the answers already read are kept in the shared cache and not asked "
        "again"
    )
    assert len(list(shared.rglob("*.json"))) == 2  # kept, none lost


# --- through the CLI ----------------------------------------------------------------------


def stop_line(i: int, port: int, folder: Path) -> str:
    """The one line on stderr of a backtest of the example whose server refuses: where
    the file declares the feature, its kind and name, the address, the attempts."""
    line = EXAMPLE.read_text().splitlines().index("  - kind: text_llm") + 1
    return (
        f"{EXAMPLE}:{line}:5 features.{i}: text_llm 'news_llm': cannot connect to {url(port)}: "
        "[Errno 111] Connection refused (4 attempts in a row); start the model's server (or "
        "correct client.base_url) and run again: the answers already read are kept in the "
        f"shared cache and not asked again (the run's folder {folder} keeps its journal: "
        f"tradeloom status {folder})\n"
    )


def test_a_backtest_whose_server_refuses_says_where_and_what_in_one_line(
    tmp_path: Path,
) -> None:
    """Nothing but the line: the refused attempts before it are not logged as warnings."""
    i = llm_feature(yaml.safe_load(EXAMPLE.read_text()))
    folder = tmp_path / "run"
    with closed_port() as port:
        done = run(folder, tmp_path / "cache", f"features.{i}.client.base_url={url(port)}")
    # (a cold kernel cache's line aside)
    assert (done.returncode, without_compile_line(done.stderr)) == (1, stop_line(i, port, folder))


@pytest.mark.slow
def test_a_backtest_whose_server_is_down_stops_in_one_line_its_answers_kept(
    tmp_path: Path,
) -> None:
    i = llm_feature(yaml.safe_load(EXAMPLE.read_text()))
    cache = tmp_path / "cache"
    with ChatServer() as server:  # a shorter run first: the answers of its documents
        at = f"features.{i}.client.base_url={server.base_url}"
        short = run(tmp_path / "short", cache, at, "data.bars=700")
        assert short.returncode == 0, short.stderr
        first = {json.dumps(r.body, sort_keys=True) for r in server.received}
    kept = len(list(cache.rglob("*.json")))
    assert kept == len(first) > 0
    folder = tmp_path / "run"
    with closed_port() as port:
        done = run(folder, cache, f"features.{i}.client.base_url={url(port)}")
    said = without_compile_line(done.stderr)
    assert (done.returncode, said) == (1, stop_line(i, port, folder)), done.stderr
    assert len(list(cache.rglob("*.json"))) == kept  # the cache as it was

    with ChatServer() as back:  # a rerun asks only for what is not cached
        at = f"features.{i}.client.base_url={back.base_url}"
        again = run(tmp_path / "again", cache, at)
        assert again.returncode == 0, again.stderr
        asked = {json.dumps(r.body, sort_keys=True) for r in back.received}
    assert asked and not asked & first
    assert len(list(cache.rglob("*.json"))) == kept + len(asked)


@pytest.mark.slow
def test_a_paper_run_with_its_server_down_journals_unscored_documents_at_once(
    tmp_path: Path,
) -> None:
    from tradeloom.cli.main import main

    i = llm_feature(yaml.safe_load(EXAMPLE.read_text()))
    with closed_port() as port:
        sets = [
            "data.bars=600",
            "model.walk_forward.train_window=200",
            "model.walk_forward.retrain_every=200",
            "model.params.n_estimators=10",
            f"features.{i}.client.base_url={url(port)}",
        ]
        words = ["run", str(EXAMPLE), "--mode", "paper", "--clock", "simulated", "--speed"]
        words += ["max", "--max-bars", "8", "--out", str(tmp_path / "paper")]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["--quiet", *words, *(a for s in sets for a in ("--set", s))])
        structlog.reset_defaults()
    assert code == 0, err.getvalue()
    unscored = read_events(tmp_path / "paper" / "journal.sqlite", ["document_unscored"])
    reasons = [r.reason for r in unscored]
    asked = [r for r in reasons if not NOT_ASKED.fullmatch(r)]
    # attempts, not seconds: only the requests in flight when the breaker opened (at most
    # `concurrency`, 8) reached for the server; every other document was not asked
    assert len(reasons) > 30, reasons
    assert 1 <= len(asked) <= 8, asked
    assert all("Connection refused" in r for r in asked), asked


@pytest.mark.slow
def test_a_restarted_paper_run_journals_each_unscored_document_once(tmp_path: Path) -> None:
    # (review) The server down, a paper run journals a ``document_unscored`` row for each
    # document; stopped and started again on its folder, its restart recomputes the
    # features over the history (the replay), and its first tick journals every reason
    # the features hold again, those of the first start's documents included: an
    # uninterrupted run journals each document once.
    from tradeloom.cli.main import main

    i = llm_feature(yaml.safe_load(EXAMPLE.read_text()))
    journal = tmp_path / "paper" / "journal.sqlite"
    with closed_port() as port:
        sets = [
            "data.bars=600",
            "model.walk_forward.train_window=200",
            "model.walk_forward.retrain_every=200",
            "model.params.n_estimators=10",
            f"features.{i}.client.base_url={url(port)}",
        ]
        words = ["run", str(EXAMPLE), "--mode", "paper", "--clock", "simulated", "--speed"]
        words += ["max", "--out", str(tmp_path / "paper")]
        counts = []
        for bars in ("4", "2"):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(
                    [
                        "--quiet",
                        *words,
                        "--max-bars",
                        bars,
                        *(a for s in sets for a in ("--set", s)),
                    ]
                )
            structlog.reset_defaults()
            assert code == 0, err.getvalue()
            counts.append(len(list(read_events(journal, ["document_unscored"]))))
    unscored = list(read_events(journal, ["document_unscored"]))
    keys = [(r.strategy, r.feature, r.document_id) for r in unscored]
    assert counts[0] > 30, counts
    assert len(keys) == len(set(keys)), (counts, len(set(keys)))
