"""Challengers added to and removed from a running run: a hot reload of ``challengers:``.

A hot reload whose file gained an entry in ``challengers:`` adds that challenger from the
next bar: its shadow book (`tradeloom.live.lifecycle.challengers`) starts flat, with the run's
starting capital, over the history the run has then, trained as a challenger is at a
run's start, and journaled as ``challenger_added`` (its ``first_bar``) in the reload's
commit. An entry that left the file removes its challenger from the next bar
(``challenger_removed``): its book ends at its last ``challenger_bar``. The reload is
refused, in one line each, when an entry that stays changed (a book is one candidate's:
remove it and add the new one under another name), when an added one takes a name the
run gave a challenger before (its rows are that one's), when its components refuse their
params, or when it has a promotion gate its model could not pass
(`tradeloom.live.lifecycle.challengers.unfit`).

A restart starts each challenger at its journaled ``first_bar`` again (its history is
the run's up to that bar), and takes what the file says now as a reload would: an entry
added while the run was down (or by a reload a kill -9 cut short of its commit) starts at
the restart's first bar, an entry removed is removed, both journaled as a reload's would
be; an entry the run has that changed, or one added under the name of a challenger the
run removed, refuses the restart, in one line, before anything is journaled, as a
reload refuses them (`changed_entries` against the journal's last document,
`reused_names`).
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
from tradeloom.live.lifecycle.challengers import (
    ShadowBooks,
    candidate_pipeline,
    drop,
    start_shadow,
    unfit,
)
from tradeloom.live.lifecycle.reload import CHALLENGERS, ReloadRefused

if TYPE_CHECKING:
    from pathlib import Path

    from tradeloom.domain import Universe
    from tradeloom.engine.events import Recorder
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.live.lifecycle.watched import Shadowing
    from tradeloom.live.tick.history import MarketHistory
    from tradeloom.schemas import StrategyConfig
    from tradeloom.schemas.config import Challenger

__all__ = [
    "RosterChange",
    "changed_entries",
    "restart_roster",
    "reused_names",
    "roster_change",
    "used_names",
]


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
        pipeline: The reload's strategy, built (`tradeloom.live.lifecycle.reload.Reload.pipeline`).
        used: Every name the run gave a challenger so far.
    """
    config = pipeline.config
    before = _entries(running.document)
    after = _entries(config.document)
    if before == after:
        return None
    problems = [str(p) for p in changed_entries(running.document, config)]
    added = []
    for index, challenger in enumerate(config.challengers):
        where = f"{CHALLENGERS}.{index}"
        if challenger.name in before:
            continue  # unchanged, or refused above
        if challenger.name in used:
            problems.append(str(_reused(config, index)))
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


def changed_entries(running: Mapping[str, Any], config: StrategyConfig) -> list[Problem]:
    """Return a problem per challenger of the ``running`` document whose entry ``config``
    changed (a book is one candidate's): a reload refuses them, and a restart (the
    journal's last document against the file now, `tradeloom.live.tick.runner`) too."""
    before = _entries(running)
    after = _entries(config.document)
    message = (
        "challenger {!r} changed while it runs (its book is one candidate's): put it back, "
        "or remove it and add the new one under another name"
    )
    problems = []
    for index, challenger in enumerate(config.challengers):
        name = challenger.name
        if name in before and before[name] != after[name]:
            where = f"{CHALLENGERS}.{index}"
            problems.append(Problem(config.locate(where), where, message.format(name)))
    return problems


def reused_names(
    run_dir: Path,
    config: StrategyConfig,
    started: Mapping[str, Any] | None,
    *,
    scope: str | None = None,
) -> list[Problem]:
    """Return a problem per entry of ``config`` (the file a restart takes) that takes the
    name of a challenger the run removed: a restart refuses it, in one line, before
    anything is journaled, as a reload refuses it (`roster_change`); the old one's rows
    are that one's book. ``started``: the document the run started with; ``scope``: the
    portfolio file's strategy ``config`` is, whose challengers the journal names
    ``SCOPE/NAME`` (`tradeloom.live.lifecycle.member_roster`)."""
    now = [c.name for c in config.challengers]
    journaled = _journaled(run_dir, started, now, scope=scope)
    return [
        _reused(config, index)
        for index, challenger in enumerate(config.challengers)
        if challenger.name in journaled.removed and challenger.name not in journaled.running
    ]


def _reused(config: StrategyConfig, index: int) -> Problem:
    where = f"{CHALLENGERS}.{index}.name"
    name = config.challengers[index].name
    message = (
        f"{name!r} named a challenger this run had (the journal's rows of that name are "
        "its book): give the new one another name"
    )
    return Problem(config.locate(where), where, message)


def _entries(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document's ``challengers:`` entries by name, in file order."""
    entries = document.get(CHALLENGERS) or []
    return {str(e.get("name")): e for e in entries if isinstance(e, Mapping)}


def _problem(config: StrategyConfig, path: str, message: str) -> str:
    return str(Problem(config.locate(path), path, message))


@dataclass(frozen=True)
class _Journaled:
    """The run's challengers by its journal.

    Attributes:
        added: Each added by a reload or a restart, with its ``first_bar``.
        removed: Those removed.
        failed: Those dropped.
        running: Those in the run, dropped ones too (the start's and the added, not
            removed), in order.
    """

    added: dict[str, int]
    removed: set[str]
    failed: set[str]
    running: list[str]

    @property
    def used(self) -> set[str]:
        """Every name the run gave a challenger."""
        return {*self.running, *self.removed, *self.failed}


def _journaled(
    run_dir: Path,
    started: Mapping[str, Any] | None,
    now: Collection[str],
    *,
    scope: str | None = None,
) -> _Journaled:
    """The journal's challengers; ``started``: the document the run started with (None:
    a journal that kept none, whose start's are the names ``now`` it has no rows of);
    ``scope``: a portfolio file's strategy, whose challengers' rows alone are read (the
    journal names them ``SCOPE/NAME``), by their names in its file."""
    kinds = ["challenger_added", "challenger_removed", "challenger_failed"]
    frames = read_frames(journal_path(run_dir), kinds)
    prefix = "" if scope is None else f"{scope}/"

    def names(column: Any) -> list[str]:
        return [str(n)[len(prefix) :] for n in column if str(n).startswith(prefix)]

    added = {
        str(r["challenger"])[len(prefix) :]: int(r["first_bar"])
        for _, r in frames["challenger_added"].iterrows()
        if str(r["challenger"]).startswith(prefix)
    }
    removed = set(names(frames["challenger_removed"]["challenger"]))
    failed = set(names(frames["challenger_failed"]["challenger"]))
    at_start = (
        list(_entries(started)) if started is not None else [n for n in now if n not in added]
    )
    running = [n for n in [*at_start, *added] if n not in removed]
    return _Journaled(added, removed, failed, running)


def used_names(
    run_dir: Path, config: StrategyConfig, started: Mapping[str, Any] | None
) -> set[str]:
    """Every name the run gave a challenger, by its journal (the strategy it runs is
    ``config``; ``started``: the document it started with)."""
    return _journaled(run_dir, started, [c.name for c in config.challengers]).used


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
    an entry added starts at the restart's first bar, one removed is removed (one that
    takes a removed one's name refused the restart before: `reused_names`).

    Args:
        run_dir: The run directory.
        config: The strategy as the restart runs it (the file now).
        started: The document the run started with (its ``run_started`` row's).
        history: The run's history, every journaled bar replayed.
        journal: The run's journal.
        recorder: The run's recorder.
    """
    now = [c.name for c in config.challengers]
    journaled = _journaled(run_dir, started, now)
    added, running = dict(journaled.added), journaled.running
    bar = len(history) - 1
    for name in running:
        if name not in now:
            journal.append(ChallengerRemoved(**recorder.at(bar), challenger=name))
    for name in now:
        # a removed one's name back in the file was refused before (`reused_names`)
        if name in running or name in journaled.failed:
            continue
        journal.append(ChallengerAdded(**recorder.at(bar), challenger=name, first_bar=len(history)))
        added[name] = len(history)
    journal.flush()  # `open_shadow_books` reads the challengers' rows from the journal
    return {name: history.universe(first) for name, first in added.items()}


def started_document(run_dir: Path) -> dict[str, Any] | None:
    """The strategy document the run in ``run_dir`` started with (its ``run_started``
    row's)."""
    from tradeloom.journal import read_frames

    rows = read_frames(journal_path(run_dir), ["run_started"])["run_started"]
    document = rows["document"].iloc[0] if len(rows) else None
    return document if isinstance(document, dict) else None
