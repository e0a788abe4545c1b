"""What a run keeps of its text features: the LLM answers it read (the run's file) and a
journal row for each document left unscored.

The runner knows no feature kind: a feature that scored documents has ``reasons`` (why
each unscored document by id, `tradeloom.plugins.features.text.TextFeature`) and its
scorer; a scorer that keeps answers has a ``cache`` (`tradeloom.text.llm_cache.AnswerCache`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import islice
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
    from tradeloom.text.documents import DocumentFeed, Documents

__all__ = [
    "RUN_FILE",
    "UnscoredSince",
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
        rows += _unscored(feature, reasons.items(), visible.get, strategy)
    return rows


class UnscoredSince:
    """The `unscored_rows` of a running run's features, each call only those of the
    reasons added since the last (a paper or live run's tick: it costs what its features
    left unscored since, not what the run did).

    A feature's ``reasons`` grow by insertion, a reason given again keeping its place
    (`tradeloom.plugins.features.text.TextFeature`; a dict that lost keys in place and
    gained as many is outside that contract): how many of each feature's were read is
    kept, by strategy and feature; a feature swapped (a hot reload), or whose
    ``reasons`` were replaced by another dict or shrank, is read from its first again
    (the caller skips what it journaled). A new document's visibility is looked up from
    the end of its source's documents, where a document scored at the latest bar is
    (they are sorted by visibility).
    """

    def __init__(self) -> None:
        self._read: dict[str, dict[int, tuple[Any, Mapping[str, str], int]]] = {}
        """By strategy, by feature's id: the feature, its reasons and how many were read."""

    def rows(
        self,
        features: Iterable[Any],
        documents: Callable[[], Mapping[str, DocumentFeed]],
        strategy: str = "",
    ) -> list[DocumentUnscored]:
        """Return the rows of the reasons ``features`` added since the last call for
        ``strategy`` (the first call: all), as `unscored_rows` makes them.

        Args:
            features: The features (those without ``reasons`` are not text features).
            documents: Returns the text sources by name (called only when a feature
                added a reason).
            strategy: As `unscored_rows`'s.
        """
        held = self._read.get(strategy, {})
        read: dict[int, tuple[Any, Mapping[str, str], int]] = {}
        rows: list[DocumentUnscored] = []
        feeds: Mapping[str, DocumentFeed] | None = None
        for feature in features:
            reasons: Mapping[str, str] | None = getattr(feature, "reasons", None)
            if reasons is None:
                continue
            before = held.get(id(feature))
            done = 0
            if before is not None and before[0] is feature and before[1] is reasons:
                done = before[2] if before[2] <= len(reasons) else 0  # (shrank: all again)
            count = len(reasons)
            read[id(feature)] = (feature, reasons, count)
            if count == done:
                continue  # (most ticks: nothing new)
            if isinstance(reasons, dict):  # read from its end: what was added since
                new = list(islice(reversed(reasons.items()), count - done))
                new.reverse()
            else:
                new = list(islice(reasons.items(), done, None))
            if feeds is None:
                feeds = documents()
            feed = feeds.get(getattr(feature, "of", ""))
            source = None if feed is None else feed.documents()
            visible = _visible_of(source, {document_id for document_id, _ in new})
            rows += _unscored(feature, new, visible.get, strategy)
        self._read[strategy] = read
        return rows


def _visible_of(source: Documents | None, wanted: set[str]) -> dict[str, int]:
    """The visibility of each of ``wanted`` in ``source`` (an id twice: its last row's, as
    `unscored_rows`'s), found from its end (none found: not in it)."""
    if source is None:
        return {}
    ids = source.ids
    if len(wanted) > _LOOKED_UP:  # (a restart's first tick: the history's, at once)
        return dict(zip(ids, source.visible_ns.tolist(), strict=True))
    found: dict[str, int] = {}
    for row in range(len(ids) - 1, -1, -1):
        document_id = ids[row]
        if document_id in wanted and document_id not in found:
            found[document_id] = int(source.visible_ns[row])
            if len(found) == len(wanted):
                break
    return found


_LOOKED_UP = 64
"""Past this many documents to look up, `_visible_of` maps them all at once."""


def _unscored(
    feature: Any,
    reasons: Iterable[tuple[str, str]],
    visible: Callable[[str], int | None],
    strategy: str,
) -> list[DocumentUnscored]:
    prefix = str(getattr(feature, "prefix", ""))
    rows: list[DocumentUnscored] = []
    for document_id, reason in reasons:
        at = visible(document_id)
        rows.append(
            DocumentUnscored(
                feature=prefix,
                document_id=document_id,
                visible=pd.NaT if at is None else pd.Timestamp(at, tz="UTC"),
                reason=reason,
                strategy=strategy,
            )
        )
    return rows
