"""Challengers added to and removed from a running run: a hot reload of ``challengers:``.

A hot reload whose file gained an entry in ``challengers:`` adds that challenger from the
next bar: its shadow book (`tradeloom.live.challengers`) starts flat, with the run's
starting capital, over the history the run has then, trained as a challenger is at a
run's start, and journaled as ``challenger_added`` (its ``first_bar``) in the reload's
commit. An entry that left the file removes its challenger from the next bar
(``challenger_removed``): its book ends at its last ``challenger_bar``. The reload is
refused, in one line each, when an entry that stays changed (a book is one candidate's:
remove it and add the new one under another name), when an added one takes a name the
run gave a challenger before (its rows are that one's), when its components refuse their
params, or when it has a promotion gate its model could not pass
(`tradeloom.live.challengers.unfit`).

A restart starts each challenger at its journaled ``first_bar`` again (its history is
the run's up to that bar), and takes what the file says now: an entry added while the run
was down (or by a reload a kill -9 cut short of its commit) starts at the restart's
first bar, an entry removed is removed, both journaled as a reload's would be.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradeloom.errors import ConfigError, Problem
from tradeloom.journal import (
    ChallengerAdded,
    ChallengerRemoved,
    JournalStore,
    journal_path,
    read_frames,
)
from tradeloom.live.challengers import (
    ShadowBooks,
    candidate_pipeline,
    drop,
    start_shadow,
    unfit,
)
from tradeloom.live.reload import CHALLENGERS, ReloadRefused

if TYPE_CHECKING:
    from pathlib import Path

    from tradeloom.domain import Universe
    from tradeloom.engine.events import Recorder
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.live.canary import Shadowing
    from tradeloom.live.history import MarketHistory
    from tradeloom.schemas import StrategyConfig
    from tradeloom.schemas.config import Challenger

__all__ = ["RosterChange", "restart_roster", "roster_change", "used_names"]


@dataclass(frozen=True)
class RosterChange:
    """What a reload does to the running challengers.

    Attributes:
        added: The challengers it adds, each with its candidate (`candidate_pipeline`).
        removed: The names of those it removes.
    """

    added: tuple[tuple[Challenger, Pipeline], ...]
    removed: tuple[str, ...]

    def apply(
        self,
        books: ShadowBooks | None,
        journal: JournalStore,
        recorder: Recorder,
        history: MarketHistory,
        shadowing: Shadowing,
    ) -> ShadowBooks:
        """Remove and add the challengers from the bar after ``history``'s last,
        journaled; return the run's books (new when it had none)."""
        books = books if books is not None else ShadowBooks(journal, [])
        bar = len(history) - 1
        for name in self.removed:
            books.retire(name)
            journal.append(ChallengerRemoved(**recorder.at(bar), challenger=name))
        head = history.universe(len(history))
        for challenger, candidate in self.added:
            journal.append(
                ChallengerAdded(
                    **recorder.at(bar), challenger=challenger.name, first_bar=len(history)
                )
            )
            try:
                shadow = start_shadow(
                    challenger.name,
                    candidate,
                    recorder,
                    head,
                    clock=shadowing.clock,
                    live_rows=shadowing.live_rows,
                )
            except Exception as exc:  # a candidate never stops the champion
                drop(journal, challenger.name, exc)
                continue
            shadow.gate = challenger.promote_when
            books.add(shadow)
        return books


def roster_change(
    running: StrategyConfig, pipeline: Pipeline, used: Collection[str]
) -> RosterChange | ReloadRefused | None:
    """Return what a reload to ``pipeline``'s strategy (validated, built) does to the
    challengers of ``running`` (None: nothing), or why it is refused.

    Args:
        running: The strategy the run is running.
        pipeline: The reload's strategy, built (`tradeloom.live.reload.Reload.pipeline`).
        used: Every name the run gave a challenger so far.
    """
    config = pipeline.config
    before = _entries(running.document)
    after = _entries(config.document)
    if before == after:
        return None
    problems: list[str] = []
    added = []
    for index, challenger in enumerate(config.challengers):
        where = f"{CHALLENGERS}.{index}"
        if challenger.name in before:
            if before[challenger.name] != after[challenger.name]:
                problems.append(
                    _problem(
                        config,
                        where,
                        f"challenger {challenger.name!r} changed while it runs (its book is "
                        "one candidate's): put it back, or remove it and add the new one "
                        "under another name",
                    )
                )
            continue
        if challenger.name in used:
            problems.append(
                _problem(
                    config,
                    f"{where}.name",
                    f"{challenger.name!r} named a challenger this run had (the journal's "
                    "rows of that name are its book): give the new one another name",
                )
            )
            continue
        try:
            candidate = candidate_pipeline(pipeline, challenger)
        except ConfigError as exc:
            problems.extend(exc.lines())
            continue
        refused = unfit(pipeline, candidate) if challenger.promote_when is not None else None
        if refused is not None:
            message = (
                f"a gated challenger's model must be able to take the champion's place: {refused}"
            )
            problems.append(_problem(config, f"{where}.promote_when", message))
            continue
        added.append((challenger, candidate))
    if problems:
        return ReloadRefused(tuple(problems))
    removed = tuple(name for name in before if name not in after)
    return RosterChange(tuple(added), removed)


def _entries(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document's ``challengers:`` entries by name, in file order."""
    entries = document.get(CHALLENGERS) or []
    return {str(e.get("name")): e for e in entries if isinstance(e, Mapping)}


def _problem(config: StrategyConfig, path: str, message: str) -> str:
    return str(Problem(config.locate(path), path, message))


def used_names(
    run_dir: Path, config: StrategyConfig, started: Mapping[str, Any] | None
) -> set[str]:
    """Every name the run gave a challenger: the start's, the file's now and the
    journal's (added, removed, dropped)."""
    frames = read_frames(
        journal_path(run_dir), ["challenger_added", "challenger_removed", "challenger_failed"]
    )
    names = {str(n) for frame in frames.values() for n in frame["challenger"]}
    names.update(c.name for c in config.challengers)
    names.update(_entries(started or {}))
    return names


def restart_roster(
    run_dir: Path,
    config: StrategyConfig,
    started: Mapping[str, Any] | None,
    history: MarketHistory,
    journal: JournalStore,
    recorder: Recorder,
) -> dict[str, Universe]:
    """Return the history each challenger a reload added starts from, at a restart (its
    journaled ``first_bar``); journal what the file changed in ``challengers:`` since
    the journal's last word (while the run was down, or in a reload a kill -9 cut short):
    an entry added starts at the restart's first bar, one removed is removed, and one
    that takes a name the run gave a challenger before is dropped, saying why.

    Args:
        run_dir: The run directory.
        config: The strategy as the restart runs it (the file now).
        started: The document the run started with (its ``run_started`` row's).
        history: The run's history, every journaled bar replayed.
        journal: The run's journal.
        recorder: The run's recorder.
    """
    kinds = ["challenger_added", "challenger_removed", "challenger_failed"]
    frames = read_frames(journal_path(run_dir), kinds)
    added = {
        str(r["challenger"]): int(r["first_bar"]) for _, r in frames["challenger_added"].iterrows()
    }
    removed = {str(n) for n in frames["challenger_removed"]["challenger"]}
    failed = {str(n) for n in frames["challenger_failed"]["challenger"]}
    now = [c.name for c in config.challengers]
    # a journal that kept no start document: the file's entries it has no rows of started
    at_start = (
        list(_entries(started)) if started is not None else [n for n in now if n not in added]
    )
    running = [n for n in [*at_start, *added] if n not in removed]
    bar = len(history) - 1
    for name in running:
        if name not in now:
            journal.append(ChallengerRemoved(**recorder.at(bar), challenger=name))
    used = {*running, *removed, *failed}
    for name in now:
        if name in running or name in failed:
            continue
        if name in used:
            message = f"{name!r} named a challenger this run had: give the new one another name"
            drop(journal, name, ValueError(message), bar=bar)
            continue
        journal.append(ChallengerAdded(**recorder.at(bar), challenger=name, first_bar=len(history)))
        added[name] = len(history)
    journal.flush()  # `open_shadow_books` reads the challengers' rows from the journal
    return {name: history.universe(first) for name, first in added.items()}
