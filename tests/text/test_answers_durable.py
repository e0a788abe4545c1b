"""The LLM answers a run keeps survive a power loss, and are on disk before the journal
rows that rest on them.

The run's file (``llm_answers.jsonl``) and the shared folder's answers were written
without fsync: a kill -9 kept them (the operating system had the pages), a power loss
could not, and a paper or live tick appended a bar's answers only after the journal had
committed the bar: after a power loss the journal could hold trades on features whose
answers were gone, which the restart asked the model again and traded on otherwise.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from tests.text.llm_fixtures import news_llm_document
from tradeloom.journal.sqlite import SqliteJournal
from tradeloom.testing.llm_server import ChatServer
from tradeloom.text.llm_cache import RUN_FILE, AnswerCache, CachedAnswer, request_key
from tradeloom.text.run_files import append_run_answers, write_run_answers


def _answer(n: int) -> CachedAnswer:
    request = {"model": "m", "document": f"doc {n}"}
    return CachedAnswer(request_key(request), request, f'{{"sentiment": {n / 10}}}')


def _cache(*numbers: int, shared: Path | None = None) -> AnswerCache:
    cache = AnswerCache(shared=shared)
    for n in numbers:
        cache.put(_answer(n))
    return cache


def _name(fd: int) -> str:
    return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files and folders fsync'd, in order."""
    names: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        names.append(_name(fd))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return names


def test_the_run_files_writes_and_appends_are_fsyncd(tmp_path: Path, synced: list[str]) -> None:
    run = tmp_path / "run"
    cache = _cache(0, 1)
    write_run_answers(run, [cache])  # a new folder: made, its name kept in its parent
    assert synced == [tmp_path.name, f"{RUN_FILE}.tmp", run.name]
    synced.clear()
    written = set(cache.used)
    cache.put(_answer(2))
    cache.put(_answer(3))
    assert append_run_answers(run, [cache], written, {}) == 2
    assert synced == [RUN_FILE]  # one fsync for the tick's answers, however many
    synced.clear()
    assert append_run_answers(run, [cache], written, {}) == 0
    assert synced == []  # a tick that read no new answer costs none
    other = tmp_path / "other"
    other.mkdir()
    assert append_run_answers(other, [_cache(4)], set(), {}) == 1  # a new file: its name too
    assert synced == [RUN_FILE, other.name]


def test_a_shared_answer_is_fsyncd_before_its_rename_and_its_folder_after(
    tmp_path: Path, synced: list[str]
) -> None:
    # a rename without the bytes' fsync can leave an empty file after a power loss: the
    # shared folder then refused every run ("not JSON ... the cache is damaged")
    shared = tmp_path / "shared"
    key = _answer(0).key
    _cache(0, shared=shared)
    assert synced[-2].startswith(f".{key}.json.") and synced[-2].endswith(".tmp")
    assert synced[-1] == key[:2]  # the rename kept
    assert synced[:-2] == [tmp_path.name, shared.name]  # the folders made, kept
    assert (shared / key[:2] / f"{key}.json").is_file()
    assert not [p for p in (shared / key[:2]).iterdir() if p.name.endswith(".tmp")]


def _paper(strategy: Path, out: Path, bars: int) -> None:
    from tradeloom.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(
            ["--quiet", "run", str(strategy), "--mode", "paper", "--clock", "simulated",
             "--speed", "max", "--max-bars", str(bars), "--out", str(out)]
        )  # fmt: skip
    structlog.reset_defaults()
    assert code == 0, err.getvalue()


def _lines(path: str) -> int:
    with open(path, "rb") as fh:
        return fh.read().count(b"\n")


@pytest.mark.slow  # a paper run of a walk-forward forest
def test_a_bars_answers_are_on_disk_before_its_rows_are_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, Any]] = []
    with ChatServer() as server:
        asked: Callable[[], int] = lambda: len(server.received)  # noqa: E731
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            real_fsync(fd)
            path = os.readlink(f"/proc/self/fd/{fd}")
            if os.path.basename(path).startswith(RUN_FILE):  # the file, or it written aside
                events.append(("answers", _lines(path)))

        real_flush = SqliteJournal.flush

        def flush(self: SqliteJournal, *, durable: bool = True) -> None:
            if self._buffered:
                kinds = {schema.kind for schema in self._buffer}
                events.append(("commit", (asked(), kinds)))
            real_flush(self, durable=durable)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(SqliteJournal, "flush", flush)
        document = news_llm_document(
            server.base_url, bars=400, train_window=150, retrain_every=400, n_estimators=5
        )
        strategy = tmp_path / "s.yaml"
        strategy.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        _paper(strategy, tmp_path / "run", 12)
        total = asked()
    durable = 0
    bars: list[int] = []  # what had been asked at each commit of a bar
    appends = 0
    for what, value in events:
        if what == "answers":
            durable = value
            appends += 1
            continue
        count, kinds = value
        # every answer read so far is on disk before a commit (a training's, a bar's)
        assert durable >= count, f"{count} answers read, {durable} on disk, at {kinds}"
        if "live_bar" in kinds:
            bars.append(count)
    assert len(bars) == 12 and total > bars[0]  # some live bars read new headlines
    new = sum(1 for before, after in itertools.pairwise(bars) if after > before)
    assert new > 0
    # one fsync per bar that read new answers (the first write: the file and its
    # folder; the stop's sorted file: again both); none for a bar that read none
    assert appends == 1 + new + 1
