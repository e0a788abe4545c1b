"""A paper or live run's LLM answers file grows by each tick's new answers (appended, not
rewritten), and reads back as the sorted file a backtest writes; a kill inside an append
(a last line without its newline) is left out by its readers, cut off before the next
append, and never loses what was written whole."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.text.llm_fixtures import documents, scorer
from tradeloom.diagnostics.parity_text import llm_answer_changes
from tradeloom.live.lifecycle.text_stage import TextAnswers
from tradeloom.testing.llm_server import ChatServer, Reply
from tradeloom.text.llm_cache import (
    RUN_FILE,
    AnswerCache,
    CachedAnswer,
    CorruptCache,
    answer_line,
    read_answers,
    request_key,
)
from tradeloom.text.run_files import append_run_answers, write_run_answers


def _answer(n: int) -> CachedAnswer:
    request = {"model": "m", "document": f"doc {n}"}
    return CachedAnswer(request_key(request), request, f'{{"sentiment": {n / 10}}}')


def test_a_tick_appends_only_its_new_answers_and_the_stop_sorts_the_file(tmp_path: Path) -> None:
    cache = AnswerCache()
    for n in range(3):
        cache.put(_answer(n))
    write_run_answers(tmp_path, [cache])
    written = set(cache.used)
    first = (tmp_path / RUN_FILE).read_bytes()
    for n in range(3, 5):
        cache.put(_answer(n))
    assert append_run_answers(tmp_path, [cache], written, {}) == 2
    grown = (tmp_path / RUN_FILE).read_bytes()
    assert grown.startswith(first)  # appended: the earlier lines were not rewritten
    assert append_run_answers(tmp_path, [cache], written, {}) == 0
    assert read_answers(tmp_path / RUN_FILE) == {a.key: a for a in map(_answer, range(5))}
    sorted_dir = tmp_path / "sorted"
    write_run_answers(sorted_dir, [cache])  # what the stop writes, as a backtest does
    lines = (sorted_dir / RUN_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    keys = [json.loads(line)["key"] for line in lines]
    assert keys == sorted(keys)


def _line(n: int) -> bytes:
    return answer_line(_answer(n)).encode()


@pytest.mark.parametrize("where", ["inside the JSON", "inside a character"])
def test_a_kill_inside_an_append_leaves_a_torn_line_every_reader_leaves_out(
    tmp_path: Path, where: str
) -> None:
    # A tick's append is one write, but a kill stops a write of many pages at a page: the
    # file ends in a line without its newline. read_answers (a backtest's ``answers:``,
    # parity's replay and its llm_answer_changed) refused the whole run as "not JSON"
    # (or "not UTF-8", cut inside a character) and the run's answers were unreadable.
    cache = AnswerCache()
    for n in range(3):
        cache.put(_answer(n))
    write_run_answers(tmp_path, [cache])
    path = tmp_path / RUN_FILE
    last = _line(9) if where == "inside the JSON" else answer_line(_wide(9)).encode()
    cut = len(last) // 2 if where == "inside the JSON" else last.index("é".encode()) + 1
    with path.open("ab") as fh:
        fh.write(_line(3) + last[:cut])
    torn = path.read_bytes()
    with structlog.testing.capture_logs() as logs:
        assert read_answers(path) == {a.key: a for a in map(_answer, range(4))}
    assert [(e["event"], e["left_out_bytes"]) for e in logs] == [("llm_answers_partial_line", cut)]
    assert path.read_bytes() == torn  # a reader changes nothing (the run may be writing)
    shared = tmp_path / "shared"
    AnswerCache(shared=shared).put(_answer(0))
    assert [c.key for c in llm_answer_changes(tmp_path, shared)] == sorted(
        _answer(n).key for n in range(1, 4)
    )


def test_a_last_line_holding_a_whole_record_without_its_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / RUN_FILE
    path.write_bytes(_line(0) + _line(1)[:-1])  # a kill just before the newline's byte
    with structlog.testing.capture_logs() as logs:
        assert set(read_answers(path)) == {_answer(0).key, _answer(1).key}
    assert logs == []


def test_an_append_after_a_torn_line_cuts_it_off_and_after_a_whole_one_ends_it(
    tmp_path: Path,
) -> None:
    # the next append ran on after the torn bytes: one line of both, not JSON, and the
    # file unreadable from then on
    path = tmp_path / RUN_FILE
    path.write_bytes(_line(0) + _line(1)[:30])
    with structlog.testing.capture_logs() as logs:
        assert append_run_answers(tmp_path, [_cache(2)], {_answer(0).key}, {}) == 1
    assert [(e["event"], e["cut_bytes"]) for e in logs] == [("llm_answers_partial_line_cut", 30)]
    assert path.read_bytes() == _line(0) + _line(2)
    # a whole last record without its newline is kept, and given its newline first
    path.write_bytes(_line(0) + _line(1)[:-1])
    assert append_run_answers(tmp_path, [_cache(2)], {_answer(0).key, _answer(1).key}, {}) == 1
    assert path.read_bytes() == _line(0) + _line(1) + _line(2)


def test_a_restart_keeps_what_an_earlier_start_wrote_and_leaves_a_torn_line_out(
    tmp_path: Path,
) -> None:
    # A restart's first write replaced the run's file with what its own start had read:
    # every answer written before the kill that it did not read again was lost (all of
    # them, when it had read none yet), and parity could not replay those bars.
    first = AnswerCache()
    stage = _stage(tmp_path, first)
    for n in range(3):
        first.put(_answer(n))
    assert stage.after_tick(1) is False
    first.put(_answer(3))
    stage.after_tick(1)  # appended
    path = tmp_path / RUN_FILE
    with path.open("ab") as fh:
        fh.write(_line(4)[:25])  # killed inside the next append
    again = AnswerCache()
    restarted = _stage(tmp_path, again)
    again.put(_answer(5))
    with structlog.testing.capture_logs() as logs:
        restarted.after_tick(1)
    assert [e["event"] for e in logs] == ["llm_answers_partial_line"]
    kept = {a.key: a for a in map(_answer, (0, 1, 2, 3, 5))}
    assert read_answers(path) == kept
    again.put(_answer(6))
    restarted.after_tick(1)
    assert path.read_bytes().endswith(_line(6))  # then only the new ones are appended
    restarted.close()
    lines = path.read_bytes().splitlines(keepends=True)
    assert lines == sorted(lines, key=lambda line: json.loads(line)["key"])
    assert read_answers(path) == {**kept, _answer(6).key: _answer(6)}


NEWS = documents("ETF approval sparks a rally", "Exchange hacked", "Quiet day")


@pytest.mark.parametrize("then", ["answers otherwise", "refuses"])
def test_a_restart_reads_the_answers_it_kept_first_and_asks_none_of_them_again(
    tmp_path: Path, then: str
) -> None:
    # A restart's scorers started with empty caches: with shared_cache: false every
    # headline answered before the kill was asked again while the features were computed
    # again, and the run traded on the new answers while its file kept the first ones
    # (what parity and a backtest with ``answers:`` replay).
    with ChatServer() as server:
        first = scorer(server, None)
        stage = _stage(tmp_path, first.cache)
        traded = first.score(NEWS)
        stage.after_tick(1)  # appended; then killed: no stop, no sorted file
        assert len(server.received) == 3
        with (tmp_path / RUN_FILE).open("ab") as fh:
            fh.write(_line(7)[:40])  # inside the next append

        server.answer = _refused if then == "refuses" else _otherwise
        server.received.clear()
        again = scorer(server, None)
        restarted = _stage(tmp_path, again.cache)
        with structlog.testing.capture_logs() as logs:
            restarted.check(_RESTART)  # before the features' warm-up
            replayed = again.score(NEWS)
            restarted.after_tick(1)
        assert server.received == []
    assert [e["event"] for e in logs] == ["llm_answers_partial_line"]  # read once
    np.testing.assert_array_equal(replayed.values, traded.values)
    assert replayed.reasons == traded.reasons
    assert read_answers(tmp_path / RUN_FILE) == first.cache.used


def test_an_answer_the_run_kept_comes_before_the_shared_folders_and_the_answers_read(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    ours, theirs = _answer(0), CachedAnswer(_answer(0).key, _answer(0).request, "{}")
    AnswerCache(shared=shared).put(theirs)  # another run's, later
    cache = AnswerCache({theirs.key: theirs}, shared)
    cache.keep_journaled({ours.key: ours})
    assert cache.get(ours.key) == ours
    assert cache.used == {ours.key: ours}


def test_a_restart_with_a_damaged_file_of_answers_is_refused_before_it_scores(
    tmp_path: Path,
) -> None:
    path = tmp_path / RUN_FILE
    path.write_bytes(_line(0) + b"not json\n" + _line(1))
    where = re.escape(str(path))
    with pytest.raises(CorruptCache, match=rf"^{where}:2: not JSON; the LLM answer cache is "):
        _stage(tmp_path, AnswerCache()).check(_RESTART)


def _otherwise(body: object) -> Reply:
    return Reply(json.dumps({"sentiment": -0.5, "relevance": 0.25}))


def _refused(body: object) -> Reply:
    return Reply(status=500, body='{"error": {"message": "overloaded"}}')


def _wide(n: int) -> CachedAnswer:
    request = {"model": "m", "document": f"doc {n}"}
    return CachedAnswer(request_key(request), request, '{"note": "éé"}')


def _cache(*numbers: int) -> AnswerCache:
    cache = AnswerCache()
    for n in numbers:
        cache.put(_answer(n))
    return cache


_RESTART: Any = SimpleNamespace(unscored=set())
"""A restart's journal state (the stage reads its unscored documents only: none here)."""


def _stage(run_dir: Path, cache: AnswerCache) -> TextAnswers:
    feature = SimpleNamespace(scorer=SimpleNamespace(cache=cache), reasons={})
    markets = SimpleNamespace(p=SimpleNamespace(features=[feature]), portfolio=None)
    files = SimpleNamespace(run_dir=run_dir)
    return TextAnswers(files, None, markets)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30)), max_size=6),
        min_size=1,
        max_size=8,
    )
)
def test_appends_that_remember_what_they_saw_write_every_answer_once(
    ticks: list[list[tuple[int, int]]],
) -> None:
    """Ticks of answers read by three caches (one answer may reach several): the appends,
    looking only at each cache's new answers, append at each tick exactly the answers no
    tick appended before (what a walk over every cache's answers finds), each once."""
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder)
        caches = [AnswerCache() for _ in range(3)]
        written: set[str] = set()
        seen: dict[AnswerCache, int] = {}
        for tick in ticks:
            before = set(written)
            for which, n in tick:
                caches[which].put(_answer(n))
            every = {key for cache in caches for key in cache.used}
            assert append_run_answers(run, caches, written, seen) == len(every - before)
            assert written == every
        lines = (run / RUN_FILE).read_text(encoding="utf-8").splitlines() if written else []
        assert len(lines) == len(set(lines)) == len(written)
        assert set(read_answers(run / RUN_FILE) if written else {}) == written


def test_an_append_that_failed_is_tried_again_at_the_next_tick(tmp_path: Path) -> None:
    cache = AnswerCache()
    cache.put(_answer(0))
    written: set[str] = set()
    seen: dict[AnswerCache, int] = {}
    blocked = tmp_path / "not a folder"
    blocked.write_text("", encoding="utf-8")
    with pytest.raises(OSError):
        append_run_answers(blocked, [cache], written, seen)
    assert not written and not seen
    assert append_run_answers(tmp_path, [cache], written, seen) == 1
    assert read_answers(tmp_path / RUN_FILE) == {_answer(0).key: _answer(0)}
