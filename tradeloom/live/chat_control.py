"""Two-way control of a paper or live run from a chat, off the run's process.

`ChatControl` asks a chat transport (a ``chat`` component: Telegram's Bot API is built
in, `tradeloom.plugin.ChatTransport`) for the messages after the last one handled and
answers the operator's commands, the same whatever the transport:

- ``/status``: the run's status, as ``tradeloom status`` prints it;
- ``/kill``, ``/flatten``, ``/resume`` (an optional reason after the command): sent
  through the same control mailbox as ``tradeloom kill`` (`tradeloom.engine.control.request`),
  with ``by: <kind>:<user id>`` so the run journals who asked (``control_request``).

Only users or chats on the allow-list are obeyed; anyone else is answered "not allowed"
and logged (``chat_refused``, with their ids). Each message is acted on once: the next
offset is written to ``RUN_DIR/chat/<kind>-offset.json`` *before* the command is
carried out, so a message delivered again (by a service that did not see the offset, or
after a restart) is skipped (at most once: a crash between the two loses the command,
and the operator, who got no reply, sends it again).

It runs in its own process (``tradeloom chat KIND RUN_DIR``), never on a bar's path;
`open_chat` builds it from a kind's params as the command does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.engine.control import Action, request
from tradeloom.errors import UserError
from tradeloom.plugins.protocols_chat import ChatMessage, ChatParams, ChatTransport
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.plugins.manager import Plugins

__all__ = ["ChatControl", "Handled", "offset_file", "open_chat"]

_ACTIONS: dict[str, Action] = {"/kill": "kill", "/flatten": "flatten", "/resume": "resume"}
_log = logger("tradeloom.live.chat_control")


@dataclass(frozen=True)
class Handled:
    """One update as the control saw it: who, what, and what it answered."""

    update_id: int
    user: str | None
    chat: str | None
    command: str
    allowed: bool
    reply: str


def offset_file(kind: str) -> str:
    """Return the file below ``RUN_DIR/chat/`` keeping ``kind``'s next message to ask for
    (not ``control/``, whose every ``.json`` file the run reads as a request)."""
    return f"{kind}-offset.json"


class ChatControl:
    """Obey the allow-list's commands, received through ``transport``, to the run in
    ``run_dir``; ``kind`` names the transport in ``by:``, logs and the offset's file."""

    def __init__(
        self, run_dir: Path, kind: str, transport: ChatTransport, allowed: frozenset[str]
    ) -> None:
        if not allowed:
            raise UserError(f"{kind}: the allow-list is empty: nobody could send a command")
        self.run_dir = run_dir
        self.kind = kind
        self.transport = transport
        self.allowed = allowed
        self._offset_path = run_dir / "chat" / offset_file(kind)

    @property
    def offset(self) -> int:
        """The next message to ask for (0: the first the service holds)."""
        try:
            return int(json.loads(self._offset_path.read_text())["offset"])
        except FileNotFoundError:
            return 0

    def poll(self, timeout: int = 30) -> list[Handled]:
        """Ask for the messages after the last one handled; act on each once."""
        handled = []
        for message in self.transport.receive(self.offset, timeout):
            if message.id < self.offset:  # delivered again: handled already
                continue
            self._save_offset(message.id + 1)
            seen = self._handle(message)
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
        if not allowed:
            _log.warning("chat_refused", kind=self.kind, user=user, chat=chat, command=command)
            reply = "not allowed: you are not on this run's allow-list"
        else:
            reply = self._answer(command, rest.strip(), user)
            _log.info("chat_command", kind=self.kind, user=user, chat=chat, command=command)
        if chat is not None:
            self.transport.send(chat, reply)
        return Handled(message.id, user, chat, command, allowed, reply)

    def _answer(self, command: str, reason: str, user: str | None) -> str:
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
            delivery = request(self.run_dir, action, why, by=f"{self.kind}:{user}")
        except (UserError, ValueError, OSError) as exc:
            return f"{action} refused: {exc}"
        return delivery.describe()

    def _save_offset(self, offset: int) -> None:
        self._offset_path.parent.mkdir(exist_ok=True)
        temporary = self._offset_path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"offset": offset}))
        os.replace(temporary, self._offset_path)


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
