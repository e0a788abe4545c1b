"""A live router's refusals where an operator looks (issue 65, item 5).

- One of two emulated venues goes down (the emulator's fault injection: its book and
  balance answer 503) while it holds part of the position: the exit's part no venue can
  take is cancelled ``NO_ROUTE``, and the run counts it by purpose in ``metrics.json``,
  ``tradeloom status`` and the Prometheus metrics, logs it as a warning, and alerts on it
  (a real webhook delivery).
- A run killed between an order's intent and its routing (``kill -9`` at the order,
  before any child was decided or POSTed) restarts, sends nothing of it, and cancels it
  ``NOT_SENT``: the order was never sent, which is not ``NO_ROUTE`` (no venue could take it).
"""

from __future__ import annotations

import json
import signal
from contextlib import ExitStack
from pathlib import Path

import pytest
import structlog

from tests.engine.test_status_rows import assert_rows_read_as_frames
from tests.live.live_emulated import rows
from tests.live.test_crash import CrashRig
from tests.live.test_live_alerts import Inbox
from tests.live.test_router_crash import CLI_TEXT, HISTORY
from tests.live.test_router_crash import rig as rig
from tests.live.test_router_live import TEXT, router_run, tick_until
from tradeloom.engine.status_rows import read_status
from tradeloom.engine.status_text import format_status
from tradeloom.testing import ServerError

pytestmark = pytest.mark.slow  # a live run over emulated venues; a child process

ALERTED = TEXT.replace(
    "live:\n",
    "live:\n  metrics: {port: 0}\n  alerts:\n    targets:\n"
    '      - {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}\n',
    1,
)
assert "ALERT_WEBHOOK_URL" in ALERTED


def test_a_venue_down_leaves_exits_no_route_counted_logged_and_alerted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "run" / "journal.sqlite"
    with Inbox() as inbox, router_run(tmp_path, monkeypatch, cheap_usdt=12_000) as run:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", inbox.url)
        run.strategy.write_text(ALERTED)
        runner = run.runner(tmp_path / "run")
        printed: list[str] = []
        runner.echo = printed.append  # the line printed for each bar
        with ExitStack() as stack, structlog.testing.capture_logs() as logs:
            runner.attach_observers(stack)
            runner.start()
            # the first buy, split over both venues, filled at both
            tick_until(run, runner, lambda: bool(rows(journal, "route_decision")))
            children = {d["order_id"] for d in rows(journal, "route_decision")}
            tick_until(
                run,
                runner,
                lambda: children <= {f["order_id"] for f in rows(journal, "venue_fill")},
            )
            # cheap, holding part of the position, goes down: its book and balance fail
            for route in ("GET /api/v3/depth", "GET /api/v3/account"):
                run.venues["cheap"].faults.always(route, ServerError(503))
            tick_until(
                run,
                runner,
                lambda: any(c["reason"] == "NO_ROUTE" for c in rows(journal, "order_cancelled")),
            )
            scraped = runner_metrics(runner)
            runner.stop("done")
        posts = inbox.wait_for(1)
    reasons = {o["id"]: o["reason"] for o in rows(journal, "order")}
    refused = [
        (reasons[c["order_id"]], c["remaining"])
        for c in rows(journal, "order_cancelled")
        if c["reason"] == "NO_ROUTE"
    ]
    assert refused and all(purpose.startswith("EXIT_") for purpose, _ in refused)
    by_purpose: dict[str, int] = {}
    for purpose, _ in refused:
        by_purpose[purpose] = by_purpose.get(purpose, 0) + 1
    # metrics.json, as the run wrote it at its stop
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["refusals"]["cancelled"]["NO_ROUTE"] == by_purpose
    assert metrics["exits_refused"] == by_purpose
    assert metrics["unfilled_orders"] >= len(refused)
    # tradeloom status, from the journal alone
    status = read_status(tmp_path / "run")
    assert_rows_read_as_frames(tmp_path / "run")  # a router's, with its NO_ROUTE cancels
    assert status.refusals["cancelled"]["NO_ROUTE"] == by_purpose
    shown = format_status(status)
    assert any(line.startswith("           NO_ROUTE  ") for line in shown.splitlines())
    assert any(line.startswith("WARNING    ") for line in shown.splitlines())
    # the bars' lines say what was refused, of what
    said = [x.split("| refused ", 1)[1].split(" | ")[0] for x in printed if "| refused " in x]
    assert [x.split(" ", 1)[1] for x in said] == [f"NO_ROUTE ({p})" for p, _ in refused]
    assert [float(x.split(" ", 1)[0]) for x in said] == pytest.approx([r for _, r in refused])
    # a warning line per exit refused, as it happened
    warned = [e for e in logs if e["event"] == "exit_refused"]
    assert [(e["log_level"], e["code"], e["purpose"]) for e in warned] == [
        ("warning", "NO_ROUTE", purpose) for purpose, _ in refused
    ]
    # the Prometheus counters
    purpose = refused[0][0]
    assert scraped[("tradeloom_refusals_total", "cancelled", "NO_ROUTE", purpose)] >= 1
    # and the alert, delivered
    (_, body), *_ = [p for p in posts if p[1]["event"].endswith("exit_refused")]
    assert body["title"] == f"exit refused (BTC/USDT): {purpose} cancelled NO_ROUTE"
    assert body["text"].endswith("left unfilled; the position it was to close stays open")


def runner_metrics(runner: object) -> dict[tuple[str, ...], float]:
    """The run's refusal counters as scraped from its /metrics endpoint."""
    import urllib.request

    port = runner.metrics_port  # type: ignore[attr-defined]
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    found: dict[tuple[str, ...], float] = {}
    for line in text.decode().splitlines():
        if line.startswith("tradeloom_refusals_total{"):
            labels = dict(
                part.split("=", 1)
                for part in line[line.index("{") + 1 : line.index("}")].split(",")
            )
            key = (
                "tradeloom_refusals_total",
                *(labels[k].strip('"') for k in ("stage", "code", "purpose")),
            )
            found[key] = float(line.rsplit(" ", 1)[1])
    return found


def test_a_router_killed_between_an_orders_intent_and_its_post_cancels_it_not_sent(
    rig: CrashRig,
) -> None:
    """The buy splits over both venues; the process dies once its first child's intent is
    committed, before that request leaves and before the second child is decided. The
    restart sends nothing of the buy: the first child is taken as never arrived once the
    venue's window is over, and the parent's one cancellation, of both parts, says
    ``NOT_SENT`` (it said ``NO_ROUTE``: no venue could take the second part)."""
    quick = "      initial_cash: 25000\n      options: {recvWindow: 2000}\n"
    text = CLI_TEXT.replace("seed: 3\n", "seed: 3\nplugins: [tests.live.live_child]\n")
    rig.strategy.write_text(text.replace("      initial_cash: 25000\n", quick))
    rig.skew_seconds = 0.5  # the restart waits the window out: the shorter, the sooner
    rig.launch(crash="intent:1")
    while rig.advance() != "died":
        assert rig.emulator.exchange.position < HISTORY + 60, "no order was routed"
    rig.reap(-signal.SIGKILL)
    (first,) = rig.rows("route_decision")  # the second child was never decided
    (order,) = rig.rows("order")
    assert first["parent_id"] == order["id"] and first["quantity"] < order["quantity"]
    assert rig.posted() == []
    (intent,) = rig.rows("order_sent")
    rig.wait_out_window(intent["sent_at"], 2.0)
    rig.launch()  # the same command
    while not rig.rows("order_cancelled"):
        assert rig.emulator.exchange.position < HISTORY + 90, "the buy was never cancelled"
        assert rig.advance() == "processed"
    rig.stop()
    assert rig.exit_codes == [-signal.SIGKILL, 0]
    assert rig.emulator.errors == []
    (cancelled,) = rig.rows("order_cancelled")
    assert (cancelled["order_id"], cancelled["reason"]) == (order["id"], "NOT_SENT")
    assert cancelled["remaining"] == pytest.approx(order["quantity"], rel=1e-9)
    # nothing of it was decided or sent after the restart, under any id
    assert [d["order_id"] for d in rig.rows("route_decision")] == [first["order_id"]]
    assert not any(i.startswith(order["id"]) for i in rig.posted())
    metrics = json.loads((rig.run_dir / "metrics.json").read_text())
    assert metrics["refusals"]["cancelled"] == {"NOT_SENT": {order["reason"]: 1}}
    # what the command printed: the bar's line, and the refusals after its last line
    printed = rig.log_tail(400).splitlines()
    quantity = f"{cancelled['remaining']:.8g}"
    assert any(f"| refused {quantity} NOT_SENT ({order['reason']}) |" in x for x in printed)
    assert f"  NOT_SENT                1 cancelled: 1 {order['reason']}" in printed
