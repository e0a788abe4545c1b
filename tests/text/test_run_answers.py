"""A paper or live run's LLM answers file grows by each tick's new answers (appended, not
rewritten), and reads back as the sorted file a backtest writes."""

from __future__ import annotations

import json
from pathlib import Path

from tradeloom.text.llm_cache import RUN_FILE, AnswerCache, CachedAnswer, read_answers, request_key
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
    assert append_run_answers(tmp_path, [cache], written) == 2
    grown = (tmp_path / RUN_FILE).read_bytes()
    assert grown.startswith(first)  # appended: the earlier lines were not rewritten
    assert append_run_answers(tmp_path, [cache], written) == 0
    assert read_answers(tmp_path / RUN_FILE) == {a.key: a for a in map(_answer, range(5))}
    sorted_dir = tmp_path / "sorted"
    write_run_answers(sorted_dir, [cache])  # what the stop writes, as a backtest does
    lines = (sorted_dir / RUN_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    keys = [json.loads(line)["key"] for line in lines]
    assert keys == sorted(keys)
