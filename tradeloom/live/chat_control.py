"""Two-way control of a paper or live run from a chat, off the run's process.

`ChatControl` asks a chat transport (a ``chat`` component: Telegram's Bot API is built
in, `tradeloom.plugin.ChatTransport`) for the messages after the last one handled and
answers the operator's commands, the same whatever the transport:

- ``/status``: the run's status, as ``tradeloom status`` prints it;
- ``/kill``, ``/flatten``, ``/resume`` (an optional reason after the command): sent
  through the same control mailbox as ``tradeloom kill`` (`tradeloom.engine.control.request`),
  with ``by: <kind>:<user id>`` so the run journals who asked (``control_request``).

Each command acts exactly once. It carries an idempotency key,
``<kind>:<chat>:<message id>`` (`key_of`), through the mailbox; the request is written
first and the next offset saved (``RUN_DIR/chat/<kind>-offset.json``) only once the
operator was answered. A crash in between delivers the message again after the restart,
and the request is written again under the same key: the run, which journals the key
with the request (``control_request``'s ``key``) and folds the keys journaled at a
restart, marks it done without carrying it out or journaling it twice. The answer comes
once the run has journaled the request (its file moved to ``control/done/``), or says
that no process runs the directory (the request waits for the next start), or that the
run has not taken it after `ChatControl.reply_timeout` seconds; an answer the service
refuses (a chat that blocked the bot) is logged (``chat_reply_failed``), and the message
counts as handled.

Only users or chats on the allow-list are obeyed. Anyone else is answered "not allowed",
logged (``chat_refused``) and, for audit, journaled by the run from a mailbox entry
(``control_refused``: who, the command's text escaped and cut, why;
`tradeloom.engine.control.request_refused`), at most `REFUSALS_PER_MINUTE` a minute a
sender and `ALL_REFUSALS_PER_MINUTE` in all: the others get no answer and are counted
in the sender's next row (``dropped``), so a stranger cannot flood the journal, the
mailbox or the chat.

It runs in its own process (``tradeloom chat KIND RUN_DIR``), never on a bar's path;
`open_chat` builds it from a kind's params as the command does.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.engine.control import Delivery, request, request_refused
from tradeloom.engine.control_files import CONTROL_DIR, Action
from tradeloom.errors import UserError
from tradeloom.plugins.protocols_chat import ChatMessage, ChatParams, ChatTransport
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.plugins.manager import Plugins

__all__ = [
    "ALL_REFUSALS_PER_MINUTE",
    "REFUSALS_PER_MINUTE",
    "ChatControl",
    "Handled",
    "key_of",
    "offset_file",
    "open_chat",
]

REFUSALS_PER_MINUTE = 3
"""The most refusals of one sender journaled in a minute (the others are counted)."""
ALL_REFUSALS_PER_MINUTE = 20
"""The most refusals of all senders journaled in a minute (many accounts, one flood)."""

_ACTIONS: dict[str, Action] = {"/kill": "kill", "/flatten": "flatten", "/resume": "resume"}
_REFUSED = "not on the allow-list"
_WAIT_STEP = 0.05
_log = logger("tradeloom.live.chat_control")


@dataclass(frozen=True)
class Handled:
    """One update as the control saw it: who, what, and what it answered ('' when it
    answered nothing: a refusal over the flood bound)."""

    update_id: int
    user: str | None
    chat: str | None
    command: str
    allowed: bool
    reply: str


def key_of(kind: str, message: ChatMessage) -> str:
    """Return the idempotency key of ``message`` received through ``kind``:
    ``<kind>:<chat>:<id>`` (the sender's id without a chat; ``-`` without either)."""
    return f"{kind}:{message.chat or message.user or '-'}:{message.id}"


def offset_file(kind: str) -> str:
    """Return the file below ``RUN_DIR/chat/`` keeping ``kind``'s next message to ask for
    (not ``control/``, whose every ``.json`` file the run reads as a request)."""
    return f"{kind}-offset.json"


class ChatControl:
    """Obey the allow-list's commands, received through ``transport``, to the run in
    ``run_dir``; ``kind`` names the transport in ``by:``, keys, logs and the offset's file.

    Args:
        reply_timeout: How long to wait for the running process to journal a request
            before answering that it has not yet (seconds).
        clock: Seconds, for the refusals' bound (`time.monotonic`).
    """

    def __init__(
        self,
        run_dir: Path,
        kind: str,
        transport: ChatTransport,
        allowed: frozenset[str],
        *,
        reply_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not allowed:
            raise UserError(f"{kind}: the allow-list is empty: nobody could send a command")
        self.run_dir = run_dir
        self.kind = kind
        self.transport = transport
        self.allowed = allowed
        self.reply_timeout = reply_timeout
        self._offset_path = run_dir / "chat" / offset_file(kind)
        self._bound = _FloodBound(clock)

    @property
    def offset(self) -> int:
        """The next message to ask for (0: the first the service holds)."""
        try:
            return int(json.loads(self._offset_path.read_text())["offset"])
        except FileNotFoundError:
            return 0

    def poll(self, timeout: int = 30) -> list[Handled]:
        """Ask for the messages after the last one handled; act on each exactly once:
        its request written (under its key), its answer sent, then the offset saved."""
        handled = []
        for message in self.transport.receive(self.offset, timeout):
            if message.id < self.offset:  # delivered again: handled already
                continue
            seen = self._handle(message)
            self._save_offset(message.id + 1)
            if seen is not None:
                handled.append(seen)
        return handled

    def serve(self, timeout: int = 30) -> None:
        """Poll until interrupted; a transport that fails is logged and asked again."""
        while True:
            try:
                self.poll(timeout)
            except ConnectionError as exc:
                _log.warning("chat_poll_failed", kind=self.kind, error=str(exc))

    def _handle(self, message: ChatMessage) -> Handled | None:
        text = message.text.strip()
        if not text.startswith("/"):
            return None
        user, chat = message.user, message.chat
        word, _, rest = text.partition(" ")
        command = word.split("@", 1)[0].lower()
        allowed = user in self.allowed or chat in self.allowed
        key = key_of(self.kind, message)
        reply: str | None
        if not allowed:
            reply = self._refuse(text, user, chat, key)
        else:
            _log.info("chat_command", kind=self.kind, user=user, chat=chat, command=command)
            reply = self._answer(command, rest.strip(), user, key)
        if chat is not None and reply is not None:
            try:
                self.transport.send(chat, reply)
            except ConnectionError as exc:  # a chat that blocked the bot: the command stands
                _log.warning("chat_reply_failed", kind=self.kind, chat=chat, error=str(exc))
        return Handled(message.id, user, chat, command, allowed, reply or "")

    def _refuse(self, text: str, user: str | None, chat: str | None, key: str) -> str | None:
        """Ask the run to journal the refusal, within the bound; return the answer (None:
        over the bound, no answer)."""
        sender = user or chat or "-"
        dropped = self._bound.admit(sender)
        _log.warning(
            "chat_refused",
            kind=self.kind,
            user=user,
            chat=chat,
            command=text.split(" ", 1)[0][:64],
            journaled=dropped is not None,
        )
        if dropped is None:
            return None
        try:
            request_refused(
                self.run_dir, text, _REFUSED, by=f"{self.kind}:{sender}", key=key, dropped=dropped
            )
        except (UserError, ValueError, OSError) as exc:
            _log.warning("chat_refusal_not_written", kind=self.kind, user=user, error=str(exc))
        return "not allowed: you are not on this run's allow-list"

    def _answer(self, command: str, reason: str, user: str | None, key: str) -> str:
        if command == "/status":
            from tradeloom.engine.status_rows import read_status
            from tradeloom.engine.status_text import format_status

            try:
                return format_status(read_status(self.run_dir))
            except (UserError, OSError) as exc:
                return f"status: {exc}"
        action = _ACTIONS.get(command)
        if action is None:
            return "commands: /status, /kill [reason], /flatten [reason], /resume [reason]"
        why = reason or f"{action} from {self.kind}"
        try:
            delivery = request(self.run_dir, action, why, by=f"{self.kind}:{user}", key=key)
        except (UserError, ValueError, OSError) as exc:
            return f"{action} refused: {exc}"
        return self._outcome(delivery)

    def _outcome(self, delivery: Delivery) -> str:
        """Wait for the running process to journal ``delivery``'s request; say what became
        of it."""
        path = delivery.path
        if path is None or delivery.pid is None:  # by SIGUSR1, or waiting for a start
            return delivery.describe()
        control = self.run_dir / CONTROL_DIR
        deadline = time.monotonic() + self.reply_timeout
        while path.exists() and time.monotonic() < deadline:
            time.sleep(_WAIT_STEP)
        note = "" if delivery.note is None else f" ({delivery.note})"
        if (control / "done" / path.name).exists():
            done = {
                "kill": "its orders cancelled, trading halted",
                "flatten": "its orders cancelled, trading halted, its positions closing at the "
                "next bar",
                "resume": "trading resumed, unless a rule of the run holds it",
            }.get(delivery.action, "done")
            already = "" if delivery.already is None else f" (already {delivery.already})"
            return (
                f"{delivery.action} journaled by the running process (pid {delivery.pid}): "
                f"{done}{already}{note}"
            )
        if (control / "rejected" / path.name).exists():
            return f"{delivery.action} rejected by the running process: see its log{note}"
        return (
            f"{delivery.action} written ({path.name}), but the running process (pid "
            f"{delivery.pid}) has not journaled it after {self.reply_timeout:g} s: it does at "
            f"its next check; ask /status{note}"
        )

    def _save_offset(self, offset: int) -> None:
        self._offset_path.parent.mkdir(exist_ok=True)
        temporary = self._offset_path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"offset": offset}))
        os.replace(temporary, self._offset_path)


class _FloodBound:
    """At most `REFUSALS_PER_MINUTE` refusals a sender and `ALL_REFUSALS_PER_MINUTE` in
    all, in any 60 seconds; the others counted per sender."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._senders: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._dropped: dict[str, int] = {}

    def admit(self, sender: str) -> int | None:
        """Return how many of ``sender``'s refusals were dropped since its last one
        admitted (None: this one is dropped too, and counted)."""
        now = self._clock()
        if len(self._senders) > 1000:  # many strangers: forget those a minute quiet
            for name in [n for n, w in self._senders.items() if not w or now - w[-1] >= 60]:
                del self._senders[name]
        window = self._senders.setdefault(sender, deque())
        for times in (window, self._all):
            while times and now - times[0] >= 60:
                times.popleft()
        if len(window) >= REFUSALS_PER_MINUTE or len(self._all) >= ALL_REFUSALS_PER_MINUTE:
            self._dropped[sender] = self._dropped.get(sender, 0) + 1
            return None
        window.append(now)
        self._all.append(now)
        return self._dropped.pop(sender, 0)


def open_chat(run_dir: Path, kind: str, values: Mapping[str, Any], plugins: Plugins) -> ChatControl:
    """Return the control of ``run_dir`` through the ``chat`` component ``kind`` (``PLUGIN:KIND``
    names one of several), built from its params ``values`` (``allow`` among them).

    Raises:
        UserError: An unknown kind (naming the installed ones); a bad key or value, or the
            factory's refusal: one line each, ``KEY: message``.
    """
    from pydantic import ValidationError

    from tradeloom.plugins.component import BuildContext, ParamError, param_errors

    registry = plugins.registry
    found = registry.matches("chat", kind)
    if len(found) != 1:
        raise UserError(
            registry.ambiguous_kind_message("chat", kind)
            if found
            else registry.unknown_kind_message("chat", kind)
        )
    component = found[0].component
    try:
        params = component.params.model_validate(dict(values))
    except ValidationError as exc:
        raise UserError(
            "\n".join(
                f"{'.'.join(map(str, e['loc'])) or kind}: {e['msg']}"
                + ("" if e["type"] == "missing" else f", was {e['input']!r}")
                for e in exc.errors()
            )
        ) from None
    if not isinstance(params, ChatParams):
        raise UserError(f"chat kind '{kind}': its params model does not subclass ChatParams")
    ctx = BuildContext(strategy_name=run_dir.name, strategy_dir=run_dir, seed=0)
    try:
        transport = component.factory(params, ctx)
    except ParamError as exc:
        raise UserError(
            "\n".join(f"{e.key}: {e.message}" if e.key else e.message for e in param_errors(exc))
        ) from None
    if not isinstance(transport, ChatTransport):
        raise UserError(f"chat kind '{kind}': its factory returned no ChatTransport")
    return ChatControl(run_dir, component.kind, transport, frozenset(params.allow))
