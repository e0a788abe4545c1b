"""What a paper or live run was asked by someone it does not obey: a chat's command from
a sender not on its allow-list, kept for audit.

One frozen dataclass per kind (`tradeloom.journal.events`); the last family, so older
journals' tables keep their order."""

from __future__ import annotations

from dataclasses import dataclass

from tradeloom.journal.events.base import Event, kind

__all__ = ["ControlRefused"]


@kind("control_refused", read_by=("restart", "status_error", "live_timeline"))
@dataclass(frozen=True, kw_only=True)
class ControlRefused(Event):
    """A command refused to its sender; nothing was carried out.

    Written by the run from its mailbox (`tradeloom.engine.control.request_refused`), as
    its other requests, at most a few a minute per sender: the chat counts the others
    (``dropped``), so a stranger cannot flood the journal.

    Attributes:
        by: Who sent it (``telegram:<user id>``).
        command: What they wrote, escaped to one line and cut to 500 characters.
        reason: Why it was refused (``not on the allow-list``).
        request: The mailbox's request file it answers (its name in ``control/``).
        key: Its idempotency key (``<kind>:<chat>:<update id>``): journaled once.
        dropped: The sender's refusals not journaled since its previous row (the
            flood bound's), counted here.
    """

    by: str
    command: str
    reason: str
    request: str
    key: str
    dropped: int
