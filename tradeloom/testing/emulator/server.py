"""HTTP plumbing: a threaded server on 127.0.0.1 that hands each request to a function.

The function answers with an `HttpReply`, or with `Hang` or `Drop` to misbehave at
the connection level, which is what a client's timeout and connection-error paths
need to meet. The server binds port 0 (the OS picks a free one, so parallel test
workers never collide), serves from a background thread, and `stop` ends every
connection it holds: no thread outlives it, even one hanging on purpose.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

from tradeloom.testing.emulator.lifecycle import Started

__all__ = ["Drop", "Hang", "HttpReply", "HttpRequest", "LoopbackServer", "Outcome"]


@dataclass(frozen=True)
class HttpRequest:
    """One request as received: raw query and body, header names in lower case."""

    method: str
    path: str
    query: str
    body: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class HttpReply:
    """A complete answer."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Hang:
    """Send nothing; hold the connection until the client closes it (or ``max_seconds``)."""

    max_seconds: float


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending anything."""


Outcome = HttpReply | Hang | Drop
Handler = Callable[[HttpRequest], Outcome]

_POLL_SECONDS = 0.01


class LoopbackServer(Started):
    """Serve ``handler`` over HTTP/1.1 on 127.0.0.1 from a background thread.

    Args:
        handler: Called once per request, on the request's own thread.
        on_error: Called with any exception ``handler`` raised; the client then gets
            a 500. Tests collect these to fail on emulator bugs rather than hide them.
    """

    def __init__(self, handler: Handler, on_error: Callable[[BaseException], HttpReply]) -> None:
        self._handler = handler
        self._on_error = on_error
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._busy = threading.Condition()
        self._in_flight = 0

    @property
    def port(self) -> int:
        """The port the OS gave the server."""
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return int(self._server.server_address[1])

    def start(self) -> Self:
        """Bind and start serving; returns self so ``with LoopbackServer(...).start()`` works."""
        if self._server is not None:
            raise RuntimeError("the server is already running")
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _RequestHandler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_SECONDS},
            name=f"loopback-exchange:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and wait for every request thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the server stops first; return False if it stopped."""
        return not self._stopping.wait(seconds)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being handled; return False on timeout.

        A test that made a request time out on purpose calls this before looking at
        the venue, so a request the venue is still working on cannot race it.
        """
        with self._busy:
            return self._busy.wait_for(lambda: self._in_flight == 0, timeout)

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def _serve(self, request: HttpRequest) -> Outcome:
        with self._busy:
            self._in_flight += 1
        try:
            return self._handler(request)
        except Exception as error:
            return self._on_error(error)
        finally:
            with self._busy:
                self._in_flight -= 1
                self._busy.notify_all()

    def _hold(self, connection: socket.socket, max_seconds: float) -> None:
        deadline = time.monotonic() + max_seconds
        while not self._stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([connection], [], [], _POLL_SECONDS)
            if readable:
                # The client either hung up (EOF) or broke the protocol: stop holding.
                return


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its connections, so `stop` can end them."""

    daemon_threads = False
    block_on_close = True
    owner: LoopbackServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: test output is no place for an access log."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        url = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            path=url.path,
            query=url.query,
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        owner = self.server.owner
        outcome = owner._serve(request)
        if isinstance(outcome, Hang):
            owner._hold(self.connection, outcome.max_seconds)
        if isinstance(outcome, Hang | Drop):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(outcome.status)
            for name, value in outcome.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(outcome.body)))
            self.end_headers()
            self.wfile.write(outcome.body)
        except OSError:
            # The client gave up (its timeout) before the answer was ready.
            self.close_connection = True
