"""A book backtest from recorded snapshots, imported hftbacktest events and a realism
profile (`tradeloom.backtest.book`, `tradeloom.plugins.data.book_events`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tradeloom.backtest.book import book_state
from tradeloom.core.kernels import book as B
from tradeloom.core.kernels.latency import LEG_SEND, latency_ms
from tradeloom.core.kernels.queue import QUEUE_POWER3
from tradeloom.domain import BookSnapshot
from tradeloom.errors import DataError
from tradeloom.kernels import jit
from tradeloom.plugins.data.book_events import (
    events_from_hftbacktest,
    events_from_snapshots,
    read_book_events,
)
from tradeloom.plugins.data.book_snapshots import snapshots_frame
from tradeloom.plugins.protocols_orders.realism import RealismProfile

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
LOT = 0.001
MS = 1_000_000


@pytest.fixture(autouse=True)
def _python_forms():
    jit.interpret(lambda func: True)
    yield
    jit.interpret(None)


def _snapshots():
    t0 = 1_700_000_000_000
    books = [
        (((100.00, 0.005), (99.99, 0.004)), ((100.01, 0.002), (100.02, 0.003))),
        (((100.00, 0.005), (99.98, 0.001)), ((100.02, 0.003), (100.03, 0.004))),
        (((100.00, 0.006), (99.98, 0.001)), ((100.02, 0.003), (100.03, 0.004))),
    ]
    return [BookSnapshot("BTC/USDT", t0 + 100 * i, *b) for i, b in enumerate(books)]


def test_snapshots_replay_as_level_updates():
    events = events_from_snapshots(snapshots_frame(_snapshots(), 2), available_after_ns=5 * MS)
    rows = list(zip(events.kind.tolist(), events.price.tolist(), events.qty.tolist(), strict=True))
    bid, ask = B.EV_BID_DEPTH, B.EV_ASK_DEPTH
    assert rows == [
        (bid, 99.99, 0.004), (bid, 100.00, 0.005), (ask, 100.01, 0.002), (ask, 100.02, 0.003),
        (bid, 99.99, 0.0), (bid, 99.98, 0.001),  # a level left, one came
        (ask, 100.01, 0.0), (ask, 100.03, 0.004),
        (bid, 100.00, 0.006),  # the third snapshot changed one level
    ]  # fmt: skip
    assert (events.local_ts - events.exch_ts == 5 * MS).all()


def test_a_market_order_on_recorded_snapshots_under_a_profile():
    profile = RealismProfile.model_validate(
        {"latency": {"send": 150, "report": 2}, "fees": {"taker_bps": 7.5, "maker_bps": -1}}
    )
    events = events_from_snapshots(snapshots_frame(_snapshots(), 2))
    s = book_state(events, tick_size=0.01, lot_size=LOT, profile=profile)
    B.advance(s, int(events.exch_ts[0]) + 10 * MS)
    B.submit_order(s, 1, 0.0, 4 * LOT, B.MARKET, B.TIF_GTC)
    B.advance(s, int(events.exch_ts[-1]) + 200 * MS)
    # 150 ms later the second snapshot is the book: 100.01 is gone, 3 at 100.02, 1 at 100.03
    got = [(round(s.ff[i, B.L_PRICE], 2), round(s.ff[i, B.L_QTY] / LOT)) for i in range(2)]
    assert got == [(100.02, 3), (100.03, 1)]
    assert s.ff[0, B.L_FEE] == pytest.approx(100.02 * 3 * LOT * 7.5e-4)


def test_the_profile_sets_the_kernel():
    profile = RealismProfile.model_validate(
        {"latency": {"send": {"kind": "uniform", "low_ms": 1, "high_ms": 9}, "seed": 4},
         "queue": {"model": "power3", "n": 2}}
    )  # fmt: skip
    events = events_from_snapshots(snapshots_frame(_snapshots(), 2))
    s = book_state(events, tick_size=0.01, lot_size=LOT, profile=profile, fee_bps=5)
    assert s.cfg[B.C_QUEUE] == QUEUE_POWER3 and s.cfg[B.C_QUEUE_N] == 2
    assert s.cfg[B.C_TAKER] == s.cfg[B.C_MAKER] == pytest.approx(5e-4)
    B.advance(s, int(events.exch_ts[0]))
    B.submit_order(s, 1, 0.0, LOT, B.MARKET, B.TIF_GTC)
    drawn = latency_ms(2, 1.0, 9.0, 4, 0, LEG_SEND)
    assert s.req[0, B.B_TS] - s.s[B.S_NOW] == round(drawn * MS)
    assert "queue power3 n=2" in profile.describe()


def test_hftbacktest_arrays_import(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        from book_stream import make_stream, tradeloom_columns
    finally:
        sys.path.remove(str(BENCH))
    stream = make_stream(500, seed=3)
    np.savez(tmp_path / "day.npz", data=stream)
    events = read_book_events(tmp_path / "day.npz")
    for mine, theirs in zip(events.columns(), tradeloom_columns(stream), strict=True):
        assert np.array_equal(mine, theirs)
    cleared = stream.copy()
    cleared["ev"][10] = (1 << 31) | (1 << 30) | 3
    with pytest.raises(DataError, match=r"^hftbacktest events: a depth clear event \(row 10\)"):
        events_from_hftbacktest(cleared)
    with pytest.raises(DataError, match=r"no 'data' array \(has other\)$"):
        np.savez(tmp_path / "other.npz", other=stream)
        read_book_events(tmp_path / "other.npz")


def test_a_bad_queue_setting_is_located(tmp_path):
    from tradeloom.errors import ConfigError
    from tradeloom.plugins.protocols_orders.realism import load_profile

    (tmp_path / "venue.yaml").write_text("name: v\nqueue:\n  model: powr\n  n: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_profile("venue.yaml", tmp_path)
    assert str(caught.value).splitlines() == [
        "venue.yaml:3:3 queue.model: Input should be 'risk_averse', 'power', 'power3' or "
        "'log', was 'powr'",
        "venue.yaml:4:3 queue.n: Input should be greater than 0, was 0",
    ]
