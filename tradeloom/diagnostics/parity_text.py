"""Parity of a run's LLM answers: its text features replayed from its own answers, and
each answer it read that a backtest would read otherwise named (``llm_answer_changed``).

The replay asks no model (`replay_text_features`): each ``text_llm`` feature reads the
run's ``llm_answers.jsonl`` first, then the shared folder, with calls off, so the
replay's text features are the run's. What a backtest of the same strategy would read
is the shared folder (`tradeloom.text.llm_cache.shared_cache_dir`): an answer the run
read that is there with another text (the same question answered otherwise), or not
there at all (asked live, never by the backtest), is a changed answer
(`llm_answer_changes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeloom.text.llm_cache import RUN_FILE, AnswerCache, read_answers, shared_cache_dir

__all__ = ["LLM_CAUSE", "AnswerChange", "llm_answer_changes", "replay_text_features"]

LLM_CAUSE = "llm_answer_changed"
"""The cause a changed LLM answer is named by."""

_TEXT_LLM = "text_llm"
_FILES = {"text_llm": ("prompt",), "lexicon": ("lexicon",), "text_embedding": ("model_dir",)}
"""Each text feature kind's keys naming a file relative to its strategy file."""


@dataclass(frozen=True)
class AnswerChange:
    """One answer the run read that a backtest reads otherwise.

    Attributes:
        key: The question's key (`tradeloom.text.llm_cache.request_key`).
        how: ``changed`` (another answer to the same question) or ``absent`` (none).
        run: The run's answer.
        backtest: The backtest's answer (None: absent).
    """

    key: str
    how: str
    run: str
    backtest: str | None


def replay_text_features(document: dict[str, Any], run_dir: Path, source: Path) -> None:
    """Make each ``text_llm`` feature of the replay's ``document`` read the run's answers
    with calls off, and each text feature's files (a prompt, a lexicon, a model folder)
    resolve as the run resolved them (beside ``source``): the replay's strategy file is
    written elsewhere."""
    answers = run_dir / RUN_FILE
    for feature in document.get("features") or []:
        if not isinstance(feature, dict):
            continue
        for key in _FILES.get(str(feature.get("kind")), ()):
            value = feature.get(key)
            if isinstance(value, str):
                feature[key] = str((source.parent / value).absolute())
        if feature.get("kind") != _TEXT_LLM:
            continue
        feature["calls"] = False
        if answers.is_file():
            feature["answers"] = str(answers.absolute())


def llm_answer_changes(run_dir: Path, shared: Path | None = None) -> list[AnswerChange]:
    """Return each answer of the run's file that the shared folder holds otherwise or not
    at all (none: the run read no LLM answer).

    Raises:
        CorruptCache: The run's file or a shared answer fails its check.
    """
    path = run_dir / RUN_FILE
    if not path.is_file():
        return []
    backtest = AnswerCache(shared=shared_cache_dir() if shared is None else shared)
    changes = []
    for key, answer in sorted(read_answers(path).items()):
        theirs = backtest.get(key)
        if theirs is None:
            changes.append(AnswerChange(key, "absent", answer.answer, None))
        elif theirs.answer != answer.answer:
            changes.append(AnswerChange(key, "changed", answer.answer, theirs.answer))
    return changes
