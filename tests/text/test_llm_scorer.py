"""The LLM scorer against a real HTTP server speaking the chat completions API.

Every figure about time (rate, backoff, timeout, concurrency) is read from the server's
own arrival times, never from a timer around the client.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from tests.text.llm_fixtures import FIELDS, PROMPT, client, documents, scorer
from tradeloom.testing.llm_server import ChatServer, Reply
from tradeloom.text.documents import Documents
from tradeloom.text.llm_cache import AnswerCache, CorruptCache, read_answers
from tradeloom.text.llm_scorer import NOT_CACHED, LlmScorer
from tradeloom.text.scoring import DocumentScorer

NEWS = documents(
    "ETF approval sparks a rally",
    "Exchange hacked, withdrawals banned",
    "ETF approval sparks a rally",  # the same question: asked once
    "Quiet day",
)


@pytest.fixture
def server() -> object:
    with ChatServer() as served:
        yield served


def arrivals(server: ChatServer) -> list[float]:
    return sorted(r.arrived for r in server.received)


def test_is_a_document_scorer_with_the_declared_cutoff(server: ChatServer) -> None:
    made = scorer(server, None)
    assert isinstance(made, DocumentScorer)
    assert made.fields == ("sentiment", "relevance")
    assert str(made.knowledge_cutoff) == "2024-01-01 00:00:00+00:00"  # all of December
    assert '"model":"stand-in-1"' in made.identity


def test_answers_are_cached_and_a_rerun_asks_nothing(server: ChatServer, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    first = scorer(server, shared)
    scores = first.score(NEWS)

    assert len(server.received) == 3  # 4 documents, 3 distinct questions
    assert scores.reasons == ("", "", "", "")
    np.testing.assert_array_equal(
        scores.values, [[1.0, 0.6667], [-1.0, 0.6667], [1.0, 0.6667], [0.0, 0.0]]
    )
    # the question as sent: the prompt with the document in it, JSON asked for
    body = server.received[0].body
    assert body is not None
    assert body["model"] == "stand-in-1"
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][1]["content"].startswith("Score this headline for BTC/USDT.\n")

    # another run on the same shared folder: 0 calls, the same numbers
    again = scorer(server, shared).score(NEWS)
    assert len(server.received) == 3
    np.testing.assert_array_equal(again.values, scores.values)

    # the run's own file replays without the shared folder and without calls
    run_file = first.cache.write_run_file(tmp_path / "run")
    replayed = scorer(server, None, read_answers(run_file), calls=False).score(NEWS)
    assert len(server.received) == 3
    np.testing.assert_array_equal(replayed.values, scores.values)


def test_a_setting_that_changes_the_answer_changes_the_key(
    server: ChatServer, tmp_path: Path
) -> None:
    scorer(server, tmp_path).score(NEWS)
    scorer(server, tmp_path, temperature=0.7).score(NEWS)
    scorer(server, tmp_path, model="stand-in-2").score(NEWS)
    assert len(server.received) == 9
    # the address and the key are not part of the question
    with ChatServer() as elsewhere:
        scorer(elsewhere, tmp_path).score(NEWS)
        assert elsewhere.received == []


def test_a_replay_asks_nothing_and_says_so(server: ChatServer) -> None:
    scores = scorer(server, None, calls=False).score(documents("x"))
    assert server.received == []
    assert scores.reasons == (NOT_CACHED,)
    assert np.isnan(scores.values).all()


def test_requests_are_spaced_by_the_rate_limit(server: ChatServer) -> None:
    texts = tuple(f"headline {i}" for i in range(8))
    scorer(server, None, requests_per_minute=600, concurrency=4).score(documents(*texts))

    times = arrivals(server)
    assert len(times) == 8
    # 600 a minute: starts 0.1 s apart (the client made before the first slot), so the
    # 8 span at least 0.7 s at the server and no two come together, where unbounded they
    # would span milliseconds (a thread's start may shift one by a few ms)
    assert times[-1] - times[0] >= 0.7 - 0.03
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.05


def test_concurrency_is_bounded(server: ChatServer) -> None:
    server.answer = lambda body: Reply('{"sentiment": 0, "relevance": 0}', delay=0.2)
    texts = tuple(f"headline {i}" for i in range(6))
    scores = scorer(server, None, concurrency=2).score(documents(*texts))

    assert scores.reasons == ("",) * 6
    assert server.most_at_once == 2


def test_a_429_is_retried_after_its_retry_after_then_with_backoff(server: ChatServer) -> None:
    server.script += [
        Reply(status=429, headers={"Retry-After": "1"}, body='{"error": "slow down"}'),
        Reply(status=503, body='{"error": "busy"}'),
    ]
    scores = scorer(server, None, backoff_seconds=0.2).score(documents("ETF approval"))

    assert scores.reasons == ("",)
    assert [r.status for r in server.received] == [429, 503, 200]
    first, second, third = arrivals(server)
    assert second - first >= 1.0  # Retry-After, longer than the backoff
    # second retry: 0.2 * 2 = 0.4 s, shortened by at most half (jitter)
    assert third - second >= 0.2


def test_a_timeout_is_retried_and_an_exhausted_request_is_nan_with_its_reason(
    server: ChatServer,
) -> None:
    server.script += [Reply(delay=1.5), Reply(delay=1.5)]
    scores = scorer(server, None, timeout_seconds=0.3, max_attempts=2).score(documents("a"))

    times = arrivals(server)
    assert len(times) == 2
    assert times[1] - times[0] >= 0.3  # the client waited its timeout, no longer than...
    assert times[1] - times[0] < 1.5  # ...the server's delay: it gave up first
    assert scores.reasons == ("no answer after 2 attempts: timeout after 0.3 s",)
    assert np.isnan(scores.values).all()


def test_a_refusal_is_not_retried(server: ChatServer) -> None:
    server.script.append(Reply(status=400, body='{"error": {"message": "bad model"}}'))
    scores = scorer(server, None).score(documents("a"))
    assert len(server.received) == 1
    assert scores.reasons == ("""HTTP 400: '{"error": {"message": "bad model"}}'""",)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply("Sure! The sentiment is high."), "answer not JSON: 'Sure! The sentiment is high.'"),
        (Reply("[1, 2]"), "answer not a JSON object: '[1, 2]'"),
        (Reply('{"sentiment": 1.5, "relevance": 0}'), "sentiment: 1.5 above max 1"),
        (Reply('{"sentiment": "0.5"}'), "sentiment: not a number: '\"0.5\"'; relevance: missing"),
        (
            Reply('{"sentiment": true, "relevance": NaN}'),
            "sentiment: not a number: 'true'; relevance: not finite",
        ),
        (Reply(body="<html>oops</html>"), "response is not a chat completion: '<html>oops</html>'"),
        (
            Reply(body='{"choices": [{"message": {"content": null}}]}'),
            "response's message has no text content",
        ),
    ],
)
def test_a_malformed_answer_is_nan_with_its_reason(
    server: ChatServer, tmp_path: Path, reply: Reply, reason: str
) -> None:
    server.script.append(reply)
    made = scorer(server, tmp_path, concurrency=1)  # the scripted reply: the first document's
    scores = made.score(documents("ETF approval", "Quiet day"))

    assert scores.reasons == (reason, "")
    assert np.isnan(scores.values[0]).all()
    assert not np.isnan(scores.values[1]).any()  # never a silent zero, never a crash
    assert len(server.received) == 2  # an answer that does not parse is not asked again


def test_an_unparsable_answer_is_cached_a_failed_request_is_not(
    server: ChatServer, tmp_path: Path
) -> None:
    server.script += [Reply("not json"), Reply(status=500, body="down")]
    made = scorer(server, tmp_path, max_attempts=1, concurrency=1)
    first = made.score(documents("one", "two"))
    assert first.reasons == (
        "answer not JSON: 'not json'",
        "no answer after 1 attempts: HTTP 500: 'down'",
    )
    assert [a.answer for a in made.cache.used.values()] == ["not json"]

    again = scorer(server, tmp_path).score(documents("one", "two"))
    assert len(server.received) == 3  # the one without an answer, asked again
    assert again.reasons == ("answer not JSON: 'not json'", "")


def test_the_key_goes_as_a_bearer_token_and_nowhere_else(
    server: ChatServer, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    server.script.append(Reply(status=401, body='{"error": "no"}'))
    made = scorer(server, tmp_path, api_key=SecretStr("sk-test-123"))
    scores = made.score(documents("a"))

    assert server.received[0].authorization == "Bearer sk-test-123"
    assert "sk-test-123" not in scores.reasons[0]
    assert "sk-test-123" not in made.identity
    made.score(documents("b"))
    run_file = made.cache.write_run_file(tmp_path / "run")
    assert "sk-test-123" not in run_file.read_text()
    assert server.base_url not in run_file.read_text()


def test_json_schema_asks_for_the_fields_schema(server: ChatServer) -> None:
    scorer(server, None, response_format="json_schema").score(documents("a"))
    body = server.received[0].body
    assert body is not None
    assert body["response_format"]["json_schema"]["schema"] == {
        "type": "object",
        "properties": {
            "sentiment": {"type": "number", "minimum": -1.0, "maximum": 1.0},
            "relevance": {"type": "number", "minimum": 0.0, "maximum": 1.0},
        },
        "required": ["sentiment", "relevance"],
    }


def test_a_damaged_run_file_is_refused_naming_its_line(server: ChatServer, tmp_path: Path) -> None:
    made = scorer(server, None)
    made.score(NEWS)
    path = made.cache.write_run_file(tmp_path)
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["answer"] = '{"sentiment": 0.9, "relevance": 0.9}'  # edited by hand
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(CorruptCache) as caught:
        read_answers(path)
    assert str(caught.value) == (
        f"{path}:2: answer {json.loads(lines[1])['key'][:12]} fails its check; the cache is "
        "damaged: delete it"
    )
    path.write_text(lines[0][:40] + "\n")
    with pytest.raises(CorruptCache, match=rf"^{path}:1: not JSON; the LLM answer cache is "):
        read_answers(path)


def test_a_damaged_shared_answer_is_refused_never_asked_again(
    server: ChatServer, tmp_path: Path
) -> None:
    scorer(server, tmp_path).score(documents("ETF approval"))
    (stored,) = tmp_path.glob("*/*.json")
    stored.write_text(stored.read_text().replace('"check": "', '"check": "0'))

    with pytest.raises(CorruptCache, match=rf"^{stored}: answer [0-9a-f]{{12}} fails its check"):
        scorer(server, tmp_path).score(documents("ETF approval"))
    assert len(server.received) == 1


def test_the_prompt_puts_the_document_in_once(server: ChatServer) -> None:
    docs = Documents(
        ids=("n1",),
        stamped_ns=np.array([0], dtype=np.int64),
        visible_ns=np.array([0], dtype=np.int64),
        texts=("a text that says {{title}}",),
        titles=("T",),
        sources=("s",),
        symbols=((),),
    )
    made = LlmScorer(client(server), PROMPT, FIELDS, AnswerCache())
    user = made.request(docs, 0)["messages"][1][1]
    assert user == (
        "Score this headline for .\nTitle: T\nText: a text that says {{title}}\n"
        "sentiment: a number from -1 to 1\nrelevance: a number from 0 to 1"
    )


def test_a_malformed_answer_is_journaled_with_its_reason_and_status_lists_it(
    server: ChatServer, tmp_path: Path
) -> None:
    from tradeloom.engine.status_text import error_line
    from tradeloom.journal import RunIdentity
    from tradeloom.journal.reader import read_events
    from tradeloom.journal.sqlite import open_journal
    from tradeloom.text.unscored import unscored_events

    server.script.append(Reply("Sure! Bullish."))
    news = documents("ETF approval", "Quiet day")
    scores = scorer(server, None, concurrency=1).score(news)
    journal = open_journal(tmp_path / "journal.sqlite", RunIdentity("s", "run-1", "backtest"))
    for event in unscored_events("news_llm", news, scores):
        journal.append(event)
    journal.close()

    (row,) = read_events(tmp_path / "journal.sqlite", ["document_unscored"])
    assert (row.feature, row.document_id, row.reason) == (
        "news_llm",
        "d0",
        "answer not JSON: 'Sure! Bullish.'",
    )
    assert str(row.visible) == "2024-01-01 00:00:00+00:00"
    line = error_line("document_unscored", {**row.__dict__, "bar": row.bar})
    assert line["message"] == "news_llm: document d0 unscored: answer not JSON: 'Sure! Bullish.'"
