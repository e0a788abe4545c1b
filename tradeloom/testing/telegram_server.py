"""A stand-in for Telegram's Bot API on 127.0.0.1: ``getUpdates`` and ``sendMessage``.

Point the ``telegram`` chat kind's transport
(`tradeloom.plugins.chat.telegram.TelegramTransport`, or ``tradeloom chat telegram
--api-url``) at `BotServer.base_url` to try the chat control offline::

    with BotServer("123:abc") as bot:
        bot.say(user=42, text="/status")          # an update from user 42 in chat 42
        transport = TelegramTransport("123:abc", bot.base_url)
        ChatControl(run_dir, "telegram", transport, frozenset({"42"})).poll(0)
        assert bot.sent[0]["chat_id"] == 42

``getUpdates`` answers the updates whose id is at least its ``offset`` (as the Bot API
does); `redeliver` hands the next call every update again, whatever its offset (a
duplicate delivery). A request with another token is answered 401.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["BotServer"]


class BotServer:
    """The Bot API's two methods, serving one bot's token, until the block ends."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        """Every ``sendMessage`` body, in order."""
        self.paths: list[str] = []
        """Every request's path (each holds the token, as the real API's do)."""
        self._again = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The base URL to give `TelegramTransport` (the real one's is https://api.telegram.org)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def say(self, *, user: int, text: str, chat: int | None = None) -> int:
        """Queue a message from ``user`` in ``chat`` (default: their private chat); return
        its update id."""
        with self._lock:
            update_id = 1000 + len(self.updates)
            self.updates.append(
                {
                    "update_id": update_id,
                    "message": {
                        "message_id": update_id,
                        "from": {"id": user, "is_bot": False, "first_name": f"u{user}"},
                        "chat": {"id": user if chat is None else chat, "type": "private"},
                        "text": text,
                    },
                }
            )
        return update_id

    def redeliver(self) -> None:
        """Make the next ``getUpdates`` answer every update again, ignoring its offset."""
        self._again = True

    def __enter__(self) -> BotServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.paths.append(path)
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = path[len(prefix) :]
        with self._lock:
            if method == "getUpdates":
                offset = 0 if self._again else int(body.get("offset", 0))
                self._again = False
                return 200, {
                    "ok": True,
                    "result": [u for u in self.updates if u["update_id"] >= offset],
                }
            if method == "sendMessage":
                self.sent.append(body)
                return 200, {"ok": True, "result": {"message_id": len(self.sent)}}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, answer = server._answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
