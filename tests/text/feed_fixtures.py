"""A real local HTTP server answering documents since a cursor, and a strategy whose text
source is fed while its paper run runs (tests/text/test_text_feeds.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "news_lexicon.yaml"
SETTINGS = (
    "data.bars=600",
    "model.walk_forward.train_window=200",
    "model.walk_forward.retrain_every=200",
    "model.params.n_estimators=10",
)
TEXT = ["lexicon_score", "lexicon_hits", "lexicon_count"]
TEXT += ["market_news_score", "market_news_hits", "market_news_count"]
WORDS = ("rally", "surge", "gains", "crash", "plunge", "losses")


def document(n: int, *, symbols: list[str] | None = None) -> dict[str, Any]:
    """A headline declared long before the run (visible only from its arrival)."""
    word = WORDS[n % len(WORDS)]
    return {
        "id": f"feed-{n:04d}",
        "time": f"2024-01-02T{n % 24:02d}:00:00Z",
        "text": f"BTC {word} as desks react, story {n}",
        "symbols": ["BTC/USDT"] if symbols is None else symbols,
        "source": "feed",
    }


def write_strategy(folder: Path, feed: dict[str, Any]) -> Path:
    """examples/news_lexicon.yaml with its news also fed by ``feed``, in ``folder``."""
    document_ = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    news = document_["data"]["auxiliary"][0]
    news["path"] = str((EXAMPLE.parent / news["path"]).absolute())
    news["feed"] = feed
    for feature in document_["features"]:
        if "lexicon" in feature:
            feature["lexicon"] = str((EXAMPLE.parent / feature["lexicon"]).absolute())
    path = folder / "news_fed.yaml"
    path.write_text(yaml.safe_dump(document_, sort_keys=False), encoding="utf-8")
    return path


class DocumentServer:
    """Answers ``GET /news?since=<id>`` with the next ``step`` of its items after that id.

    Items are JSON-ready values or raw bytes (a line that is not JSON). ``requests`` keeps
    each query's cursor; ``replay_once`` answers the next poll from the start (a server
    that repeats itself: the run must skip what it kept).
    """

    def __init__(self, items: list[Any], step: int = 1) -> None:
        self.items = items
        self.step = step
        self.requests: list[str | None] = []
        self.replay_once = False
        self._lock = threading.Lock()

    def answer(self, since: str | None) -> bytes:
        with self._lock:
            self.requests.append(since)
            start = 0
            if since is not None and not self.replay_once:
                ids = [i.get("id") if isinstance(i, dict) else None for i in self.items]
                start = ids.index(since) + 1 if since in ids else 0
            self.replay_once = False
            chunk = self.items[start : start + self.step]
        lines = [i if isinstance(i, bytes) else json.dumps(i).encode() for i in chunk]
        return b"\n".join(lines) + (b"\n" if lines else b"")


@contextmanager
def serving(server: DocumentServer) -> Iterator[str]:
    """Serve ``server`` on 127.0.0.1 (a free port); yield its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            body = server.answer(query.get("since", [None])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/news"
    finally:
        httpd.shutdown()
        httpd.server_close()
