"""A paper run's events on real brokers: every committed row once, in order, nothing lost.

The run is the real paper runner on the simulated clock (a child process, as the command
line starts it, forked by `tests.forkserver` as the suite's other commands are),
publishing to a NATS JetStream server and a Redis server of the test's own
(`tests.live.brokers`), both stopped mid-run and started again; the run is then killed
with SIGKILL, its publishers' positions set back (as a crash between a broker's
acknowledgement and the position's write leaves them), and restarted. The consumer
example (examples/events_consumer.py) then reads each broker: every journal row arrives
exactly once by id, in sequence order, with the journal's own decoded row as payload.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import forkserver
from tests.live.brokers import Broker
from tradeloom.journal.outbox import position_path, publisher_lag, read_position
from tradeloom.journal.reader import read_sequenced
from tradeloom.live.outputs.events import message_of

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("brokers")

_SETTINGS = (
    "data.bars=2500",
    "model.walk_forward.train_window=1000",
    "model.params.n_estimators=20",
    "model.params.n_jobs=1",
    "signal.threshold=0.1",
    "model.calibration=null",
)


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    nats, redis = Broker("nats", tmp_path / "nats"), Broker("redis", tmp_path / "redis")
    nats.start()
    redis.start()
    yield nats, redis
    nats.stop()
    redis.stop()


def _command(run_dir: Path, nats: Broker, redis: Broker, bars: int, speed: str) -> list[str]:
    events = (
        f'[{{kind: nats, url: "{nats.url}", subject_prefix: test}}, '
        f'{{kind: redis_streams, url: "{redis.url}/0", key_prefix: test, drain_seconds: 20}}]'
    )
    args = [sys.executable, "-m", "tradeloom.cli.main", "--quiet", "run"]
    args += [str(ROOT / "strategies" / "btc_rf.yaml"), "--mode", "paper"]
    args += ["--clock", "simulated", "--speed", speed, "--max-bars", str(bars)]
    args += ["--out", str(run_dir), "--set", f"live.events={events}"]
    for setting in _SETTINGS:
        args += ["--set", setting]
    return args


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _wait(what: str, done: Callable[[], bool], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _acked(run_dir: Path, name: str) -> int:
    try:
        found = read_position(position_path(run_dir, name))
    except Exception:  # a position being replaced
        return 0
    return 0 if found is None else found.seq


def _rows(run_dir: Path) -> int:
    try:
        return sum(1 for _ in read_sequenced(run_dir / "journal.sqlite"))
    except Exception:  # not created yet
        return 0


def _consume(broker: str, url: str, where: str) -> tuple[list[dict[str, object]], str]:
    flag = "--subject" if broker == "nats" else "--stream"
    script = str(ROOT / "examples" / "events_consumer.py")
    done = subprocess.run(
        [sys.executable, script, broker, "--url", url, flag, where, "--idle", "1.5"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


@pytest.mark.slow
def test_every_row_arrives_once_in_order_through_outages_and_a_crash(
    tmp_path: Path, brokers: tuple[Broker, Broker]
) -> None:
    nats, redis = brokers
    run_dir = tmp_path / "runs" / "evrun"
    child = forkserver.popen(
        _command(run_dir, nats, redis, 150, "20000x"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "run.log").open("wb"),
    )
    try:
        _wait(
            "the first rows acked",
            lambda: min(_acked(run_dir, "nats"), _acked(run_dir, "redis_streams")) >= 10,
        )
        nats.stop()
        redis.stop()
        held_at = _rows(run_dir)
        _wait("rows committed while both brokers are down", lambda: _rows(run_dir) >= held_at + 15)
        acked_down = (_acked(run_dir, "nats"), _acked(run_dir, "redis_streams"))
        assert max(acked_down) <= held_at  # nothing acknowledged by a broker that is down
        nats.start()
        redis.start()
        _wait(
            "the publishers caught up",
            lambda: min(_acked(run_dir, "nats"), _acked(run_dir, "redis_streams")) > held_at + 15,
        )
        assert child.poll() is None, "the run ended before its crash"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    # a crash between the broker's acknowledgement and the position's write: the restart
    # sends those rows again, with the same ids
    for name in ("nats", "redis_streams"):
        path = position_path(run_dir, name)
        found = read_position(path)
        assert found is not None
        path.write_text(json.dumps({"run_id": found.run_id, "seq": max(found.seq - 7, 0)}))
    behind = {name: lag for name, _, lag in publisher_lag(run_dir)}
    assert set(behind) == {"nats", "redis_streams"}
    assert min(behind.values()) >= 7  # what status shows: rows committed, not yet published
    restart = forkserver.run(
        _command(run_dir, nats, redis, 10, "max"), env=_env(), capture_output=True, timeout=600
    )
    assert restart.returncode == 0, restart.stderr.decode()[-2000:]

    journal = list(read_sequenced(run_dir / "journal.sqlite"))
    seqs = [seq for seq, _ in journal]
    assert seqs == list(range(1, len(seqs) + 1))
    run_id = "evrun"
    expected = [
        json.loads(message_of(seq, event, run_id, "btc_rf", "paper").payload)
        for seq, event in journal
    ]
    assert {e["kind"] for e in expected} >= {"live_bar", "restarted"}
    assert _acked(run_dir, "nats") == _acked(run_dir, "redis_streams") == len(seqs)
    assert publisher_lag(run_dir) == [("nats", len(seqs), 0), ("redis_streams", len(seqs), 0)]
    shown = forkserver.run(
        [sys.executable, "-m", "tradeloom.cli.main", "-q", "status", str(run_dir), "--json"],
        env=_env(), capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(shown.stdout)["events"] == [
        {"name": "nats", "acknowledged": len(seqs), "behind": 0},
        {"name": "redis_streams", "acknowledged": len(seqs), "behind": 0},
    ]

    got_nats, nats_log = _consume("nats", nats.url, f"test.{run_id}.>")
    got_redis, redis_log = _consume("redis", f"{redis.url}/0", f"test:{run_id}")
    assert got_nats == expected, nats_log
    assert got_redis == expected, redis_log
    # each broker dropped the resent copies itself: the consumer saw none
    assert nats_log.strip() == redis_log.strip() == f"{len(seqs)} rows, 0 duplicates dropped"
