"""Text sources fed while a paper run runs: a real HTTP server polled, a real NATS
JetStream subject read, each document checked as a file's rows are, kept in the run
folder with its arrival, and a backtest over what was kept steps the same text features.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.text.feed_fixtures import (
    SETTINGS,
    TEXT,
    DocumentServer,
    document,
    serving,
    write_strategy,
)
from tradeloom.journal import journal_path, read_rows
from tradeloom.plugins.data.received import ReceivedText, TextRules, read_received
from tradeloom.plugins.data.text_source import TextColumns
from tradeloom.plugins.text_feed.http_poll import HttpPoll, HttpPollParams
from tradeloom.text.feeds import Inbox

SETS = [a for s in SETTINGS for a in ("--set", s)]
HOUR = 3_600_000_000_000


def tradeloom(*args: str) -> str:
    from tradeloom.cli.main import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(["--quiet", *args])
    structlog.reset_defaults()
    assert code == 0, err.getvalue()
    return out.getvalue()


def paper(strategy: Path, out: Path, *more: str) -> None:
    tradeloom(
        "run", str(strategy), "--mode", "paper", "--clock", "simulated", "--speed", "max",
        "--out", str(out), *SETS, *more,
    )  # fmt: skip


def backtest_features(strategy: Path, out: Path, received: Path | None) -> pd.DataFrame:
    more = () if received is None else ("--set", f"data.auxiliary.0.received={received}")
    tradeloom("run", str(strategy), "--out", str(out), *SETS, *more)
    return pd.read_parquet(out / "features.parquet").set_index("timestamp")


def refusals(run: Path) -> list[dict[str, Any]]:
    return [r.values for r in read_rows(journal_path(run), ["document_refused"])]


def kept(run: Path) -> list[dict[str, Any]]:
    lines = (run / "documents" / "news.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def feed_items() -> tuple[list[Any], list[str]]:
    """Good headlines, a bad one in the middle of each poll's three (so every answer
    ends on a good id, the cursor the next poll sends)."""
    items: list[Any] = []
    good: list[str] = []
    for n in range(20):
        bad: Any = b"<html>oops</html>" if n % 2 == 0 else {"id": f"bad-{n}", "text": "x"}
        items += [document(n), bad, document(500 + n)]
        good += [f"feed-{n:04d}", f"feed-{500 + n:04d}"]
    return items, good


# --- HTTP ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_paper_run_polled_over_http_keeps_what_arrived_and_backtests_alike(
    tmp_path: Path,
) -> None:
    items, good = feed_items()
    server = DocumentServer(items, step=3)
    with serving(server) as url:
        strategy = write_strategy(
            tmp_path, {"kind": "http_poll", "url": url, "interval_seconds": 0.02}
        )
        paper(strategy, tmp_path / "paper")
    run = tmp_path / "paper"
    docs = kept(run)
    assert sorted(d["id"] for d in docs) == sorted(good)  # each once, none bad
    live = pd.read_parquet(run / "features.parquet").set_index("timestamp")
    first_close = live.index[0] + pd.Timedelta(hours=1)
    arrived = pd.to_datetime([d["received_at"] for d in docs], utc=True)
    assert (arrived >= first_close).all()  # stamped by the run's clock, not their own time
    assert arrived.is_monotonic_increasing
    refused = refusals(run)
    assert len(refused) == 20
    html = [r for r in refused if "not JSON" in r["reason"]]
    assert len(html) == 10
    assert [r["where"] for r in html[:2]] == [
        f"GET {url} item 2",
        f"GET {url}?since=feed-0501 item 2",
    ]
    assert html[0]["reason"] == (
        "not JSON (Expecting value at character 0); send a JSON object per document (or an "
        "array of them, or JSON Lines)"
    )
    missing = [r for r in refused if r not in html]
    assert (missing[0]["where"], missing[0]["reason"]) == (
        f"GET {url}?since=feed-0500 item 2",
        "no field 'time' (its time); it has id, text",
    )
    # parity's replay, a backtest over what the run kept, has the same text features
    said = tradeloom("parity", str(run), "--out", str(tmp_path / "parity"))
    assert "no difference" in said
    replay = pd.read_parquet(tmp_path / "parity" / "reference" / "features.parquet")
    replay = replay.set_index("timestamp")
    pd.testing.assert_frame_equal(live[TEXT], replay.loc[live.index, TEXT], check_exact=True)
    without = backtest_features(strategy, tmp_path / "without", None)
    assert live["lexicon_count"].sum() > without.loc[live.index, "lexicon_count"].sum()


def test_an_answer_that_is_no_json_at_all_is_one_refusal_naming_the_poll() -> None:
    server = DocumentServer([b"<html>maintenance</html>"], step=1)
    clock = iter(range(10**18, 10**18 + 100))
    with serving(server) as url:
        feed = ReceivedText(_rules(), HttpPoll(HttpPollParams(url=url)), None)
        feed.start(lambda: next(clock))
        try:
            refused = _take_until(feed, lambda r: bool(r))
        finally:
            feed.stop()
    assert [(r.where, r.reason) for r in refused[:1]] == [
        (
            f"GET {url}",
            "not JSON (Expecting value at character 0); send a JSON object per document "
            "(or an array of them, or JSON Lines)",
        )
    ]


# --- the one rule, and arrival --------------------------------------------------------


def _rules(policy: str = "reject") -> TextRules:
    return TextRules(
        name="news",
        label="data.auxiliary.0 (news)",
        delay_ns=300_000_000_000,
        columns=TextColumns(timestamp="time", symbols="symbols", source="source"),
        max_chars=40,
        policy=policy,  # type: ignore[arg-type]
    )


class _Queue:
    """A receiver that hands over what a test gives it (no network: the inbox's rules)."""

    def __init__(self) -> None:
        self.inbox: Any = None

    def start(self, cursor: str | None, inbox: Any) -> None:
        self.inbox = inbox

    def stop(self) -> None:
        pass


def _take_until(feed: ReceivedText, done: Any) -> list[Any]:
    found: list[Any] = []
    for _ in range(2000):
        found += feed.take()
        if done(found):
            return found
        threading.Event().wait(0.005)
    return found


def test_a_document_is_visible_from_its_arrival_never_its_own_earlier_time(
    tmp_path: Path,
) -> None:
    now = [pd.Timestamp("2024-03-01T12:00:00Z").value]
    queue = _Queue()
    feed = ReceivedText(_rules(), queue, None)
    feed.attach(tmp_path)
    feed.start(lambda: now[0])
    early = {"id": "a", "time": "2024-03-01T09:00:00Z", "text": "BTC  rally\u00a0now"}
    late = {"id": "b", "time": "2024-03-01T13:00:00Z", "text": "later story"}
    queue.inbox.put("test 1", json.dumps([early, late]).encode(), "1")
    assert feed.take() == []
    docs = feed.documents()
    assert docs.ids == ("a", "b")
    assert docs.texts[0] == "BTC rally now"  # the file's normalisation
    # a: arrived at 12:00 (declared 09:00 + 5m); b: its own 13:00 + 5m, after its arrival
    assert docs.visible_ns.tolist() == [now[0], now[0] + HOUR + 300_000_000_000]
    assert read_received(tmp_path / "news.jsonl", _rules()).ids == ("a", "b")
    assert np.array_equal(
        read_received(tmp_path / "news.jsonl", _rules()).visible_ns, docs.visible_ns
    )
    assert (tmp_path / "news.cursor").read_text(encoding="utf-8") == "1"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "bytes that are not UTF-8 (byte 0); send UTF-8"),
        (b"[1]", "a JSON int, not an object; send one JSON object per document"),
        (
            b'{"id": "x", "time": "2024-03-01", "text": "  "}',
            "1 row has an empty text (first at 2024-03-01T00:00Z, document 1); fix or drop "
            "it, or set data.validation: repair (dropped)",
        ),
        (
            b'{"id": "x", "time": "2024-03-01", "text": "' + b"word " * 20 + b'"}',
            "1 row has a text longer than max_chars (40) (first at 2024-03-01T00:00Z, "
            "document 1); shorten it, raise max_chars or set data.validation: repair (cut "
            "at max_chars)",
        ),
        (
            b'{"id": "x", "time": "yesterday", "text": "t"}',
            "column 'time' has 1 unparsable or missing timestamp(s) (first at document 1); "
            "expected ISO 8601 or epoch seconds or milliseconds",
        ),
    ],
)
def test_a_malformed_payload_is_refused_with_where_and_what(
    tmp_path: Path, payload: bytes, reason: str
) -> None:
    queue = _Queue()
    feed = ReceivedText(_rules(), queue, None)
    feed.attach(tmp_path)
    feed.start(lambda: 10**18)
    queue.inbox.put("nats news.btc (stream NEWS) seq 7", payload, "7")
    refused = feed.take()
    where = "nats news.btc (stream NEWS) seq 7" + (" item 1" if payload == b"[1]" else "")
    assert [(r.source, r.where, r.reason) for r in refused] == [("news", where, reason)]
    assert len(feed.documents()) == 0
    assert feed.cursor == "7"  # refused, not to be asked for again


def test_repair_cuts_a_long_text_and_keeps_it_as_the_file_would(tmp_path: Path) -> None:
    queue = _Queue()
    feed = ReceivedText(_rules("repair"), queue, None)
    feed.attach(tmp_path)
    feed.start(lambda: 10**18)
    body = {"id": "x", "time": "2024-03-01", "text": "word " * 20}
    queue.inbox.put("q", json.dumps(body).encode(), "1")
    assert feed.take() == []
    assert feed.documents().texts == (("word " * 8).strip(),)
    assert read_received(tmp_path / "news.jsonl", _rules()).texts == feed.documents().texts


def test_a_document_sent_again_is_kept_once_and_another_text_under_its_id_refused(
    tmp_path: Path,
) -> None:
    queue = _Queue()
    feed = ReceivedText(_rules(), queue, None)
    feed.attach(tmp_path)
    feed.start(lambda: 10**18)
    one = {"id": "x", "time": "2024-03-01", "text": "first"}
    queue.inbox.put("q 1", json.dumps(one).encode(), "1")
    queue.inbox.put("q 2", json.dumps(one).encode(), "2")
    queue.inbox.put("q 3", json.dumps({**one, "text": "changed"}).encode(), "3")
    refused = feed.take()
    assert [r.reason for r in refused] == ["id 'x' was received before with another text"]
    again = ReceivedText(_rules(), _Queue(), None)  # a restart reads back what was kept
    again.attach(tmp_path)
    assert again.documents().ids == ("x",)
    assert again.cursor == "3"


def test_a_restart_on_an_earlier_clock_keeps_arrivals_in_order_and_reads_them_back(
    tmp_path: Path,
) -> None:
    # killed after keeping a tick's documents (stamped at the clock the emulator had just
    # advanced to) and before the tick's bar was journaled, a paper run restarts from
    # that bar: its clock an hour earlier than the arrivals kept
    killed_at = pd.Timestamp("2024-03-01T13:00:02Z").value
    queue = _Queue()
    first = ReceivedText(_rules(), queue, None)
    first.attach(tmp_path)
    first.start(lambda: killed_at)
    one = {"id": "a", "time": "2024-03-01T09:00:00Z", "text": "kept before the kill"}
    queue.inbox.put("q 1", json.dumps(one).encode(), "1")
    assert first.take() == []
    now = [killed_at - HOUR]
    again = ReceivedText(_rules(), queue, None)
    again.attach(tmp_path)
    again.start(lambda: now[0])
    two = {"id": "b", "time": "2024-03-01T10:00:00Z", "text": "after the restart"}
    queue.inbox.put("q 2", json.dumps(two).encode(), "2")
    assert again.take() == []
    now[0] += 2 * HOUR  # the restart's clock passes the kill: its own time again
    three = {"id": "c", "time": "2024-03-01T11:00:00Z", "text": "later still"}
    queue.inbox.put("q 3", json.dumps(three).encode(), "3")
    assert again.take() == []
    back = read_received(tmp_path / "news.jsonl", _rules())  # a third start reads it
    assert back.ids == ("a", "b", "c")
    lines = (tmp_path / "news.jsonl").read_text(encoding="utf-8").splitlines()
    arrived = [json.loads(line)["received_at"] for line in lines]
    # the restart stamps no arrival before the last one kept, and its own clock's time
    # once that has passed it
    assert arrived == [
        "2024-03-01T13:00:02.000000000Z",
        "2024-03-01T13:00:02.000000000Z",
        "2024-03-01T14:00:02.000000000Z",
    ]
    assert np.array_equal(back.visible_ns, again.documents().visible_ns)


def _two_kept(tmp_path: Path, ids: str) -> tuple[Path, _Queue, list[dict[str, str]]]:
    """Return the kept file of a feed that took a batch of the first two of ``ids``'
    documents (each made), and its queue."""
    queue = _Queue()
    first = ReceivedText(_rules(), queue, None)
    first.attach(tmp_path)
    first.start(lambda: 10**18)
    docs = [{"id": k, "time": "2024-03-01T09:00:00Z", "text": f"story {k}"} for k in ids]
    queue.inbox.put("q 1", json.dumps(docs[:2]).encode(), "1")
    assert first.take() == []
    return tmp_path / "news.jsonl", queue, docs


def test_a_kill_inside_an_append_leaves_a_partial_line_that_readers_and_a_restart_skip(
    tmp_path: Path,
) -> None:
    # A tick's batch goes in one write, but a write of many pages stops at a page when
    # the process is killed: the file ends in a line without its newline. It was refused
    # as "line 4 is not JSON" by the restart and by every reader of the run's documents.
    path, queue, docs = _two_kept(tmp_path, "abcd")
    kept_whole = path.read_bytes()
    # the next batch (c, d), killed inside its write: c whole, d cut; its cursor not kept
    line_c, line_d = (
        json.dumps({**d, "received_at": "2024-03-01T12:00:00.000000000Z"}).encode() + b"\n"
        for d in docs[2:]
    )
    with path.open("ab") as fh:
        fh.write(line_c + line_d[: len(line_d) // 2])
    torn = path.read_bytes()
    # a reader (a backtest's ``received:``, parity) reads the complete lines, says it left
    # the last one out, and changes nothing
    with structlog.testing.capture_logs() as logs:
        assert read_received(path, _rules()).ids == ("a", "b", "c")
    assert [(e["event"], e["left_out_bytes"]) for e in logs] == [
        ("received_partial_line", len(line_d) // 2)
    ]
    assert path.read_bytes() == torn
    # the restart cuts the partial line off, keeps every complete one, and says so
    again = ReceivedText(_rules(), queue, None)
    with structlog.testing.capture_logs() as logs:
        again.attach(tmp_path)
    assert [(e["event"], e["cut_bytes"]) for e in logs] == [
        ("received_partial_line_cut", len(line_d) // 2)
    ]
    assert path.read_bytes() == kept_whole + line_c
    assert again.documents().ids == ("a", "b", "c")
    assert again.cursor == "1"
    # the feed brings the cut batch again: c is kept already, d is kept once, whole
    again.start(lambda: 10**18)
    queue.inbox.put("q 2", json.dumps(docs[2:]).encode(), "2")
    assert again.take() == []
    assert path.read_bytes().startswith(kept_whole + line_c)
    assert path.read_bytes().endswith(b"\n")
    assert read_received(path, _rules()).ids == ("a", "b", "c", "d")
    assert again.cursor == "2"


def test_the_cursor_is_kept_durably_after_the_documents_it_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cursor was written aside and renamed, never fsync'd: a power loss could keep
    # the new cursor and lose its bytes or its rename. Now each tick fsyncs the documents,
    # then the cursor's bytes, then (once renamed) its folder.
    queue = _Queue()
    feed = ReceivedText(_rules(), queue, None)
    feed.attach(tmp_path)
    feed.start(lambda: 10**18)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    doc = {"id": "a", "time": "2024-03-01T09:00:00Z", "text": "story a"}
    queue.inbox.put("q 1", json.dumps(doc).encode(), "1")
    assert feed.take() == []
    # a new file: its name in its folder is on disk before the cursor is
    assert synced == ["news.jsonl", tmp_path.name, "news.cursor.tmp", tmp_path.name]
    synced.clear()
    queue.inbox.put("q 2", json.dumps({**doc, "id": "b"}).encode(), "2")
    assert feed.take() == []
    assert synced == ["news.jsonl", "news.cursor.tmp", tmp_path.name]
    assert (tmp_path / "news.cursor").read_text(encoding="utf-8") == "2"
    assert not (tmp_path / "news.cursor.tmp").exists()


def test_a_last_line_holding_a_whole_object_without_its_newline_is_kept(
    tmp_path: Path,
) -> None:
    # a file a user wrote without the final newline, or a kill just before the newline's
    # byte: its last line is a whole document, read as one; a restart gives it its newline
    # before it appends (else the next line would run on after it)
    path, queue, docs = _two_kept(tmp_path, "abc")
    written = path.read_bytes()[:-1]  # its last newline gone
    path.write_bytes(written)
    with structlog.testing.capture_logs() as logs:
        assert read_received(path, _rules()).ids == ("a", "b")
    assert logs == []
    again = ReceivedText(_rules(), queue, None)
    again.attach(tmp_path)
    assert path.read_bytes() == written + b"\n"
    again.start(lambda: 10**18)
    queue.inbox.put("q 2", json.dumps(docs[2:]).encode(), "2")
    assert again.take() == []
    assert read_received(path, _rules()).ids == ("a", "b", "c")


def test_a_backtest_over_received_documents_cut_inside_an_append_reads_the_whole_lines(
    tmp_path: Path,
) -> None:
    # ``received: RUN/documents/news.jsonl`` (as parity reads a run): a kill inside an
    # append exited 2 ("line 4 is not JSON") before; the complete lines are what was kept
    lines = [
        json.dumps({**document(n), "received_at": f"2024-01-03T{n:02d}:00:00.000000000Z"})
        for n in range(4)
    ]
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(f"{line}\n" for line in lines[:3]), encoding="utf-8")
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(whole.read_bytes() + lines[3].encode()[:40])
    strategy = write_strategy(tmp_path, {"kind": "http_poll", "url": "http://127.0.0.1:9"})
    read_torn = backtest_features(strategy, tmp_path / "torn", torn)
    read_whole = backtest_features(strategy, tmp_path / "whole", whole)
    pd.testing.assert_frame_equal(read_torn[TEXT], read_whole[TEXT], check_exact=True)
    without = backtest_features(strategy, tmp_path / "without", None)
    assert read_whole["lexicon_count"].sum() > without["lexicon_count"].sum()  # they count


def test_the_inbox_never_stamps_an_arrival_before_an_earlier_one() -> None:
    now = [5_000]
    inbox = Inbox(lambda: now[0], floor=7_000)  # an earlier start's last arrival
    inbox.put("a", b"{}", "1")
    now[0] = 8_000
    inbox.put("b", b"{}", "2")
    now[0] = 6_000  # a clock stepped back (a wall clock's correction)
    inbox.put("c", b"{}", "3")
    assert [a.received_ns for a in inbox.take()] == [7_000, 8_000, 8_000]
    inbox.put("d", b"{}", "4")
    now[0] = 9_000
    assert [a.received_ns for a in inbox.take()] == [8_000]
    inbox.put("e", b"{}", "5")  # after a take: after the time it read
    assert [a.received_ns for a in inbox.take()] == [9_001]


# --- NATS JetStream -------------------------------------------------------------------

NATS = "nats://127.0.0.1:4222"


def _publish(stream: str, subject: str, bodies: list[bytes], *, create: bool = False) -> None:
    import asyncio

    import nats
    from nats.js.api import StreamConfig

    async def go() -> None:
        client = await nats.connect(NATS)
        js = client.jetstream()
        if create:
            await js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"]))
        for body in bodies:
            await js.publish(f"{subject}.btc", body)
        await client.close()

    asyncio.run(go())


def _drop_stream(stream: str) -> None:
    import asyncio

    import nats

    async def go() -> None:
        client = await nats.connect(NATS)
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(stream)
        await client.close()

    asyncio.run(go())


@pytest.mark.slow
def test_a_paper_run_reading_nats_killed_and_restarted_keeps_each_document_once(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import uuid

    name = uuid.uuid4().hex[:12]
    stream, subject = f"TLNEWS_{name}", f"tlnews.{name}"
    first = [json.dumps(document(n)).encode() for n in range(12)]
    later = [json.dumps(document(100 + n, symbols=[])).encode() for n in range(12)]
    bad = [b"{not json", json.dumps({"id": "no-text", "time": "2024-01-02"}).encode()]
    _publish(stream, subject, first, create=True)
    try:
        strategy = write_strategy(
            tmp_path,
            {"kind": "nats", "servers": [NATS], "stream": stream, "subject": f"{subject}.>"},
        )
        run = tmp_path / "paper"
        kept_file = run / "documents" / "news.jsonl"
        args = ["run", str(strategy), "--mode", "paper", "--clock", "simulated"]
        args += ["--out", str(run), *SETS]
        code = "import sys; from tradeloom.cli.main import main; sys.exit(main(sys.argv[1:]))"
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": str(root)}
        child = subprocess.Popen(
            [sys.executable, "-c", code, "--quiet", *args, "--speed", "36000"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # the first messages are kept once the run is live: then kill it mid-run
            for _ in range(12_000):
                if kept_file.is_file() and len(kept_file.read_bytes().splitlines()) >= 12:
                    break
                if child.poll() is not None:
                    break
                threading.Event().wait(0.05)
            assert child.poll() is None, "the run ended before it was killed"
            os.kill(child.pid, signal.SIGKILL)  # as kill -9
        finally:
            child.wait()
        assert child.returncode == -signal.SIGKILL
        # a kill between keeping documents and its cursor: the stream is read again
        # from the start, and what was kept is kept once
        (run / "documents" / "news.cursor").unlink(missing_ok=True)
        _publish(stream, subject, later[:6] + bad + later[6:])
        paper(strategy, run)
    finally:
        _drop_stream(stream)
    docs = kept(run)
    ids = [d["id"] for d in docs]
    assert sorted(ids) == sorted(json.loads(b)["id"] for b in first + later)
    refused = refusals(run)
    assert [(r["where"].split(" seq ")[0], r["reason"]) for r in refused] == [
        (
            f"nats {subject}.btc (stream {stream})",
            "not JSON (Expecting property name enclosed in double quotes at character 1); "
            "send a JSON object per document (or an array of them, or JSON Lines)",
        ),
        (f"nats {subject}.btc (stream {stream})", "no field 'text' (its text); it has id, time"),
    ]
    assert [r["where"].split(" seq ")[1] for r in refused] == ["19", "20"]
    live = pd.read_parquet(run / "features.parquet").set_index("timestamp")
    replay = backtest_features(strategy, tmp_path / "replay", kept_file)
    pd.testing.assert_frame_equal(live[TEXT], replay.loc[live.index, TEXT], check_exact=True)
    without = backtest_features(strategy, tmp_path / "without", None)
    assert live["market_news_count"].sum() > without.loc[live.index, "market_news_count"].sum()


def test_a_feed_of_an_unknown_kind_or_key_is_refused_naming_its_place(tmp_path: Path) -> None:
    from tradeloom.cli.main import main

    strategy = write_strategy(tmp_path, {"kind": "kafka", "topic": "news"})
    text = strategy.read_text(encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--quiet", "validate", str(strategy)])
    structlog.reset_defaults()
    assert code == 2
    assert "data.auxiliary.0.feed.kind: unknown text_feed kind 'kafka'" in err.getvalue()
    strategy.write_text(text.replace("kind: kafka", "kind: nats").replace("topic:", "streem:"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--quiet", "validate", str(strategy)])
    structlog.reset_defaults()
    assert code == 2
    lines = err.getvalue()
    assert "data.auxiliary.0.feed.streem: unknown key (did you mean 'stream'?)" in lines
    assert "data.auxiliary.0.feed.stream: Field required" in lines


def test_what_a_run_holds_after_each_tick_is_what_a_backtest_reads_back(tmp_path: Path) -> None:
    from tradeloom.plugins.data.received import merge_documents
    from tradeloom.plugins.data.text_source import DocumentFile, read_documents

    history = tmp_path / "news.csv"
    history.write_text(
        "time,text,symbols,source\n"
        "2024-03-01T00:00:00Z,old rally,BTC/USDT,desk\n"
        "2024-03-01T11:55:00Z,old crash,,wire\n",
        encoding="utf-8",
    )
    rules = _rules()

    def read() -> Any:
        return read_documents(
            history, label="h", delay_ns=rules.delay_ns, columns=rules.columns,
            max_chars=rules.max_chars, policy="reject",
        )  # fmt: skip

    now = [pd.Timestamp("2024-03-01T12:00:00Z").value]
    queue = _Queue()
    feed = ReceivedText(rules, queue, DocumentFile(read, history))
    folder = tmp_path / "run"
    feed.attach(folder)
    feed.start(lambda: now[0])
    for tick in range(4):
        batch = [
            {"id": f"t{tick}a", "time": "2024-03-01T01:00:00Z", "text": f"story {tick}"},
            # published after its arrival: visible later than the next ticks' documents
            {"id": f"t{tick}b", "time": "2024-03-01T15:00:00Z", "text": f"embargo {tick}"},
            {"id": f"t{tick}c", "time": "2024-03-01T02:00:00Z", "text": f"more {tick}"},
        ]
        queue.inbox.put(f"q {tick}", json.dumps(batch).encode(), str(tick))
        assert feed.take() == []
        held = feed.documents()
        backtest = merge_documents(read(), read_received(folder / "news.jsonl", rules))
        assert held.ids == backtest.ids
        assert np.array_equal(held.visible_ns, backtest.visible_ns)
        assert (held.texts, held.symbols) == (backtest.texts, backtest.symbols)
        now[0] += HOUR
    assert held.ids[:2] == ("news.csv:2", "news.csv:3")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    ticks=st.lists(
        st.lists(st.integers(-3, 6), max_size=3),  # each document's time: hours from now
        min_size=1,
        max_size=6,
    )
)
def test_a_feed_only_source_holds_what_a_backtest_reads_back_and_reuses_it_between_arrivals(
    ticks: list[list[int]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A source fed only by its feed (no file) keeps the documents it merged while nothing
    arrives (the same object, not a new set at each call: a tick's cost), and after each
    tick holds what the whole recomputation gives (what a backtest reads back), documents
    visible before the last arrival (merged again) or after it (appended)."""
    from tradeloom.plugins.data.received import merge_documents
    from tradeloom.text.documents import Documents

    rules = _rules()
    queue = _Queue()
    feed = ReceivedText(rules, queue, None)
    folder = tmp_path_factory.mktemp("feed") / "run"
    feed.attach(folder)
    now = [pd.Timestamp("2024-03-01T12:00:00Z").value]
    feed.start(lambda: now[0])
    held = feed.documents()
    assert len(held) == 0 and feed.documents() is held
    count = 0
    for tick, hours in enumerate(ticks):
        batch = []
        for offset in hours:
            count += 1
            stamp = pd.Timestamp(now[0] + offset * HOUR, tz="UTC").isoformat()
            batch.append({"id": f"n{count}", "time": stamp, "text": f"story {count}"})
        if batch:
            queue.inbox.put(f"q {tick}", json.dumps(batch).encode(), str(tick))
        assert feed.take() == []
        held = feed.documents()
        assert feed.documents() is held  # nothing arrived since: the set it merged
        whole = merge_documents(Documents.empty(), read_received(folder / "news.jsonl", rules))
        assert held.ids == whole.ids
        assert np.array_equal(held.visible_ns, whole.visible_ns)
        assert np.array_equal(held.stamped_ns, whole.stamped_ns)
        assert (held.texts, held.titles, held.sources, held.symbols) == (
            whole.texts,
            whole.titles,
            whole.sources,
            whole.symbols,
        )
        now[0] += HOUR
