"""A live run killed with ``kill -9`` and restarted sends every order once and ends holding
what the venue says it holds.

The emulator runs in the test; the run runs in a child process (``live_child.py``), so it
can really be killed: rows not yet committed are lost, a request is cut off mid-way. The
child trades on the wall clock; the emulator's bars are from 2024, so a bar is closed as
soon as the emulator has played it. The test plays one bar at a time and waits until the
child has processed it, so the child decides what an uninterrupted run decides.

Each scenario kills the run at its third order (a buy decided at bar 177):

- before the order is sent (its ``order`` row is not committed yet);
- right after its intent (``order_sent``) is committed, before the request leaves;
- after the venue filled it, its answer lost on the way back;
- while the request is held on its way in: the venue acts on it after the kill;
- after its fill is applied, before the fill is committed.

Then the same command starts the run again, it plays on and is stopped with SIGTERM.
Across the runs: the venue received each client order id at most once, and exactly once
when the intent could have left; every trade the venue made is counted once; the position
the journal books is the account's BTC balance; where the order was sent, the decisions
are the uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
import structlog

from tests import forkserver
from tests.live.live_child import CRASH_ENV, SKEW_ENV
from tests.live.live_emulated import SYMBOL, emulated_run, journal_tuples, make_bars, rows
from tradeloom.journal import read_rows
from tradeloom.journal.reader import EventFollower
from tradeloom.live.orders.ccxt_venue import _SKEW_SECONDS
from tradeloom.testing import (
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    ExchangeEmulator,
    Fault,
    Latency,
    Order,
    Timeout,
)

# Child processes, ~5-20 s a test, yet in a plain `pytest` (not marked slow): an order is
# never lost nor sent twice across a kill -9, the promise every live run rests on.

CHILD = Path(__file__).with_name("live_child.py")


START = 155
"""Bars closed when the run first starts: the model trains at once."""
END = 183
"""The emulator's position at the end. An uninterrupted run (the backtest's fold in
effect at bar 155, trained on rows 14..133, then the fold from bar 177) orders at bars
173 (a buy), 175, 177 (a buy), 179 and 181 (a buy, filled at 182: the run ends long);
`uninterrupted` runs it."""
NTH = 3
"""The order, or fill, each scenario kills the run at."""
WAIT = 150.0
"""Seconds any one thing may take: a child starts in ~4 s on an idle machine, but importing
the package took ~40 s on a 2-core machine shared by several test runs (a deadline, never
a wait: the polls return as soon as the thing is done)."""

STRATEGY = """\
name: live_rf
seed: 3
plugins: [tests.live.live_child]
data:
  kind: ccxt
  exchange: binance
  symbol: BTC/USDT
  timeframe: 1h
  start: "2024-01-01"
  cache_dir: {cache}
  api_key: ${{EMU_API_KEY}}
  secret: ${{EMU_API_SECRET}}
  options: {{recvWindow: {recv_window}}}
features:
  - {{kind: log_return, period: 1}}
  - {{kind: log_return, period: 6}}
  - {{kind: rsi, window: 14}}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {{n_estimators: 15, max_depth: 4, min_samples_leaf: 10, n_jobs: 1}}
  label: {{horizon: 3}}
  walk_forward: {{train_window: 120, retrain_every: 40}}
signal: {{kind: threshold, threshold: 0.04, min_interval: 2}}
risk:
  sizing: {{kind: fixed_fraction, fraction: 0.5}}
execution: {{kind: simulated, fee_bps: 10, initial_cash: 50000}}
live:
  stream: poll
  poll_seconds: 0.02
  close_delay_seconds: 0
  capital: 50000
  stale_after_bars: null
outputs: {{report: false}}
"""
"""The strategy of every crash test. No report.html: no test here reads one (the live
runs' reports are test_live_outputs's), and drawing it at each stop of each run and
restart cost more than a second of the child's time."""

Outcome = Literal["processed", "died", "trapped"]


def strategy_text(cache: Path, recv_window: int = 10_000) -> str:
    """The strategy, caching bars in ``cache``, its requests valid ``recv_window`` ms."""
    return STRATEGY.format(cache=cache, recv_window=recv_window)


def decisions(path: Path) -> dict[str, list[Any]]:
    """Orders and fills without their client order ids (they name the run directory)."""
    return {
        "orders": [(r["bar"], r["side"], r["reason"], r["quantity"]) for r in rows(path, "order")],
        "fills": [(r["bar"], r["side"], r["quantity"], r["price"]) for r in rows(path, "fill")],
    }


class CrashRig:
    """The emulator, the strategy file, and the child process trading it.

    Args:
        emulator: The venue, serving.
        tmp_path: Where the strategy, the bar cache, the run directory and the logs go.
        recv_window: The client's ``recvWindow`` (ms). A restarted run takes an order the
            venue does not have as never arrived this long plus the venue's allowance for
            clock skew (5 s; `skew_seconds`) after it was sent.
    """

    def __init__(self, emulator: ExchangeEmulator, tmp_path: Path, recv_window: int) -> None:
        self.emulator = emulator
        self.tmp = tmp_path
        self.strategy = tmp_path / "strategy.yaml"
        self.strategy.write_text(strategy_text(tmp_path / "cache", recv_window))
        self.run_dir = tmp_path / "run"
        self.journal = self.run_dir / "journal.sqlite"
        self.child: subprocess.Popen[bytes] | None = None
        self.exit_codes: list[int] = []
        self.args: tuple[str, ...] = ()
        """More arguments of ``tradeloom run`` (``--mode paper``: the last one wins)."""
        self.started_kinds = ("warm_up", "reconciled")
        """The rows that say a (re)start is over (a paper restart: ``restarted``)."""
        self._follower: EventFollower | None = None
        self._followed: list[tuple[str, int]] = []
        self._bars_before: set[int] = set()
        """The bars the journal had at the child's launch (a restart's catch-up)."""
        self.skew_seconds: float | None = None
        """The venue's allowance for clock skew in the child (`live_child.SKEW_ENV`); None:
        the venue's own 5 s."""
        self.polls_per_tick = 1
        """Kline requests a tick makes (a universe: one per symbol): the test plays the
        next bar only after the next tick has made them all."""

    # --- the child ------------------------------------------------------------------

    def launch(self, crash: str | None = None, *, may_die: bool = False) -> bool:
        """Start the run (or restart it: the same command); return once it has caught up.

        Args:
            crash: Where the child kills itself (``order:3``...; see ``live_child``).
            may_die: The child may reach ``crash`` before it has caught up: then False
                is returned (the child is not reaped).

        Returns:
            Whether the child caught up.
        """
        assert self.child is None, "the previous child is still running"
        env = {**os.environ, "EMU_API_KEY": DEFAULT_API_KEY, "EMU_API_SECRET": DEFAULT_SECRET}
        env.pop(CRASH_ENV, None)
        if crash is not None:
            env[CRASH_ENV] = crash
        env.pop(SKEW_ENV, None)
        if self.skew_seconds is not None:
            env[SKEW_ENV] = str(self.skew_seconds)
        journaled = self._journaled()
        seq = max((seq for seq, _, _ in journaled), default=0)
        self._bars_before = {bar for _, kind, bar in journaled if kind == "live_bar"}
        # the waits poll every few ms while the child runs: they read only the rows the
        # child committed since the last poll (reading every row took ~3 ms at bar 130)
        self._unfollow()
        self._follower = EventFollower(self.journal, {*self.started_kinds, "live_bar"})
        self._follower.seq = seq  # the rows after the launch only
        self._followed = []
        with self._log(len(self.exit_codes) + 1).open("wb") as log:
            self.child = forkserver.popen(
                [sys.executable, CHILD, self.emulator.url, self.strategy, self.run_dir, *self.args],
                env=env,
                cwd=self.tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started = self._wait(
            lambda: bool(self._new_bars(self.started_kinds)),
            "the run to start",
        )
        if not started and may_die:
            return False
        assert started, f"the run did not start\n{self.log_tail()}"
        last = self.emulator.exchange.position - 1
        outcome = self._settle(last if last >= START else None)
        if outcome == "died" and may_die:
            return False
        assert outcome == "processed", f"the run did not catch up\n{self.log_tail()}"
        return True

    def advance(self, trap: Callable[[], bool] | None = None) -> Outcome:
        """Play one bar; wait until the child has processed it, has died, or ``trap()``."""
        bar = self.emulator.exchange.position
        self.emulator.advance()
        return self._settle(bar, trap)

    def advance_to(self, position: int) -> None:
        """Play bars up to ``position``, the child processing each."""
        while self.emulator.exchange.position < position:
            outcome = self.advance()
            assert outcome == "processed", f"{outcome}\n{self.log_tail()}"

    def kill(self) -> None:
        """``kill -9`` the child."""
        assert self.child is not None
        self.child.send_signal(signal.SIGKILL)
        self.reap(-signal.SIGKILL)

    def stop(self) -> None:
        """Stop the child as an operator does (SIGTERM: after the tick in progress)."""
        assert self.child is not None
        self.child.send_signal(signal.SIGTERM)
        self.reap(0)

    def reap(self, expected: int) -> None:
        """Wait for the child's end (until reaped, its pid counts as alive); check its code."""
        assert self.child is not None
        code = self.child.wait(WAIT)
        self.child = None
        self._unfollow()
        self.exit_codes.append(code)
        assert code == expected, f"the child exited with {code}\n{self.log_tail()}"

    def close(self) -> None:
        """Kill a child still running (a test failed)."""
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait(WAIT)
        self.child = None
        self._unfollow()

    def _unfollow(self) -> None:
        """Close the journal the waits followed (a test may cut or copy it next)."""
        if self._follower is not None:
            self._follower.close()
            self._follower = None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the children wrote."""
        text = "".join(
            f"--- child {i}\n" + self._log(i).read_text(errors="replace")
            for i in range(1, len(self.exit_codes) + 2)
            if self._log(i).exists()
        )
        return "\n".join(text.splitlines()[-lines:])

    def _log(self, run: int) -> Path:
        return self.tmp / f"child-{run}.log"

    # --- waiting --------------------------------------------------------------------

    def _settle(self, bar: int | None, trap: Callable[[], bool] | None = None) -> Outcome:
        """Wait until ``bar`` (None: none) is journaled and the child's tick is over.

        An order's intent commits the bar's rows before the order leaves, so the
        ``live_bar`` row alone does not say the bar is done. The next tick's requests
        for new bars do: those that arrive after the row is seen come from a later
        tick than the one that processed the bar.
        """
        polls: list[int] = []

        def done() -> bool:
            if trap is not None and trap():
                return True
            if not polls:
                if bar is None or bar in self._bars_before or bar in self._new_bars(("live_bar",)):
                    polls.append(self._polls())
                return False
            return self._polls() >= polls[0] + self.polls_per_tick

        if not self._wait(done, f"bar {bar}"):
            return "died"
        return "trapped" if trap is not None and trap() else "processed"

    def _wait(self, done: Callable[[], bool], what: str) -> bool:
        """Poll ``done`` until it holds (True) or the child has died (False).

        The child runs on the wall clock in another process: there is no clock to move,
        only its journal and its requests to watch.
        """
        assert self.child is not None
        deadline = time.monotonic() + WAIT
        while not done():
            if self.child.poll() is not None:
                return done()
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {WAIT:.0f} s for {what}\n{self.log_tail()}")
            time.sleep(0.01)
        return True

    def _polls(self) -> int:
        return len(self.emulator.requests("GET /api/v3/klines"))

    def _new_bars(self, kinds: tuple[str, ...]) -> list[int]:
        """The bars of this child's journal rows of ``kinds`` (a start's, or
        ``live_bar``) committed since its launch, read as they are committed."""
        assert self._follower is not None
        with contextlib.suppress(Exception):  # not created yet, or being created
            self._followed += [(e.KIND, e.bar) for e in self._follower.read()]
        return [bar for kind, bar in self._followed if kind in kinds]

    def _journaled(self) -> list[tuple[int, str, int]]:
        """``(seq, kind, bar)`` of every row of the journal (none: not created yet)."""
        try:
            return [(row.seq, row.kind, row.bar) for row in read_rows(self.journal)]
        except Exception:  # not created yet, or being created
            return []

    # --- what the journal and the venue say -----------------------------------------

    def rows(self, kind: str) -> list[dict[str, Any]]:
        """The payloads of one event type in the run's journal, with their bar."""
        return rows(self.journal, kind)

    def order_ids(self) -> list[str]:
        """The client order ids of the engine's orders, in order."""
        return [r["id"] for r in self.rows("order")]

    def posted(self) -> list[str]:
        """The client order id of every order request the venue received, in order."""
        return [r.params["newClientOrderId"] for r in self.emulator.requests("POST /api/v3/order")]

    def venue_order(self, client_id: str) -> Order | None:
        """The venue's order of ``client_id`` (None: the venue never placed one)."""
        found = [o for o in self.emulator.exchange.orders() if o.client_order_id == client_id]
        assert len(found) <= 1
        return found[0] if found else None

    def wait_out_window(self, sent_at: float, recv_window: float) -> None:
        """Sleep until a restart takes an order sent at ``sent_at`` (epoch seconds) that the
        venue lacks as never arrived at once: the client's ``recv_window`` (seconds) and
        the child's allowance for clock skew have passed, and half a second more."""
        skew = _SKEW_SECONDS if self.skew_seconds is None else self.skew_seconds
        time.sleep(max(0.0, sent_at + recv_window + skew + 0.5 - time.time()))

    def wait_for_venue(self, placed: Callable[[Order | None], bool], client_id: str) -> None:
        """Wait until the venue's order of ``client_id`` is as ``placed`` says (the venue
        acts on a held request in its own time)."""
        deadline = time.monotonic() + WAIT
        while not placed(self.venue_order(client_id)):
            assert time.monotonic() < deadline, f"the venue's order {client_id}"
            time.sleep(0.01)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """The decisions of the run never killed (in this process, on the emulator's clock)."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(tmp)
        text = strategy_text(tmp / "cache")
        with emulated_run(tmp, monkeypatch, text=text, history=START) as run:
            runner = run.runner(tmp / "run")
            runner.start()
            try:
                while run.emulator.exchange.position < END + 10:
                    run.emulator.advance()
                    runner.tick()
            finally:
                runner.stop("done")
            assert run.emulator.errors == []
    return decisions(tmp / "run" / "journal.sqlite")


def _rig(tmp_path: Path, recv_window: int) -> Iterator[CrashRig]:
    with ExchangeEmulator(
        {SYMBOL: make_bars()}, {"USDT": Decimal(100_000)}, start=START, include_open_kline=False
    ) as emulator:
        crash_rig = CrashRig(emulator, tmp_path, recv_window)
        try:
            yield crash_rig
        finally:
            crash_rig.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[CrashRig]:
    """An emulator at bar `START` and a rig to run the strategy against it."""
    yield from _rig(tmp_path, recv_window=10_000)


@pytest.fixture
def quick_rig(tmp_path: Path) -> Iterator[CrashRig]:
    """As `rig`; a restarted run takes an order the venue lacks as never arrived after
    2.5 s (its 2 s ``recvWindow`` and a 0.5 s allowance for clock skew, not 5 s: the test
    waits the window out in wall time, each 50 ms a bar the child ticks)."""
    for crash_rig in _rig(tmp_path, recv_window=2_000):
        crash_rig.skew_seconds = 0.5
        yield crash_rig


def crash_at(rig: CrashRig, crash: str) -> int:
    """Start the run set to die at ``crash``; play bars until it does; return that bar."""
    rig.launch(crash)
    while rig.emulator.exchange.position < END:
        if rig.advance() == "died":
            rig.reap(-signal.SIGKILL)
            return rig.emulator.exchange.position - 1
    raise AssertionError(f"the run never reached {crash}")


def stall_order(rig: CrashRig, nth: int, fault: Fault) -> str:
    """Give the ``nth`` order request ``fault``; play until it arrives; return its id."""
    rig.emulator.faults.on_call("POST /api/v3/order", nth, fault)
    rig.launch()
    while (outcome := rig.advance(trap=lambda: len(rig.posted()) >= nth)) == "processed":
        assert rig.emulator.exchange.position < END
    assert outcome == "trapped", rig.log_tail()
    return rig.posted()[nth - 1]


def finish(rig: CrashRig, at_least: int = END) -> None:
    """Play to ``at_least``, then on until every fill counted is applied; stop the run."""
    rig.advance_to(at_least)
    while Counter(r["order_id"] for r in rig.rows("venue_fill")) != Counter(
        r["order_id"] for r in rig.rows("fill")
    ):
        rig.advance_to(rig.emulator.exchange.position + 1)
    rig.stop()
    (stopped,) = [r for r in rig.rows("run_stopped")]
    assert stopped["reason"] == "stopped by a signal"


def check_sent_once_and_reconciled(rig: CrashRig, never_sent: frozenset[str] = frozenset()) -> None:
    """Each intent reached the venue once, each trade counted once, the positions agree.

    Args:
        rig: The rig, its run stopped.
        never_sent: Orders whose request never left (the venue must not have them).
    """
    emulator = rig.emulator
    assert emulator.errors == []
    ids = rig.order_ids()
    assert len(ids) == len(set(ids))
    intents = Counter(r["id"] for r in rig.rows("order_sent"))
    assert set(intents) == set(ids) and set(intents.values()) == {1}
    posted = rig.posted()
    assert sorted(posted) == sorted(set(ids) - never_sent)
    assert sorted(o.client_order_id for o in emulator.exchange.orders()) == sorted(posted)
    # every trade of the venue counted once, and applied once
    counted = [str(r["trade_id"]) for r in rig.rows("venue_fill")]
    assert sorted(counted) == sorted(str(t.trade_id) for t in emulator.exchange.trades())
    assert len(counted) == len(set(counted))
    by_order = Counter(r["order_id"] for r in rig.rows("venue_fill"))
    assert Counter(r["order_id"] for r in rig.rows("fill")) == by_order
    assert rig.rows("fill_refused") == []
    # the position booked (buys net of their fee, paid in BTC) is what the account holds;
    # the account started with none
    position = sum(r["side"] * r["quantity"] for r in rig.rows("fill"))
    btc = emulator.exchange.balance("BTC")
    assert position == pytest.approx(float(btc.free + btc.locked), abs=1e-8)
    # what the venue said is stamped with the bar in progress, a restart's lookups too
    stamped = [
        b for _, b, _, k, _, _ in journal_tuples(rig.journal) if k in ("order_state", "venue_fill")
    ]
    assert min(stamped) > START


def check_same_decisions(rig: CrashRig, uninterrupted: dict[str, list[Any]]) -> None:
    """The killed and restarted run ordered and filled what the uninterrupted one did."""
    mine = decisions(rig.journal)
    last = rig.emulator.exchange.position - 1
    assert len(mine["orders"]) >= NTH + 2  # orders after the one it was killed at
    assert mine["orders"] == [o for o in uninterrupted["orders"] if o[0] <= last]
    assert mine["fills"] == [f for f in uninterrupted["fills"] if f[0] <= last]
    # it ends long: the position check is not 0 == 0
    assert sum(side * quantity for _, side, quantity, _ in mine["fills"]) > 1.0


def test_killed_before_the_order_is_sent(
    rig: CrashRig, uninterrupted: dict[str, list[Any]]
) -> None:
    bar = crash_at(rig, f"order:{NTH}")
    assert bar == uninterrupted["orders"][NTH - 1][0]
    # the bar's rows died with the process; nothing reached the venue
    assert len(rig.order_ids()) == NTH - 1
    assert len(rig.posted()) == NTH - 1
    rig.launch()
    finish(rig)
    # the restarted run decided the order again at the same bar and sent it once
    third = rig.order_ids()[NTH - 1]
    assert rig.posted().count(third) == 1
    check_sent_once_and_reconciled(rig)
    check_same_decisions(rig, uninterrupted)
    assert rig.exit_codes == [-signal.SIGKILL, 0]


def test_killed_after_the_intent_is_committed_before_the_request_leaves(
    quick_rig: CrashRig,
) -> None:
    rig = quick_rig
    crash_at(rig, f"intent:{NTH}")
    third = rig.order_ids()[-1]
    assert len(rig.order_ids()) == NTH
    assert third in {r["id"] for r in rig.rows("order_sent")}
    assert third not in rig.posted()
    rig.launch()
    # The restarted run cannot tell that the request never left: it looks the order up
    # at each bar, takes it as never arrived once the venue's window for it is over,
    # and never sends it again. That window is wall time (the client's recvWindow, 2 s
    # here, + the skew allowance, 0.5 s: `quick_rig`), not bars: a tick takes a few ms, so
    # the test plays a bar at most every 50 ms, or the emulator's bars would run out
    # before the window does.
    given_up_by = time.monotonic() + 2.5 + WAIT
    while not [r for r in rig.rows("order_cancelled") if r["order_id"] == third]:
        played = time.monotonic()
        assert rig.advance() == "processed"
        assert played < given_up_by, "still not given up"
        time.sleep(max(0.0, played + 0.05 - time.monotonic()))
    (rejected,) = [
        r for r in rig.rows("order_state") if r["client_id"] == third and r["state"] == "rejected"
    ]
    assert rejected["code"] == "ORDER_NEVER_ARRIVED"
    (cancelled,) = [r for r in rig.rows("order_cancelled") if r["order_id"] == third]
    assert cancelled["reason"] == "REJECTED ORDER_NEVER_ARRIVED"
    # a restart replays the rejection too (killed between bars: nothing in flight)
    rig.kill()
    rig.launch()
    finish(rig, at_least=max(END, rig.emulator.exchange.position + 4))
    check_sent_once_and_reconciled(rig, never_sent=frozenset({third}))
    assert rig.exit_codes == [-signal.SIGKILL, -signal.SIGKILL, 0]


def test_killed_after_the_venue_filled_the_order_before_its_answer(
    rig: CrashRig, uninterrupted: dict[str, list[Any]]
) -> None:
    third = stall_order(rig, NTH, Timeout(after_accept=True, max_seconds=WAIT))
    rig.wait_for_venue(lambda order: order is not None and order.status == "FILLED", third)
    rig.kill()
    assert [r for r in rig.rows("order_state") if r["client_id"] == third] == []
    rig.launch()
    finish(rig)
    states = [r["state"] for r in rig.rows("order_state") if r["client_id"] == third]
    # its intent committed, no state row: the restart's chain starts where the intent left
    # it (pending -> submitted), then the answer it never got (submitted -> unknown)
    assert states == ["submitted", "unknown", "accepted", "filled"]
    check_sent_once_and_reconciled(rig)
    check_same_decisions(rig, uninterrupted)


def test_killed_while_the_request_is_held_on_its_way_in(
    rig: CrashRig, uninterrupted: dict[str, list[Any]]
) -> None:
    third = stall_order(rig, NTH, Latency(6.0))
    rig.kill()
    assert rig.venue_order(third) is None
    # Restarted at once: the venue places the order while the run restarts or after it
    # has (it looks the order up at every bar until found, or until the venue's window
    # is over); either way it is counted once and never sent again.
    rig.launch()
    rig.wait_for_venue(lambda order: order is not None, third)
    finish(rig)
    states = [r["state"] for r in rig.rows("order_state") if r["client_id"] == third]
    assert states[:2] == ["submitted", "unknown"] and states[-1] == "filled"
    check_sent_once_and_reconciled(rig)
    check_same_decisions(rig, uninterrupted)


@dataclass
class KilledAtAFill:
    """One run killed as its third fill is applied (``fill:3``), restarted, finished.

    `tradeloom status` read it at every bar it processed, once it was killed and once the
    restart had stopped; what the journal said at those moments is kept beside each read.
    """

    rig: CrashRig
    pid: int
    running: list[tuple[dict[str, Any], int, float]]
    """Each read while it traded: the status, the journal's last bar and its position."""
    killed_bar: int
    killed: dict[str, Any]
    """The status once it was killed."""
    killed_journal: dict[str, Any]
    """What the journal said once it was killed (its last bar, position, third order)."""
    stopped: dict[str, Any]
    """The status once the restarted run was stopped."""


def _status(run_dir: Path) -> dict[str, Any]:
    from tradeloom.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["status", str(run_dir), "--json"]) == 0
    return dict(json.loads(out.getvalue()))


def _journal_position(rig: CrashRig) -> float:
    return sum(r["side"] * r["quantity"] for r in rig.rows("fill"))


@pytest.fixture(scope="module")
def killed_at_a_fill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KilledAtAFill]:
    """The run of `KilledAtAFill` (two tests read it: it is one scenario, ~10 s)."""
    tmp = tmp_path_factory.mktemp("killed_at_a_fill")
    for rig in _rig(tmp, recv_window=10_000):
        rig.launch(f"fill:{NTH}")
        assert rig.child is not None
        pid = rig.child.pid
        running = []
        while (outcome := rig.advance()) == "processed":
            # read while the other process writes the journal (WAL), its lock untouched
            running.append(
                (_status(rig.run_dir), rig.rows("live_bar")[-1]["bar"], _journal_position(rig))
            )
            assert rig.emulator.exchange.position < END
        assert outcome == "died"
        rig.reap(-signal.SIGKILL)
        killed_bar = rig.emulator.exchange.position - 1
        killed = _status(rig.run_dir)
        third = rig.order_ids()[NTH - 1]
        killed_journal = {
            "last_bar": rig.rows("live_bar")[-1]["bar"],
            "position": _journal_position(rig),
            "third": third,
            "third_states": [
                r["state"] for r in rig.rows("order_state") if r["client_id"] == third
            ],
            "counted": [r["order_id"] for r in rig.rows("venue_fill")].count(third),
            "filled": [r for r in rig.rows("fill") if r["order_id"] == third],
        }
        rig.launch()  # the same command continues the run, status or not
        finish(rig)
        stopped = _status(rig.run_dir)
        structlog.reset_defaults()  # main configured logging for the whole process
        yield KilledAtAFill(rig, pid, running, killed_bar, killed, killed_journal, stopped)


def test_killed_after_a_fill_before_it_is_committed(
    killed_at_a_fill: KilledAtAFill, uninterrupted: dict[str, list[Any]]
) -> None:
    run = killed_at_a_fill
    rig = run.rig
    assert run.killed_bar == uninterrupted["fills"][NTH - 1][0]
    third = run.killed_journal["third"]
    assert rig.order_ids()[NTH - 1] == third
    # the venue's trade was counted with the bar that sent the order; the engine's fill
    # died with the process
    assert run.killed_journal["counted"] == 1
    assert run.killed_journal["filled"] == []
    assert [r["order_id"] for r in rig.rows("fill")].count(third) == 1
    check_sent_once_and_reconciled(rig)
    check_same_decisions(rig, uninterrupted)
    assert rig.exit_codes == [-signal.SIGKILL, 0]


def test_status_reads_the_run_while_it_trades_and_after_a_kill_9(
    killed_at_a_fill: KilledAtAFill,
) -> None:
    run = killed_at_a_fill
    assert run.running  # read at every bar it processed before the kill
    for st, last_bar, position in run.running:
        assert (st["process"], st["pid"]) == ("running", run.pid)
        assert st["last_bar"] == last_bar
        assert sum(p["quantity"] for p in st["positions"]) == pytest.approx(position)
    st = run.killed
    assert (st["process"], st["pid"]) == ("not running", None)
    assert "killed (kill -9)" in st["process_detail"]
    # the bar that died mid-way left what it committed: status shows the journal's last bar
    assert st["last_bar"] == run.killed_journal["last_bar"]
    assert sum(p["quantity"] for p in st["positions"]) == pytest.approx(
        run.killed_journal["position"]
    )
    # the venue filled the third order (its state row committed with the venue's trade),
    # so it is not open; the engine's fill of it died with the process
    assert run.killed_journal["third_states"][-1] == "filled"
    assert st["open_orders"] == []
    # and the same command then continues the run, status or not
    assert run.stopped["process"] == "stopped"
