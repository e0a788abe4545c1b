"""Two-way control of a paper or live run from a Telegram chat, off the run's process.

`ChatControl` long-polls the Bot API's ``getUpdates`` (`BotApi`, at a configurable base
URL) and answers the operator's commands:

- ``/status``: the run's status, as ``tradeloom status`` prints it;
- ``/kill``, ``/flatten``, ``/resume`` (an optional reason after the command): sent
  through the same control mailbox as ``tradeloom kill`` (`tradeloom.engine.control.request`),
  with ``by: telegram:<user id>`` so the run journals who asked (``control_request``).

Only users or chats on the allow-list are obeyed; anyone else is answered "not allowed"
and logged (``chat_refused``, with their ids). Each update is acted on once: the next
offset is written to ``RUN_DIR/chat/telegram-offset.json`` *before* the command is
carried out, so an update delivered again (by a Bot API that did not see the offset, or
after a restart) is skipped (at most once: a crash between the two loses the command,
and the operator, who got no reply, sends it again).

It runs in its own process (``tradeloom chat telegram RUN_DIR``), never on a bar's path.
The bot's token is registered as a secret (`register_secret`), so no log line, error or
reply carries it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tradeloom.engine.control import Action, request
from tradeloom.errors import UserError
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.redaction import redact_text, register_secret

__all__ = ["DEFAULT_API", "OFFSET_FILE", "BotApi", "ChatControl", "Handled"]

DEFAULT_API = "https://api.telegram.org"
"""The Bot API's base URL."""
OFFSET_FILE = "telegram-offset.json"
"""The next update to ask for, below ``RUN_DIR/chat/`` (not ``control/``, whose
every ``.json`` file the run reads as a request)."""

_ACTIONS: dict[str, Action] = {"/kill": "kill", "/flatten": "flatten", "/resume": "resume"}
_log = logger("tradeloom.live.chat_control")


class BotApi:
    """The two Bot API methods the control needs, over HTTPS (or HTTP for a stand-in)."""

    def __init__(self, token: str, base_url: str = DEFAULT_API) -> None:
        if not token:
            raise UserError("telegram: the bot's token is empty")
        register_secret(token)
        self._base = f"{base_url.rstrip('/')}/bot{token}"

    def get_updates(self, offset: int, timeout: int) -> list[dict[str, Any]]:
        """Return the updates from ``offset`` on, waiting up to ``timeout`` s for one."""
        answer = self._call("getUpdates", {"offset": offset, "timeout": timeout}, timeout + 10)
        return cast(list[dict[str, Any]], answer)

    def send_message(self, chat_id: int, text: str) -> None:
        """Send ``text`` to ``chat_id``."""
        self._call("sendMessage", {"chat_id": chat_id, "text": text[:4000]}, 30)

    def _call(self, method: str, body: dict[str, Any], timeout: float) -> Any:
        data = json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self._base}/{method}", data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                answer = json.loads(response.read())
        except (OSError, ValueError) as exc:  # the URL holds the token: never shown
            raise ConnectionError(redact_text(f"telegram {method}: {exc}")) from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            raise ConnectionError(redact_text(f"telegram {method}: {answer!r}"[:300]))
        return answer.get("result")


@dataclass(frozen=True)
class Handled:
    """One update as the control saw it: who, what, and what it answered."""

    update_id: int
    user: int | None
    chat: int | None
    command: str
    allowed: bool
    reply: str


class ChatControl:
    """Obey the allow-list's commands to the run in ``run_dir``."""

    def __init__(self, run_dir: Path, api: BotApi, allowed: frozenset[int]) -> None:
        if not allowed:
            raise UserError("telegram: the allow-list is empty: nobody could send a command")
        self.run_dir = run_dir
        self.api = api
        self.allowed = allowed
        self._offset_path = run_dir / "chat" / OFFSET_FILE

    @property
    def offset(self) -> int:
        """The next update to ask for (0: the first the Bot API holds)."""
        try:
            return int(json.loads(self._offset_path.read_text())["offset"])
        except FileNotFoundError:
            return 0

    def poll(self, timeout: int = 30) -> list[Handled]:
        """Ask for the updates after the last one handled; act on each once."""
        handled = []
        for update in self.api.get_updates(self.offset, timeout):
            update_id = int(update["update_id"])
            if update_id < self.offset:  # delivered again: handled already
                continue
            self._save_offset(update_id + 1)
            seen = self._handle(update_id, update.get("message") or {})
            if seen is not None:
                handled.append(seen)
        return handled

    def serve(self, timeout: int = 30) -> None:
        """Poll until interrupted; a Bot API that fails is logged and asked again."""
        while True:
            try:
                self.poll(timeout)
            except ConnectionError as exc:
                _log.warning("chat_poll_failed", error=str(exc))

    def _handle(self, update_id: int, message: dict[str, Any]) -> Handled | None:
        text = str(message.get("text") or "").strip()
        if not text.startswith("/"):
            return None
        user = (message.get("from") or {}).get("id")
        chat = (message.get("chat") or {}).get("id")
        word, _, rest = text.partition(" ")
        command = word.split("@", 1)[0].lower()
        allowed = user in self.allowed or chat in self.allowed
        if not allowed:
            _log.warning("chat_refused", user=user, chat=chat, command=command)
            reply = "not allowed: you are not on this run's allow-list"
        else:
            reply = self._answer(command, rest.strip(), user)
            _log.info("chat_command", user=user, chat=chat, command=command)
        if chat is not None:
            self.api.send_message(int(chat), reply)
        return Handled(update_id, user, chat, command, allowed, reply)

    def _answer(self, command: str, reason: str, user: int | None) -> str:
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
        why = reason or f"{action} from telegram"
        try:
            delivery = request(self.run_dir, action, why, by=f"telegram:{user}")
        except (UserError, ValueError, OSError) as exc:
            return f"{action} refused: {exc}"
        return delivery.describe()

    def _save_offset(self, offset: int) -> None:
        self._offset_path.parent.mkdir(exist_ok=True)
        temporary = self._offset_path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"offset": offset}))
        os.replace(temporary, self._offset_path)
