"""A paper or live run's journal at its start: read and trusted, then opened.

`read_journal` reads the journal a run directory holds (None: a new run), after its
hash chain and tail record are verified and the orders the run POSTed are all found in
it (or, a live run on one market, the venue can say what became of the others); a
journal gone whole after orders were sent is refused. `open_journal` opens its store
for writing, with the mark of the orders sent beside it. Each refusal says that nothing
was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradeloom.engine.universe_checks import declared_symbols
from tradeloom.journal import JournalError, RunIdentity, journal_path, open_store, verify
from tradeloom.journal.owner import strategy_digest
from tradeloom.journal.tail import TailCut
from tradeloom.live.orders.sent_mark import PgSentMark, SentMark, check_sent_mark, open_sent_mark
from tradeloom.schemas.journal import journal_target

if TYPE_CHECKING:
    from tradeloom.journal import JournalStore
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles

__all__ = ["Opening", "open_journal", "read_journal"]


@dataclass(frozen=True)
class Opening:
    """How the journal is opened once read.

    Attributes:
        identity: Who the run is (its journal's header binds it).
        path: The journal's file.
        cut: Its tail record said it lost rows (a live restart asks the venue).
        venue_can_tell: The venue can say what was sent beyond a journal that lost its tail.
    """

    identity: RunIdentity
    path: Path
    cut: bool
    venue_can_tell: bool


def read_journal(
    files: RunFiles, markets: Markets, link: JournalLink
) -> tuple[JournalState | None, Opening]:
    """Return the run's journal read (None: a new run, or a first start that failed
    before it traded) and how to open it.

    Raises:
        JournalError: The journal cannot be trusted, or misses orders the run sent.
    """
    run_dir = files.run_dir
    path = journal_path(run_dir)
    state = None
    identity = RunIdentity(
        files.config.name,
        run_dir.name,
        files.mode,
        strategy_digest(files.config.document),  # the strategy.yaml it writes
    )
    # A live run on one market can ask it what it sent beyond a journal that lost its
    # tail (`tradeloom.live.recovery.sent_lookup`); paper's venue is the journal, and a
    # universe's, a portfolio file's and a router's restarts refuse a cut journal
    venue_can_tell = (
        files.mode == "live"
        and markets.portfolio is None
        and markets.p.router is None
        and declared_symbols(markets.p.data) == 1
    )
    cut = False
    if path.exists() or path.is_symlink():
        from tradeloom.live.recovery.journal_state import read_state

        try:
            try:  # the hash chain and the tail record, before anything is trusted
                verify(path)
            except TailCut:
                if not venue_can_tell:
                    raise
                cut = link.cut = True
            state = read_state(path)
            # the journal must hold every order the run ever POSTed, or the venue
            # must say what became of the others
            if not venue_can_tell or state.started is None:
                check_sent_mark(SentMark(run_dir), path, len(state.sent))
        except JournalError as error:
            raise JournalError(f"{error}; refusing to restart: nothing was sent") from None
        if state.started is None:  # the first start failed before it began trading
            _check_first_strategy(path, identity)
            state = None
    else:
        try:  # a journal gone whole, after orders were sent
            check_sent_mark(SentMark(run_dir), path, 0)
        except JournalError as error:
            raise JournalError(f"{error}; refusing to start: nothing was sent") from None
    return state, Opening(identity, path, cut, venue_can_tell)


def open_journal(
    files: RunFiles, link: JournalLink, state: JournalState | None, opening: Opening
) -> JournalStore:
    """Open the run's journal for writing (set on ``link``, with the mark of the orders
    sent) and return it.

    Raises:
        JournalError: The store cannot be opened, or a PostgreSQL mark misses orders.
    """
    run_dir, path = files.run_dir, opening.path
    try:
        link.journal = journal = open_store(
            run_dir,
            opening.identity,
            journal_target(files.config.journal),
            accept_cut=opening.cut,
        )
    except JournalError as error:
        said = str(error)  # a database's refusal says already that nothing was written
        raise JournalError(
            said if said.endswith("nothing was written") else f"{said}; nothing was sent"
        ) from None
    link.sent_mark = open_sent_mark(run_dir, journal)
    pg_mark = isinstance(link.sent_mark, PgSentMark)  # read once the store is open
    if state is not None and pg_mark and (not opening.venue_can_tell or state.started is None):
        try:
            check_sent_mark(link.sent_mark, path, len(state.sent))
        except JournalError as error:
            journal.close()
            raise JournalError(f"{error}; refusing to restart: nothing was sent") from None
    return journal


def _check_first_strategy(path: Path, identity: RunIdentity) -> None:
    """Refuse to start again, under another strategy file, a run whose first start failed.

    Its journal's first record binds the file it was started with (its
    ``strategy.yaml`` is written again now: it must stay that file).
    """
    from tradeloom.journal.source import open_source

    source = open_source(path)
    try:
        recorded = source.meta.get("strategy_sha256", "")
    finally:
        source.close()
    if recorded and recorded != identity.strategy_sha256:
        raise JournalError(
            f"{path}: its first start, which failed before it traded, was under another "
            f"strategy file (sha256 {recorded[:12]}, the file now is "
            f"{identity.strategy_sha256[:12]}): put the file back, or start in another "
            "folder (--out); nothing was sent"
        )
