"""The console served by uvicorn in a thread, asked over a socket as a browser asks it.

Starlette's ``TestClient`` decodes a request's path twice (``%2541`` arrives as ``A``),
so a run id with ``%`` in it cannot be tested through it; uvicorn, which serves the
console, decodes once. `served` starts the app on a free port of 127.0.0.1 and yields
an `Http` that sends each URL exactly as written (``http.client``: no normalisation).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass(frozen=True)
class Answer:
    """A response: its status and body (text)."""

    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass(frozen=True)
class Http:
    """Requests to the served console, each on a new connection."""

    port: int
    headers: dict[str, str]

    def get(self, url: str) -> Answer:
        return self._send("GET", url, None)

    def post(self, url: str, body: bytes | Any = None) -> Answer:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self._send("POST", url, data)

    def first_event(self, url: str) -> tuple[str, Any]:
        """Return the first server-sent event of ``url``: its name and its data."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("GET", url, headers=self.headers)
            response = connection.getresponse()
            assert response.status == 200, response.read()
            name = response.readline().decode().strip()
            data = response.readline().decode().strip()
        finally:
            connection.close()
        assert name.startswith("event: ") and data.startswith("data: "), (name, data)
        return name[len("event: ") :], json.loads(data[len("data: ") :])

    def _send(self, method: str, url: str, body: bytes | None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, url, body=body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, response.read().decode())
        finally:
            connection.close()


@contextlib.contextmanager
def served(app: Any, headers: dict[str, str]) -> Iterator[Http]:
    """Serve ``app`` until the block ends; yield requests sending ``headers``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Http(sock.getsockname()[1], headers)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
