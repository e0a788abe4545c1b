"""Swap a validated strategy file into a running session, at a bar boundary.

`apply_reload` is what a hot reload, a restart's replay of the journaled reloads and a
restart over a file edited while the run was down all do: the changed layers swapped
into the session, positions kept, and the file in force (`RunFiles.config`) replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from tradeloom.live.accounts.market import ExchangeAccount
from tradeloom.live.lifecycle.promoted_signal import kept_rule
from tradeloom.live.tick.provides import provides

if TYPE_CHECKING:
    from tradeloom.live.lifecycle.reload import Reload
    from tradeloom.live.tick.services import RunFiles
    from tradeloom.live.tick.session import LiveSession

__all__ = ["apply_reload", "cron_of"]


def apply_reload(reload: Reload, session: LiveSession, files: RunFiles) -> None:
    """Swap ``reload``'s layers into ``session`` (at a bar boundary, positions kept) and
    make its file the one in force in ``files``; the reload's bar is the session's last
    (its ``config_reloaded`` row's: `LiveSession.reloaded_at`)."""
    config = reload.config
    # a promotion's rule and sizing stay unless the reload edits them
    swapped = kept_rule(session, reload.apply(session.p), reload.changed, reload.changes)
    session.p = swapped
    session.reloaded_at = len(session.history) - 1
    session.engine.reconfigure(
        swapped, monitoring="monitoring" in reload.changed or "health" in reload.changed
    )
    venue = session.engine.venue
    if provides(venue, ExchangeAccount):
        venue.rest_stops_at(swapped.config)  # the next position's (a resting one stays)
    if "regime" in reload.changed:
        session.reset_regimes(config.regime)
    if "live" in reload.changed and config.live.retrain_cron != files.config.live.retrain_cron:
        session.set_cron(cron_of(config.live.retrain_cron))
    if session.allocation_deadline is not None:
        session.allocation_deadline.seconds = config.live.allocation_deadline_seconds
    files.config = config


def cron_of(expression: str | None) -> Callable[[pd.Timestamp], pd.Timestamp | None] | None:
    """Return the next retraining time after a moment, by the cron ``expression`` (None:
    no retraining on a cron)."""
    if expression is None:
        return None
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(expression, timezone="UTC")

    def following(now: pd.Timestamp) -> pd.Timestamp | None:
        later = now + pd.Timedelta(seconds=1)  # not the fire time that is now
        fire = trigger.get_next_fire_time(None, later.to_pydatetime())
        return None if fire is None else pd.Timestamp(fire)

    return following
