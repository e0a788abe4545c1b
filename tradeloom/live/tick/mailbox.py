"""The control mailbox answered at a tick: each request once, journaled before it acts.

`answer_mailbox` is the runner's `_control`: requests come from `tradeloom kill`, the
console, a chat (`tradeloom.live.chat_control`) or a stage's own commands, through
`tradeloom.engine.control.ControlInbox`; a request already answered (its file's name, or
its sender's idempotency key, folded from the journal at a restart) is done without a
second answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import structlog

from tradeloom.engine.control_files import ControlRequest as MailboxRequest
from tradeloom.engine.control_inbox import ControlInbox
from tradeloom.journal import ControlRefused, ControlRequest

if TYPE_CHECKING:
    from tradeloom.engine.events import Recorder
    from tradeloom.live.tick.services import Stage
    from tradeloom.live.tick.session import LiveSession

__all__ = ["answer_mailbox"]

_log = structlog.get_logger("tradeloom.live")


def answer_mailbox(
    session: LiveSession,
    inbox: ControlInbox,
    recorder_of: Callable[[], Recorder],
    answering: Mapping[str, Stage],
    flush: Callable[[], None],
    answered_requests: set[str],
    answered_keys: set[str],
) -> None:
    """Answer each pending request of the control mailbox ``inbox``, once: a request answered
    before (by its file's name, or by its sender's key) is done without a second answer; a
    refusal is journaled and nothing carried out; a stage's action is its stage's; the kill
    switch's, flatten's and resume's are the session's, journaled first."""
    if inbox.wake.is_set():  # else nothing to clear (`Event.clear` takes its lock)
        inbox.wake.clear()
    requests = inbox.pending()
    if not requests:  # most ticks
        return
    last = len(session.history) - 1
    for request in requests:
        name = inbox.name_of(request)
        if name and name in answered_requests:
            inbox.done(request)  # answered before the process died
            continue
        if request.key and request.key in answered_keys:
            # asked again by a sender that crashed before it saved that it had asked
            _log.info("control_request_repeated", key=request.key, by=request.by)
            inbox.done(request)
            continue
        recorder = recorder_of()
        if request.action == "refused":  # journaled for audit; nothing is carried out
            recorder.record(
                ControlRefused(
                    **recorder.at(last),
                    by=request.by,
                    command=request.command,
                    reason=request.reason,
                    request=name,
                    key=request.key,
                    dropped=request.dropped,
                )
            )
            _answered(inbox, flush, answered_requests, answered_keys, request, name)
            continue
        stage = answering.get(request.action)
        if stage is not None:  # a stage's request: it answers, the runner commits
            stage.answer(request, name)
            # answered once committed: a flush that failed (the journal's database
            # down) leaves it unanswered, and `rebuild` takes the journal's answers,
            # so it is asked again
            _answered(inbox, flush, answered_requests, answered_keys, request, name)
            continue
        repeated = request.action == "kill" and session.killed
        if repeated and request.by == "file":
            # the KILL file asks again at every tick: cancel anything new, journaled
            # once per cancel (a restart's replay cancels at the same bar)
            session.cancel_for_kill()
            inbox.done(request)
            continue
        recorder.record(
            ControlRequest(
                **recorder.at(last),
                action=request.action,
                reason=request.reason,
                by=request.by,
                request=name,
                key=request.key,
            )
        )
        if repeated:  # journaled, as every operator's request; the halt stands
            session.cancel_for_kill()
            _log.warning("kill_repeated", reason=request.reason, by=request.by)
        elif request.action == "kill":
            session.kill(f"{request.reason} (by {request.by})")
        elif request.action == "flatten":
            session.flatten(f"flatten: {request.reason} (by {request.by})")
        else:
            session.resume(f"{request.reason} (by {request.by})")
        _answered(inbox, flush, answered_requests, answered_keys, request, name)


def _answered(
    inbox: ControlInbox,
    flush: Callable[[], None],
    answered_requests: set[str],
    answered_keys: set[str],
    request: MailboxRequest,
    name: str,
) -> None:
    """Commit ``request``'s answer, remember it, then mark its file done."""
    flush()
    if name:
        answered_requests.add(name)
    if request.key:
        answered_keys.add(request.key)
    inbox.done(request)
