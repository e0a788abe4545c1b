"""The ``alerts`` observer: real HTTP deliveries to a local server for a halt, the kill
switch and stale data, in the webhook, Slack and Telegram formats; a webhook that hangs
never holds up trading, and what it cannot take is dropped and counted; URLs are secrets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.live.live_emulated import STRATEGY, emulated_run, tick_bars
from tradeloom.cli.main import main
from tradeloom.journal import TradingStateChanged, read_events

ALERTING = (
    STRATEGY.replace(
        "risk:\n  sizing: {kind: fixed_fraction, fraction: 0.5}\n",
        "risk:\n  sizing: {kind: fixed_fraction, fraction: 0.5}\n"
        "  rules: [{kind: drawdown_halt, max_drawdown: 0.0005}]\n",
    )
    .replace(
        "live:\n",
        """live:
  metrics: {port: 0}
  alerts:
    targets:
      - {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}
      - {kind: slack, url: "${ALERT_SLACK_URL}"}
      - {kind: telegram, url: "${ALERT_TELEGRAM_API}", token: "${ALERT_BOT_TOKEN}", chat_id: "42"}
    queue_size: QUEUE
""",
    )
    .replace("stale_after_bars: null", "stale_after_bars: 2")
)


class Inbox:
    """A local HTTP server that keeps every POST (path, JSON body); may hang each request."""

    def __init__(self, *, hang: bool = False) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.arrived = threading.Condition()
        self.release = threading.Event()
        if not hang:
            self.release.set()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with inbox.arrived:
                    inbox.posts.append((self.path, body))
                    inbox.arrived.notify_all()
                inbox.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        """Return the posts once ``count`` have arrived (fail after 30 s)."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.posts) >= count, timeout=30), self.posts
            return list(self.posts)

    def __enter__(self) -> Inbox:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def alerting_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inbox: Inbox, queue: int = 100
) -> Iterator[tuple[Any, Any]]:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{inbox.url}/hook")
    monkeypatch.setenv("ALERT_SLACK_URL", f"{inbox.url}/slack")
    monkeypatch.setenv("ALERT_TELEGRAM_API", inbox.url)
    monkeypatch.setenv("ALERT_BOT_TOKEN", "123:secret-bot-token")
    text = ALERTING.replace("QUEUE", str(queue))
    with emulated_run(tmp_path, monkeypatch, text=text, history=180) as run, ExitStack() as stack:
        runner = run.runner(tmp_path / "run", mode="paper", refresh=False)
        runner.attach_observers(stack)
        runner.start()
        try:
            yield run, runner
        finally:
            runner.stop("test over")
            stack.close()


def _by_target(posts: list[tuple[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path, body in posts:
        found.setdefault(path, []).append(body)
    return found


def test_halt_kill_and_stale_data_reach_every_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Inbox() as inbox, alerting_run(tmp_path, monkeypatch, inbox) as (run, runner):
        tick_bars(run, runner, 2)
        # stale data: the clock runs five bars ahead while the exchange publishes none
        market = runner.now
        runner.files.now = lambda: market() + pd.Timedelta(hours=5)
        runner.tick()
        runner.files.now = market
        runner.session_or_fail.kill("operator test")
        runner.session_or_fail.resume("operator test over")
        for _ in range(120):  # trade until the tight drawdown limit halts
            tick_bars(run, runner, 1)
            if runner.recorder_or_fail.halt is not None:
                break
        assert runner.recorder_or_fail.halt is not None
        posts = inbox.wait_for(3 * 4)

    targets = _by_target(posts)
    assert set(targets) == {"/hook", "/slack", "/bot123:secret-bot-token/sendMessage"}
    events = [body["event"] for body in targets["/hook"]]
    assert events == ["stale_data", "kill", "resume", "halt"]
    # every alert carries its event's time: the kill switch and the resume (journaled
    # between bars, without a bar's time) the time they were journaled at
    journaled = [
        e.at.isoformat()
        for e in read_events(tmp_path / "run" / "journal.sqlite")
        if isinstance(e, TradingStateChanged) and e.code in ("KILL_SWITCH", "RESUME")
    ]
    assert [body["time"] for body in targets["/hook"][1:3]] == journaled
    assert len(journaled) == 2 and targets["/hook"][-1]["time"]
    halt = targets["/hook"][-1]
    assert halt["severity"] == "critical" and halt["title"] == "trading halted (MAX_DRAWDOWN_HALT)"
    assert halt["run"] == "run" and halt["strategy"] == "live_rf" and halt["mode"] == "paper"
    assert halt["bar"] == runner.recorder_or_fail.halt.bar
    assert halt["values"]["limit"] == pytest.approx(0.0005)
    slack = [body["text"] for body in targets["/slack"]]
    assert slack[0].startswith("[WARNING] tradeloom paper live_rf (run): stale data: ")
    assert slack[1] == (
        "[CRITICAL] tradeloom paper live_rf (run): kill switch: trading HALTED: operator test"
    )
    telegram = targets["/bot123:secret-bot-token/sendMessage"]
    assert [t["chat_id"] for t in telegram] == ["42"] * 4
    assert [t["text"] for t in telegram] == slack


def test_a_hanging_webhook_never_holds_up_trading_and_drops_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        Inbox(hang=True) as inbox,
        alerting_run(tmp_path, monkeypatch, inbox, queue=1) as (
            run,
            runner,
        ),
    ):
        session = runner.session_or_fail
        for _ in range(4):  # each kill and resume is an alert (at its own bar)
            tick_bars(run, runner, 1)
            session.kill("flapping")
            session.resume("flapping over")
        before = runner.bars_processed
        tick_bars(run, runner, 5)  # the webhook still hangs on the first alert
        inbox.wait_for(1)
        from tests.live.test_live_metrics import one, scrape

        samples = scrape(runner.metrics_port)

        assert runner.bars_processed == before + 5
        assert len(inbox.posts) == 1  # the sender waits on the first; the rest queued or dropped
        dropped = one(samples, "tradeloom_alerts_dropped_total", reason="queue_full")
        assert dropped >= 8 - 1 - 1  # 8 alerts: one being sent, one queued, the rest dropped
        assert one(samples, "tradeloom_alerts_sent_total", target="webhook") == 0


def test_a_webhook_url_written_out_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMU_API_KEY", "k")
    monkeypatch.setenv("EMU_API_SECRET", "s")
    text = STRATEGY.replace(
        "live:\n",
        'live:\n  alerts:\n    targets:\n      - {kind: slack, url: "https://hooks.example/T0/B0/x"}\n',
    )
    path = tmp_path / "s.yaml"
    path.write_text(text)

    code = main(["validate", str(path)])

    err = capsys.readouterr().err
    assert code == 2
    assert "https://hooks.example" not in err
    line = text.splitlines().index('      - {kind: slack, url: "https://hooks.example/T0/B0/x"}')
    assert err.splitlines() == [
        f"{path}:{line + 1}:28 live.alerts.targets.0.url: a webhook URL carries its token: give "
        "an environment variable reference such as ${ALERT_WEBHOOK_URL}, never the value itself"
    ]
