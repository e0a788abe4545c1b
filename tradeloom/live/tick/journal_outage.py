"""A paper or live run whose journal database is lost: no order until it is back.

An order is sent only after the event that announces it is committed. With the
journal's database unreachable nothing can be committed, so the run stops trading at
once: from the failed commit on, no bar runs and no order is sent, reducing ones
included (the trading state reads REDUCING in the logs and `LiveRunner.trading_state`;
nothing can journal it). What the failed commit held is lost as a crash loses it.

Each later tick tries to connect again. Once the database answers, the run rebuilds
itself from the journal exactly as a restart after ``kill -9`` does
(`tradeloom.live.recovery.restart.restart`: replay, look up the orders in flight,
reconcile with the venue), journals the gap (``journal_reconnected``: when it was lost,
when it was back, the error, the last row committed and the events lost) and trades on:
the bars closed meanwhile run at the next tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from tradeloom.engine.events import Recorder
from tradeloom.journal import (
    JournalReconnected,
    JournalUnavailable,
    Reconnecting,
    journal_path,
    verify,
)
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles

__all__ = ["JournalOutage", "lose_journal"]

_log = logger("tradeloom.live")


@dataclass(frozen=True)
class JournalOutage:
    """The journal's database has been unreachable since ``lost_at``.

    Attributes:
        lost_at: When a commit first failed (the runner's clock).
        error: The first failure, one line (no secret).
    """

    lost_at: pd.Timestamp
    error: str

    def rejoin(
        self,
        files: RunFiles,
        link: JournalLink,
        markets: Markets,
        rebuild: Callable[[JournalState], None],
    ) -> bool:
        """Connect again; if the database answers, rebuild the run from it and journal
        the gap. Return whether the run trades again.

        ``rebuild`` rebuilds the run's session from the journal read back, as a restart
        of the process does (it sets ``markets.session``).

        Raises:
            JournalError: The journal, read back, is damaged or disagrees with the
                venue (as a restart would refuse).
        """
        store = link.journal
        assert isinstance(store, Reconnecting)  # only a database is lost
        try:
            last_seq, lost = store.reconnect()
        except JournalUnavailable as error:
            _log.warning("journal_still_unavailable", error=str(error), state="REDUCING")
            return False
        from tradeloom.live.recovery.journal_state import read_state

        path = journal_path(files.run_dir)
        verify(path)
        state = read_state(path)
        # a new recorder, as a restarted process has: the replay fills it again
        recorder = Recorder(store, markets.plugins.hook, files.run_info())
        link.recorder = recorder
        recorder.symbol = files.symbol
        rebuild(state)
        back = files.now()
        session = markets.session_or_fail
        recorder.record(
            JournalReconnected(
                **recorder.at(len(session.history) - 1),
                lost_at=self.lost_at,
                back_at=back,
                error=self.error,
                last_seq=last_seq,
                events_lost=lost,
            )
        )
        store.flush()
        _log.warning(
            "journal_reconnected",
            lost_at=self.lost_at.isoformat(),
            seconds=round((back - self.lost_at).total_seconds(), 3),
            events_lost=lost,
            state=session.state,
        )
        return True


def lose_journal(
    files: RunFiles, link: JournalLink, markets: Markets, error: JournalUnavailable
) -> JournalOutage:
    """Stop trading on a lost journal database; return the outage to rejoin from.

    Raises:
        JournalUnavailable: ``error`` again, for a store that cannot reconnect (SQLite) or
            a portfolio's run (restarted from its journal by running the command again).
    """
    if not isinstance(link.journal, Reconnecting) or markets.portfolio is not None:
        raise error
    _log.error("journal_lost", error=str(error), state="REDUCING", orders="none until it is back")
    return JournalOutage(files.now(), str(error))
