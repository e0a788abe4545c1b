"""A stand-in for an LLM server: the chat completions API on 127.0.0.1, answers scripted.

Point a strategy's ``client: {kind: openai_compatible, base_url: ...}`` at
`ChatServer.base_url` to try a prompt, a cache or the call bounds offline, with no
model and no key. Each request is recorded with the server's own arrival time, so a
test measures rate limits, backoff and concurrency where the server sees them::

    with ChatServer() as server:                  # answers by `word_answer`
        server.script.append(Reply(status=429, headers={"Retry-After": "1"}))
        ... run the strategy with base_url=server.base_url ...
        assert len(server.received) == 2

``python -m tradeloom.testing.llm_server --port 8089`` serves `word_answer` until
interrupted.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ChatServer", "Received", "Reply", "word_answer"]


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request.

    Attributes:
        content: The message's text (the model's answer), for a 200.
        status: The HTTP status.
        headers: Extra response headers (``Retry-After``).
        delay: Seconds to wait before answering (a slow model, a timeout).
        body: The raw response body, instead of a chat completion around ``content``.
    """

    content: str = "{}"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: str | None = None


@dataclass(frozen=True)
class Received:
    """One request as the server saw it.

    Attributes:
        arrived: ``time.monotonic()`` when its body was read.
        body: The JSON body (None if it was not JSON).
        authorization: The ``Authorization`` header ('' if none).
        status: The status answered.
    """

    arrived: float
    body: dict[str, Any] | None
    authorization: str
    status: int


_WORD = re.compile(r"[a-z]+")
_POSITIVE = frozenset(
    _WORD.findall(
        "beat beats gain gains growth surge surges rally rallies record "
        "strong upgrade upgraded approval approved profit profits rise rises rising bullish"
    )
)
_NEGATIVE = frozenset(
    _WORD.findall(
        "miss misses loss losses drop drops fall falls plunge plunges "
        "weak downgrade downgraded ban banned hack hacked lawsuit fraud decline bearish"
    )
)


def word_answer(body: Mapping[str, Any]) -> Reply:
    """Answer ``{"sentiment", "relevance"}`` from the last message's words: a fixed small
    list of positive and negative words, the same answer for the same text every time."""
    messages = body.get("messages") or [{}]
    text = str(messages[-1].get("content", "")).lower()
    words = _WORD.findall(text)
    up = sum(w in _POSITIVE for w in words)
    down = sum(w in _NEGATIVE for w in words)
    sentiment = (up - down) / (up + down) if up + down else 0.0
    relevance = min(1.0, (up + down) / 3.0)
    return Reply(json.dumps({"sentiment": round(sentiment, 4), "relevance": round(relevance, 4)}))


class ChatServer:
    """The chat completions API on 127.0.0.1, in a thread of this process.

    Args:
        answer: Answers a request that ``script`` does not (`word_answer` by default).
        port: The port (0: any free one).

    Attributes:
        script: Replies given to the next requests, first first; ``answer`` after.
        received: Every request, in the order the server read them.
        most_at_once: The most requests the server held at one moment.
    """

    def __init__(
        self, answer: Callable[[Mapping[str, Any]], Reply] = word_answer, port: int = 0
    ) -> None:
        self.answer = answer
        self.script: list[Reply] = []
        self.received: list[Received] = []
        self.most_at_once = 0
        self._held = 0
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The API's root, as ``base_url`` takes it (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def start(self) -> ChatServer:
        """Serve in a daemon thread; return self."""
        # a short poll: `stop` returns within 50 ms rather than serve_forever's 0.5 s
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _reply_for(self, body: dict[str, Any] | None) -> Reply:
        with self._lock:
            if self.script:
                return self.script.pop(0)
        if body is None:
            return Reply(status=400, body='{"error": {"message": "body is not JSON"}}')
        return self.answer(body)

    def _enter(self) -> None:
        with self._lock:
            self._held += 1
            self.most_at_once = max(self.most_at_once, self._held)

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def _leave(self) -> None:
        with self._lock:
            self._held -= 1


def _completion(body: Mapping[str, Any] | None, content: str) -> str:
    model = (body or {}).get("model", "stand-in")
    return json.dumps(
        {
            "id": "chatcmpl-stand-in",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    )


def _handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            server._enter()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            arrived = time.monotonic()
            try:
                body = json.loads(raw) if self.path.endswith("/chat/completions") else None
            except ValueError:
                body = None
            reply = (
                server._reply_for(body)
                if self.path.endswith("/chat/completions")
                else Reply(status=404, body='{"error": {"message": "not found"}}')
            )
            server._record(
                Received(
                    arrived,
                    body if isinstance(body, dict) else None,
                    self.headers.get("Authorization", ""),
                    reply.status,
                )
            )
            try:
                if reply.delay:
                    time.sleep(reply.delay)
                text = reply.body if reply.body is not None else _completion(body, reply.content)
                data = text.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (its timeout) and closed the connection
            finally:
                server._leave()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reads `received`

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve `word_answer` on 127.0.0.1 until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tradeloom.testing.llm_server")
    parser.add_argument("--port", type=int, default=8089)
    port = parser.parse_args(argv).port
    server = ChatServer(port=port)
    print(f"serving the chat completions API at {server.base_url}", flush=True)
    try:
        server._http.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._http.server_close()


if __name__ == "__main__":
    main()
