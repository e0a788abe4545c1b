"""Every answer a model gave, kept by the hash of what was asked, with the run and across runs.

The key of an answer is the SHA-256 of the request as JSON (keys sorted): the client's
identity (kind, model, temperature and every other setting that changes an answer), the
rendered messages (the prompt with the document in it) and the answer's schema. Never
the server's address or the key: the same model behind another server is the same
question.

Two places hold answers, both in the same record format, one JSON object per answer:
``{"key", "request", "answer", "check"}``, ``check`` the SHA-256 of the key and the
answer. Every record is checked where it is read (its key against its request, its
check against its answer): a damaged record is refused in one line naming the file,
never asked again and silently answered differently.

- The run's file (`RUN_FILE` in the run directory): the answers this run read, by key,
  JSON Lines; what a paper run, a live run and ``tradeloom parity`` replay. Written
  (`write_answers`) or appended to (`append_answers`) durably: on disk when the call
  returns, so a power loss keeps what a journal committed after it rests on.
- The shared folder (`shared_cache_dir`): one file per answer, ``<key[:2]>/<key>.json``,
  written aside, fsync'd and renamed (its folder fsync'd), read by every run of this
  user; a rerun asks the model nothing, and a power loss never leaves an empty answer.

Only answers are kept. A request that got none (a timeout, a refusal) is asked again
by the next run; an answer that does not parse is an answer, kept and read the same
way every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeloom.errors import UserError
from tradeloom.files.json_lines import complete_length, end_on_newline
from tradeloom.files.reading import decode_text, read_bytes, read_text
from tradeloom.journal.durable import make_folder, replace_durably, sync_folder
from tradeloom.runtime.cache_home import cache_home
from tradeloom.runtime.lazy import logger

__all__ = [
    "RUN_FILE",
    "AnswerCache",
    "CachedAnswer",
    "CorruptCache",
    "read_answers",
    "request_key",
    "shared_cache_dir",
    "write_answers",
]

RUN_FILE = "llm_answers.jsonl"
"""The run directory's file of the answers the run read."""

_MAX_FILE_BYTES = 2_000_000_000

_log = logger("tradeloom.text.llm")


class CorruptCache(UserError):
    """A cached answer that fails its check: named by file (and line), never recomputed."""


@dataclass(frozen=True)
class CachedAnswer:
    """One answer and the request it answered.

    Attributes:
        key: `request_key` of ``request``.
        request: The request as hashed (JSON-ready).
        answer: The model's text, as it came.
    """

    key: str
    request: Mapping[str, Any]
    answer: str

    def record(self) -> dict[str, Any]:
        """Return the answer as the record stored."""
        return {
            "key": self.key,
            "request": self.request,
            "answer": self.answer,
            "check": _check(self.key, self.answer),
        }


def request_key(request: Mapping[str, Any]) -> str:
    """Return the SHA-256 (hex) of ``request`` as canonical JSON (keys sorted)."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def shared_cache_dir() -> Path:
    """Return the folder of answers shared by runs: ``$TRADELOOM_LLM_CACHE`` where set, else
    ``llm/`` in the user's cache folder (`tradeloom.runtime.cache_home`)."""
    named = os.environ.get("TRADELOOM_LLM_CACHE")
    if named:
        return Path(named).expanduser()
    return cache_home() / "llm"


def _check(key: str, answer: str) -> str:
    return hashlib.sha256(f"{key}\n{answer}".encode()).hexdigest()


def _parsed(record: Any, where: str) -> CachedAnswer:
    if not isinstance(record, dict) or set(record) != {"key", "request", "answer", "check"}:
        raise CorruptCache(f"{where}: not an LLM answer record; the cache is damaged: delete it")
    key, request, answer = record["key"], record["request"], record["answer"]
    if not (isinstance(key, str) and isinstance(request, dict) and isinstance(answer, str)):
        raise CorruptCache(f"{where}: not an LLM answer record; the cache is damaged: delete it")
    if request_key(request) != key:
        raise CorruptCache(
            f"{where}: answer {key[:12]}'s request does not hash to its key; the cache is "
            "damaged: delete it"
        )
    if record["check"] != _check(key, answer):
        raise CorruptCache(
            f"{where}: answer {key[:12]} fails its check; the cache is damaged: delete it"
        )
    return CachedAnswer(key, request, answer)


def read_answers(path: Path) -> dict[str, CachedAnswer]:
    """Return the answers of a run's file by key, each checked.

    Its complete lines only (`tradeloom.files.json_lines`): a last line without a newline
    and without a whole object is an append cut short by a kill, or one a run is writing
    still; it is left out with a warning (``llm_answers_partial_line``), the file
    unchanged.

    Raises:
        CorruptCache: A line that is not a valid record (naming ``path:line``), or one key
            twice with different answers.
        UnreadableFile: The file cannot be read.
    """
    data = read_bytes(path, "an LLM answer cache", limit=_MAX_FILE_BYTES)
    whole = complete_length(data)
    if whole < len(data):
        _log.warning(
            "llm_answers_partial_line",
            path=str(path),
            left_out_bytes=len(data) - whole,
            why="its last line has no newline: an append cut short, or being written",
        )
    text = decode_text(path, data[:whole], "an LLM answer cache")
    found: dict[str, CachedAnswer] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise CorruptCache(
                f"{where}: not JSON; the LLM answer cache is damaged: delete it"
            ) from None
        answer = _parsed(record, where)
        if answer.key in found and found[answer.key].answer != answer.answer:
            raise CorruptCache(f"{where}: answer {answer.key[:12]} given twice, differently")
        found[answer.key] = answer
    return found


def write_answers(path: Path, answers: Iterable[CachedAnswer]) -> None:
    """Write ``answers`` as a run's file (JSON Lines, by key: the same answers, the same
    bytes, in whatever order a run's concurrent calls came back): all of it or none, on
    disk when this returns (`tradeloom.journal.durable.replace_durably`)."""
    ordered = sorted(answers, key=lambda a: a.key)
    make_folder(path.parent)
    replace_durably(path, "".join(map(answer_line, ordered)).encode())


def append_answers(path: Path, answers: Iterable[CachedAnswer]) -> None:
    """Append ``answers`` to a run's file (a paper or live run's tick: only the new ones;
    `read_answers` reads them in any order), on disk when this returns: one write and one
    fsync (and the folder's, for a new file), so a journal committed after it never holds
    a bar whose answers a power loss took.

    The file is ended on a newline first (`tradeloom.files.json_lines.end_on_newline`): a
    last line an earlier append left without one is given it if whole, or cut off
    (durably, with a warning, ``llm_answers_partial_line_cut``), never run on into.
    """
    new = not path.is_file()
    if not new:
        end_on_newline(path, _log, "llm_answers_partial_line_cut", "an append cut short by a kill")
    else:
        make_folder(path.parent)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("".join(map(answer_line, answers)))
        fh.flush()
        os.fsync(fh.fileno())
    if new:  # its name in its folder, too
        sync_folder(path.parent)


def answer_line(answer: CachedAnswer) -> str:
    """Return ``answer``'s line of a run's file."""
    return json.dumps(answer.record(), ensure_ascii=False, sort_keys=True) + "\n"


def _write_durably(path: Path, text: str) -> None:
    """Write ``path`` aside, fsync'd, renamed over it, its folder fsync'd: on disk when
    this returns, never empty after a power loss. The name aside is this process's and
    thread's own (not `replace_durably`'s one ``.tmp``): runs share the folder, and two
    may write one answer at once."""
    make_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    sync_folder(path.parent)


class AnswerCache:
    """The answers a scorer reads: the run's own first, then the shared folder.

    Args:
        run_answers: Answers a run already holds (a paper run's backtest, a replay), by
            key; read first, and kept in the run's file.
        shared: The shared folder, None for none (a replay that must ask nothing new).

    Attributes:
        used: The answers read or added, by key, in first-use order: the run's file.
    """

    def __init__(
        self, run_answers: Mapping[str, CachedAnswer] | None = None, shared: Path | None = None
    ) -> None:
        self._run = dict(run_answers or {})
        self._shared = shared
        self.used: dict[str, CachedAnswer] = {}
        self._order: list[CachedAnswer] = []

    @property
    def shared(self) -> Path | None:
        """The shared folder, None for none."""
        return self._shared

    def keep_journaled(self, answers: Mapping[str, CachedAnswer]) -> None:
        """Read ``answers`` first from now on: those a restarted run kept in its file
        before it stopped (`tradeloom.text.run_files.seed_run_answers`).

        They come before every other answer (the run's own, the shared folder's): the
        answer a run traded on and journaled is the one its restart, ``tradeloom parity``
        and a backtest with ``answers:`` read, never the model's next one.
        """
        self._run.update(answers)

    def get(self, key: str) -> CachedAnswer | None:
        """Return the answer kept for ``key``, or None: the run's (those it started with,
        then those it added: a document asked again within the run, by a challenger's copy
        of the feature, is answered as the first time, with ``shared_cache: false`` too),
        then the shared folder's.

        Raises:
            CorruptCache: The shared folder's file for ``key`` is damaged.
        """
        found = self._run.get(key) or self.used.get(key) or self._read_shared(key)
        if found is not None:
            self._use(found)
        return found

    def used_since(self, count: int) -> list[CachedAnswer]:
        """Return the answers used after the first ``count`` (in first-use order): what a
        tick added, without walking what the run read before it."""
        return self._order[count:]

    def put(self, answer: CachedAnswer) -> None:
        """Keep a new answer for this run and in the shared folder."""
        self._use(answer)
        if self._shared is not None:
            text = json.dumps(answer.record(), ensure_ascii=False, sort_keys=True)
            _write_durably(self._shared_path(answer.key), text)

    def write_run_file(self, folder: Path) -> Path:
        """Write the answers used to ``folder``/`RUN_FILE`; return its path."""
        path = folder / RUN_FILE
        write_answers(path, self.used.values())
        return path

    def _use(self, answer: CachedAnswer) -> None:
        if answer.key not in self.used:
            self.used[answer.key] = answer
            self._order.append(answer)

    def _shared_path(self, key: str) -> Path:
        assert self._shared is not None
        return self._shared / key[:2] / f"{key}.json"

    def _read_shared(self, key: str) -> CachedAnswer | None:
        if self._shared is None:
            return None
        path = self._shared_path(key)
        if not path.is_file():
            return None
        text = read_text(path, "an LLM answer cache")
        try:
            record = json.loads(text)
        except (ValueError, RecursionError):
            raise CorruptCache(
                f"{path}: not JSON; the LLM answer cache is damaged: delete it"
            ) from None
        answer = _parsed(record, str(path))
        if answer.key != key:
            raise CorruptCache(f"{path}: holds answer {answer.key[:12]}, not {key[:12]}")
        return answer
