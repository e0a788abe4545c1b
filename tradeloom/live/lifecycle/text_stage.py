"""What a paper or live run keeps of its text features at each tick: the LLM answers it
read, written into the run (``llm_answers.jsonl``, what ``tradeloom parity`` compares:
each tick appends the new ones, and the stop writes the file sorted by key, as a
backtest does), and a ``document_unscored`` row for each document a feature could not
score. A restart keeps what an earlier start wrote there: its scorers read those answers
first, before its features are computed again over the history and the journaled bars
replayed (none of them is asked again: a model that answers otherwise, or not at all,
changes nothing the run traded on), and its first write and the stop's hold them too (a
last line a kill cut short is left out, with a warning).

A stage like any (`tradeloom.live.tick.services.Stage`): after the tick's commit, once
bars were processed; and when the run stops."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloom.live.tick.services import JournalLink, Markets, RunFiles, Stage
from tradeloom.plugins.protocols import LiveDocuments
from tradeloom.text.llm_cache import CachedAnswer
from tradeloom.text.run_files import (
    answer_caches,
    append_run_answers,
    kept_run_answers,
    seed_run_answers,
    unscored_rows,
    write_run_answers,
)

if TYPE_CHECKING:
    from tradeloom.live.recovery.journal_state import JournalState

__all__ = ["TextAnswers"]


class TextAnswers(Stage):
    """Keep the text features' answers with the run and journal what they left unscored.

    Args:
        files, link, markets: The run's services.
    """

    def __init__(self, files: RunFiles, link: JournalLink, markets: Markets) -> None:
        self.files, self.link, self.markets = files, link, markets
        self._kept = -1
        self._written: set[str] | None = None
        """The answers' keys in the run's file (None: not written yet by this start)."""
        self._earlier: dict[str, CachedAnswer] | None = None
        """The answers an earlier start of the run kept in its file (read by `check` at a
        restart, else at this start's first write)."""
        self._told: set[tuple[str, str]] = set()
        self._plain: object = None
        """The last features found with no text feature among them (a tick then has
        nothing to keep: a feature that scores documents has its ``scorer`` and ``reasons``
        from the start, `tradeloom.plugins.features.text.TextFeature`)."""

    def check(self, state: JournalState) -> None:
        """Have the text features' scorers read first the answers the run kept before it
        stopped, before the restart computes its features again; refuse a restart whose
        file of answers is damaged (`tradeloom.text.run_files.seed_run_answers`)."""
        caches = answer_caches(self.markets.p.features)
        if caches:  # (most runs: none, and no file to read)
            self._earlier = seed_run_answers(self.files.run_dir, caches)

    def after_tick(self, processed: int) -> bool:
        """Write the answers read so far (when more were) and journal new unscored ones."""
        if not processed:
            return False
        return self._keep()

    def close(self) -> None:
        """Keep what the last tick read, the file sorted by key."""
        self._keep()
        caches = answer_caches(self.markets.p.features)
        if caches:
            write_run_answers(self.files.run_dir, caches, self._earlier or {})

    def _keep(self) -> bool:
        features = self.markets.p.features  # a hot reload's, once swapped
        if features is self._plain:
            return False
        if not any(hasattr(f, "scorer") or hasattr(f, "reasons") for f in features):
            self._plain = features  # most runs: asked once, not at every tick
            return False
        caches = answer_caches(features)
        used = sum(len(cache.used) for cache in caches)
        if caches and used != self._kept:
            if self._written is None:  # this start's first: the whole file, once
                if self._earlier is None:
                    self._earlier = kept_run_answers(self.files.run_dir)
                write_run_answers(self.files.run_dir, caches, self._earlier)
                self._written = {key for cache in caches for key in cache.used}
                self._written.update(self._earlier)
            else:  # then only the new answers (a tick costs what it read, not the run)
                append_run_answers(self.files.run_dir, caches, self._written)
            self._kept = used
        if not any(getattr(f, "reasons", None) for f in features):
            return False  # (most runs: no text feature, or every document scored)
        data = self.markets.p.data
        feeds = data.live_documents() if isinstance(data, LiveDocuments) else {}
        documents = {name: feed.documents() for name, feed in feeds.items()}
        journaled = False
        for row in unscored_rows(features, documents):
            key = (row.feature, row.document_id)
            if key in self._told:
                continue
            self._told.add(key)
            self.link.recorder_or_fail.record(row)
            journaled = True
        return journaled
