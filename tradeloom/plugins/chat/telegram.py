"""The ``telegram`` chat transport: a bot's updates long-polled from Telegram's Bot API.

``tradeloom chat telegram RUN_DIR --allow ID``. `TelegramTransport` calls ``getUpdates``
(an update's ``update_id`` is the message's id) and ``sendMessage`` at a configurable
base URL (`tradeloom.testing.telegram_server.BotServer` stands in for it offline). The
bot's token is read from the environment variable ``token_env`` and registered as a
secret, so no log line, error or reply carries it (the request URLs hold it).
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Annotated, Any

from pydantic import Field

from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.protocols_chat import ChatMessage, ChatParams
from tradeloom.runtime.redaction import redact_text, register_secret

__all__ = ["DEFAULT_API", "TelegramParams", "TelegramTransport", "build"]

DEFAULT_API = "https://api.telegram.org"
"""The Bot API's base URL."""


class TelegramParams(ChatParams):
    """Keys of the ``telegram`` chat kind."""

    allow: list[Annotated[str, Field(pattern=r"^-?[0-9]+$")]] = Field(
        min_length=1,
        description="Telegram user or chat ids (integers) whose commands are obeyed.",
    )
    token_env: str = Field(
        default="TELEGRAM_BOT_TOKEN",
        min_length=1,
        description="The environment variable holding the bot's token (never printed).",
    )
    api_url: str = Field(
        default=DEFAULT_API,
        pattern=r"^https?://",
        description="The Bot API's base URL.",
    )


class TelegramTransport:
    """The two Bot API methods the control needs, over HTTPS (or HTTP for a stand-in)."""

    def __init__(self, token: str, base_url: str = DEFAULT_API) -> None:
        if not token:
            raise ValueError("telegram: the bot's token is empty")
        register_secret(token)
        self._base = f"{base_url.rstrip('/')}/bot{token}"

    def receive(self, offset: int, timeout: int) -> list[ChatMessage]:
        """Return the updates from ``offset`` on, waiting up to ``timeout`` s for one."""
        answer = self._call("getUpdates", {"offset": offset, "timeout": timeout}, timeout + 10)
        return [_message(update) for update in answer]

    def send(self, chat: str, text: str) -> None:
        """Send ``text`` to the chat ``chat``."""
        self._call("sendMessage", {"chat_id": int(chat), "text": text[:4000]}, 30)

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


def _message(update: dict[str, Any]) -> ChatMessage:
    message = update.get("message") or {}
    user = (message.get("from") or {}).get("id")
    chat = (message.get("chat") or {}).get("id")
    return ChatMessage(
        id=int(update["update_id"]),
        user=None if user is None else str(user),
        chat=None if chat is None else str(chat),
        text=str(message.get("text") or ""),
    )


def build(params: TelegramParams, ctx: BuildContext) -> TelegramTransport:
    """Return the transport of the bot whose token is in ``params.token_env``."""
    token = os.environ.get(params.token_env, "")
    if not token:
        raise ParamError("token_env", f"the environment variable {params.token_env} is not set")
    return TelegramTransport(token, params.api_url)
