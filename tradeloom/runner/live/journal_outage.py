"""A paper or live run whose journal database is lost: no order until it is back.

An order is sent only after the event that announces it is committed. With the
journal's database unreachable nothing can be committed, so the run stops trading at
once: from the failed commit on, no bar runs and no order is sent, reducing ones
included (the trading state reads REDUCING in the logs and `LiveRunner.trading_state`;
nothing can journal it). What the failed commit held is lost as a crash loses it.

Each later tick tries to connect again. Once the database answers, the run rebuilds
itself from the journal exactly as a restart after ``kill -9`` does
(`tradeloom.runner.live.restore.restart`: replay, look up the orders in flight,
reconcile with the venue), journals the gap (``journal_reconnected``: when it was lost,
when it was back, the error, the last row committed and the events lost) and trades on:
the bars closed meanwhile run at the next tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import structlog

from tradeloom.domain import RunInfo
from tradeloom.journal import JournalReconnected, JournalUnavailable, journal_path, verify
from tradeloom.runner.events import Recorder

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner

__all__ = ["JournalOutage", "lose_journal"]

_log = structlog.get_logger("tradeloom.live")


@dataclass(frozen=True)
class JournalOutage:
    """The journal's database has been unreachable since ``lost_at``.

    Attributes:
        lost_at: When a commit first failed (the runner's clock).
        error: The first failure, one line (no secret).
    """

    lost_at: pd.Timestamp
    error: str

    def rejoin(self, runner: LiveRunner) -> bool:
        """Connect again; if the database answers, rebuild the run from it and journal
        the gap. Return whether the run trades again.

        Raises:
            JournalError: The journal, read back, is damaged or disagrees with the
                venue (as a restart would refuse).
        """
        store = runner.journal
        reconnect = getattr(store, "reconnect", None)
        assert store is not None and reconnect is not None  # only a database is lost
        try:
            last_seq, lost = reconnect()
        except JournalUnavailable as error:
            _log.warning("journal_still_unavailable", error=str(error), state="REDUCING")
            return False
        from tradeloom.runner.backtest import compute_features
        from tradeloom.runner.live.journal_state import read_state
        from tradeloom.runner.live.restore import restart

        path = journal_path(runner.run_dir)
        verify(path)
        state = read_state(path)
        bars = runner.source.load()
        features = compute_features(runner.p, bars)
        if runner.stream is not None:
            runner.stream.stop()
            runner.stream = None
        # a new recorder, as a restarted process has: the replay fills it again
        run = RunInfo(
            run_id=runner.run_dir.name,
            strategy=runner.config.name,
            mode=runner.mode,
            run_dir=str(runner.run_dir),
        )
        recorder = runner.recorder = Recorder(store, runner.plugins.hook, run)
        recorder.symbol = bars.symbol
        runner.session, runner.exchange_venue = restart(runner, state, bars, features)
        back = runner.now()
        recorder.record(
            JournalReconnected(
                **recorder.at(len(runner.session_or_fail.history) - 1),
                lost_at=self.lost_at,
                back_at=back,
                error=self.error,
                last_seq=last_seq,
                events_lost=lost,
            )
        )
        store.flush()
        runner.open_stream()
        _log.warning(
            "journal_reconnected",
            lost_at=self.lost_at.isoformat(),
            seconds=round((back - self.lost_at).total_seconds(), 3),
            events_lost=lost,
            state=runner.session_or_fail.state,
        )
        return True


def lose_journal(runner: LiveRunner, error: JournalUnavailable) -> JournalOutage:
    """Stop trading on a lost journal database; return the outage to rejoin from.

    Raises:
        JournalUnavailable: ``error`` again, for a store that cannot reconnect (SQLite) or
            a universe run (restarted from its journal by running the command again).
    """
    if not hasattr(runner.journal, "reconnect") or runner.ticker is not None:
        raise error
    _log.error("journal_lost", error=str(error), state="REDUCING", orders="none until it is back")
    return JournalOutage(runner.now(), str(error))
