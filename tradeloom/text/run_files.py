"""What a run keeps of its text features: the LLM answers it read (the run's file) and a
journal row for each document left unscored.

The runner knows no feature kind: a feature that scored documents has ``reasons`` (why
each unscored document by id, `tradeloom.plugins.features.text.TextFeature`) and its
scorer; a scorer that keeps answers has a ``cache`` (`tradeloom.text.llm_cache.AnswerCache`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.journal.events.documents import DocumentUnscored
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.text.llm_cache import (
    RUN_FILE,
    AnswerCache,
    CachedAnswer,
    append_answers,
    read_answers,
    write_answers,
)

if TYPE_CHECKING:
    from tradeloom.text.documents import Documents

__all__ = [
    "RUN_FILE",
    "answer_caches",
    "append_run_answers",
    "kept_run_answers",
    "seed_run_answers",
    "unscored_rows",
    "write_run_answers",
]


def answer_caches(features: Iterable[Any]) -> list[AnswerCache]:
    """Return the answer caches of the features whose scorer keeps one, each once (a
    portfolio's account pipeline holds its first strategy's features)."""
    found: dict[int, AnswerCache] = {}
    for feature in features:
        cache = getattr(getattr(feature, "scorer", None), "cache", None)
        if isinstance(cache, AnswerCache):
            found.setdefault(id(cache), cache)
    return list(found.values())


def write_run_answers(
    run_dir: Path, caches: Iterable[AnswerCache], kept: Mapping[str, CachedAnswer] | None = None
) -> None:
    """Write the answers the caches' scorers read into ``run_dir``/`RUN_FILE` (sorted by
    key), after those ``kept`` (what an earlier start of the run wrote: `kept_run_answers`;
    a key in both keeps the earlier answer)."""
    write_answers(run_dir / RUN_FILE, _merged(caches, kept).values())


def kept_run_answers(run_dir: Path) -> dict[str, CachedAnswer]:
    """Return the answers an earlier start of the run kept in ``run_dir``/`RUN_FILE` (none:
    no file), its complete lines (a last one a kill cut short is left out, with a warning:
    `tradeloom.text.llm_cache.read_answers`).

    Raises:
        CorruptCache: A complete line is not a valid record.
        UnreadableFile: The file cannot be read.
    """
    path = run_dir / RUN_FILE
    return read_answers(path) if path.is_file() else {}


def seed_run_answers(run_dir: Path, caches: Iterable[AnswerCache]) -> dict[str, CachedAnswer]:
    """Have ``caches`` read first the answers an earlier start of the run kept in
    ``run_dir``/`RUN_FILE` (`kept_run_answers`), so a restart asks none of them again;
    return them.

    Raises:
        CorruptCache: A complete line is not a valid record.
        UnreadableFile: The file cannot be read.
    """
    kept = kept_run_answers(run_dir)
    if kept:
        for cache in caches:
            cache.keep_journaled(kept)
    return kept


def append_run_answers(
    run_dir: Path,
    caches: Iterable[AnswerCache],
    written: set[str],
    seen: dict[AnswerCache, int],
) -> int:
    """Append to ``run_dir``/`RUN_FILE` the answers read that ``written`` does not hold
    (a paper or live run's tick: the file grows by the new answers, not rewritten); add
    their keys to ``written``; return how many.

    ``seen`` (kept by the caller from tick to tick, empty at first) holds how many of each
    cache's answers an earlier call looked at: a tick costs what it read, not what the
    run read."""
    new: dict[str, CachedAnswer] = {}
    counts: dict[AnswerCache, int] = {}
    for cache in caches:
        start = seen.get(cache, 0)
        for answer in cache.used_since(start):
            if answer.key not in written:
                new.setdefault(answer.key, answer)  # (two caches may hold one answer: once)
        counts[cache] = len(cache.used)
    if new:
        append_answers(run_dir / RUN_FILE, new.values())
        written.update(new)
    seen.clear()  # after the append (one that failed is tried again); a cache gone is let go
    seen.update(counts)
    return len(new)


def _merged(
    caches: Iterable[AnswerCache], kept: Mapping[str, CachedAnswer] | None = None
) -> dict[str, CachedAnswer]:
    merged: dict[str, CachedAnswer] = dict(kept or {})
    for cache in caches:
        for key, answer in cache.used.items():
            merged.setdefault(key, answer)
    return merged


def unscored_rows(
    features: Iterable[Any], documents: Mapping[str, Documents], strategy: str = ""
) -> list[DocumentUnscored]:
    """Return a `DocumentUnscored` for each document a text feature could not score.

    Args:
        features: The run's features (those without ``reasons`` are not text features).
        documents: The text sources by name (the bars' ``documents``).
        strategy: The portfolio file's strategy the features are ('' for a strategy run
            alone): each row names it.
    """
    rows: list[DocumentUnscored] = []
    for feature in features:
        reasons: Mapping[str, str] | None = getattr(feature, "reasons", None)
        if not reasons:
            continue
        source = documents.get(getattr(feature, "of", ""))
        visible: dict[str, int] = {}
        if source is not None:
            visible = dict(zip(source.ids, source.visible_ns.tolist(), strict=True))
        for document_id, reason in reasons.items():
            at = visible.get(document_id)
            rows.append(
                DocumentUnscored(
                    feature=str(getattr(feature, "prefix", "")),
                    document_id=document_id,
                    visible=pd.NaT if at is None else pd.Timestamp(at, tz="UTC"),
                    reason=reason,
                    strategy=strategy,
                )
            )
    return rows
