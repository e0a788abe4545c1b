"""What a paper or live run keeps of its text features at each tick: the LLM answers it
read, written into the run (``llm_answers.jsonl``, what ``tradeloom parity`` compares:
each bar's new ones appended, and the stop writes the file sorted by key, as a
backtest does), and a ``document_unscored`` row for each document a feature could not
score. A portfolio file's strategies keep theirs there too, each strategy's features
beside the account's (its restart reads them back, and ``tradeloom parity`` replays
each strategy's from them), and each strategy's unscored documents are journaled with
its name (``strategy``: two strategies may share a feature's prefix).

The answers a bar's features read are on disk (appended and fsync'd, once per bar that
read new ones, none for a bar that read none) before anything of the bar is committed
(`TextAnswers.before_commit`): after a power loss the journal never holds a bar whose
answers are gone, which its restart would ask the model again and trade on otherwise.
So are, before their commits, what the challengers read at a close (a promotion's
commit), and what a tick's stages read before its own commit (a hot reload's rows, the
challengers it adds, trained over the history; they ask the running scorers, as the
champion's features do).

A restart keeps what an earlier start wrote there: its scorers read those answers
first, before its features are computed again over the history and the journaled bars
replayed (none of them is asked again: a model that answers otherwise, or not at all,
changes nothing the run traded on), and its first write and the stop's hold them too (a
last line a kill cut short is left out, with a warning). So does a start again after a
first start that failed before it traded (its journal binds the same strategy file). A
folder with a file of answers and no journal is another run's (or a copy): a new run
never starts there (`tradeloom.engine.run_dir.check_live_run_dir` refuses it in one
line), and one with another run's journal is refused by the runner.

A stage like any (`tradeloom.live.tick.services.Stage`): before a bar's commit, after
the tick's commit once bars were processed, and when the run stops."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tradeloom.live.tick.services import JournalLink, Markets, RunFiles, Stage
from tradeloom.plugins.protocols import LiveDocuments
from tradeloom.text.llm_cache import AnswerCache, CachedAnswer
from tradeloom.text.run_files import (
    UnscoredSince,
    answer_caches,
    append_run_answers,
    kept_run_answers,
    seed_run_answers,
    write_run_answers,
)

if TYPE_CHECKING:
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.text.documents import DocumentFeed

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
        self._seen: dict[AnswerCache, int] = {}
        """How many of each cache's answers the appends looked at (a tick costs what it
        read, `tradeloom.text.run_files.append_run_answers`)."""
        self._earlier: dict[str, CachedAnswer] | None = None
        """The answers an earlier start of the run kept in its file (read by `check`, or
        else at this start's first write)."""
        self._told: set[tuple[str, str, str]] = set()
        """The unscored documents journaled, by strategy, feature and id."""
        self._unscored = UnscoredSince()
        """The features' reasons read so far (a tick reads those added since)."""
        self._plain: tuple[Sequence[Any], ...] = ()
        """The last features found with no text feature among them (a tick then has
        nothing to keep: a feature that scores documents has its ``scorer`` and ``reasons``
        from the start, `tradeloom.plugins.features.text.TextFeature`)."""

    def check(self, state: JournalState | None) -> None:
        """Have the text features' scorers read first the answers the run kept before it
        stopped (or before a first start that failed before it traded: ``state`` None),
        before their features are computed again; refuse a damaged file of answers
        (`tradeloom.text.run_files.seed_run_answers`).

        A new run's folder holds no file of answers: one without a journal is refused
        before this (`tradeloom.engine.run_dir.check_live_run_dir`), so a file here is
        the run's own.
        """
        if state is not None:  # what the run journaled unscored is not journaled again
            self._told.update(state.unscored)
        caches = answer_caches(self._features())
        if caches:  # (most runs: none, and no file to read)
            self._earlier = seed_run_answers(self.files.run_dir, caches)

    def before_commit(self) -> None:
        """Append the answers the bar's features read that the run's file lacks, fsync'd,
        before the bar's rows are committed."""
        self._keep_answers()

    def after_tick(self, processed: int) -> bool:
        """Write the answers read since (none, most ticks: every commit of the tick
        wrote them first) and journal new unscored documents."""
        if not processed:
            return False
        return self._keep()

    def close(self) -> None:
        """Keep what the last tick read, the file sorted by key."""
        self._keep()
        caches = answer_caches(self._features())
        if caches:
            write_run_answers(self.files.run_dir, caches, self._earlier or {})

    def _sets(self) -> tuple[Sequence[Any], ...]:
        """The account's features (a hot reload's, once swapped) and, of a portfolio
        file, each strategy's."""
        markets = self.markets
        portfolio = markets.portfolio
        if portfolio is None:
            return (markets.p.features,)
        return (markets.p.features, *(p.features for p in portfolio.pipelines))

    def _features(self) -> list[Any]:
        return [f for features in self._sets() for f in features]

    def _keep_answers(self) -> bool:
        """Write the answers read that the run's file lacks; return False when no feature
        is a text feature (nothing to keep, nor to journal)."""
        sets = self._sets()
        plain = self._plain
        if len(sets) == len(plain) and all(a is b for a, b in zip(sets, plain, strict=True)):
            return False
        features = [f for each in sets for f in each]
        if not any(hasattr(f, "scorer") or hasattr(f, "reasons") for f in features):
            self._plain = sets  # most runs: asked once, not at every bar
            return False
        caches = answer_caches(features)
        used = sum(len(cache.used) for cache in caches)
        if caches and used != self._kept:
            self._write(caches)
            self._kept = used
        return True

    def _write(self, caches: list[AnswerCache]) -> None:
        run_dir = self.files.run_dir
        if self._written is None:  # this start's first: the whole file, once
            if self._earlier is None:
                self._earlier = kept_run_answers(run_dir)
            write_run_answers(run_dir, caches, self._earlier)
            self._written = {key for cache in caches for key in cache.used}
            self._written.update(self._earlier)
        else:  # then only the new answers (a bar costs what it read, not the run)
            append_run_answers(run_dir, caches, self._written, self._seen)

    def _pipelines(self) -> tuple[Pipeline, ...]:
        """A strategy run alone's pipeline, or each of a portfolio file's strategies' (the
        account's holds the first one's features: journaled once, as the first's)."""
        portfolio = self.markets.portfolio
        return (self.markets.p,) if portfolio is None else tuple(portfolio.pipelines)

    def _keep(self) -> bool:
        if not self._keep_answers():
            return False
        journaled = False
        alone = self.markets.portfolio is None
        for pipeline in self._pipelines():
            features = pipeline.features
            if not any(getattr(f, "reasons", None) for f in features):
                continue  # (most runs: no text feature, or every document scored)
            strategy = "" if alone else pipeline.config.name  # a portfolio's: by its name
            for row in self._unscored.rows(features, _feeds(pipeline), strategy):
                key = (strategy, row.feature, row.document_id)
                if key in self._told:
                    continue
                self._told.add(key)
                self.link.recorder_or_fail.record(row)
                journaled = True
        return journaled


def _feeds(pipeline: Pipeline) -> Callable[[], Mapping[str, DocumentFeed]]:
    """The pipeline's text sources by name, asked for only when a feature left a document
    unscored since the last tick."""

    def feeds() -> Mapping[str, DocumentFeed]:
        data = pipeline.data
        return data.live_documents() if isinstance(data, LiveDocuments) else {}

    return feeds
