"""A test's own NATS JetStream and Redis servers, on free ports, that it may stop and start.

The machine's shared servers (NATS :4222, Redis :6379) are never stopped by a test; each
`Broker` here is a real ``nats-server -js`` or ``redis-server`` process of the test's own,
its data in the test's folder, so stopping it and starting it again keeps what it stored
(JetStream's file store; Redis's append-only file).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["Broker", "free_port"]


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A NATS (``kind="nats"``) or Redis (``kind="redis"``) server the test owns.

    Args:
        kind: ``nats`` or ``redis``.
        folder: Where it keeps its data (kept across `stop` and `start`).
    """

    def __init__(self, kind: str, folder: Path) -> None:
        binary = "nats-server" if kind == "nats" else "redis-server"
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed")
        self.kind = kind
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """The server's URL."""
        scheme = "nats" if self.kind == "nats" else "redis"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if self.kind == "nats":
            args = ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port)]
            args += ["-sd", str(self.folder)]
        else:
            args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
            args += ["--dir", str(self.folder)]
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} server on {self.port} did not start")

    def stop(self) -> None:
        """Stop the server (SIGTERM: Redis flushes its append-only file) and wait."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(20)
            self.process = None
