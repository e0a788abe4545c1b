"""How long a bar's orders take to leave, batched (``execution.orders.batch``) or one by one.

Two USD-M perpetuals on the loopback emulator, a `CcxtVenue` per symbol on one real
``ccxt.binance`` client, journaling through `JournalOrders` into one SQLite journal (each
intent committed before its request, as live): ``--orders`` market orders a bar over the
two symbols, ``--bars`` bars a run, ``--runs`` runs of each way, interleaved:

  batched: the bar's orders journaled, then sent through ``createOrders`` (Binance's
  ``POST /fapi/v1/batchOrders``, 5 to a request);

  reference: the same orders journaled and sent one ``createOrder`` each (the path
  without the setting), measured in the same run.

Printed: the median seconds a bar takes each way (from the first intent to the last
answer taken), the requests each sent, and the ratio of the reference to the batched.

    python benchmarks/bench_order_batch.py [--orders 10] [--bars 20] [--runs 3] [--smoke]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.domain import Order
from tradeloom.journal import RunIdentity, open_journal
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.order_batch import OrderBatch
from tradeloom.live.orders.order_journal import JournalOrders
from tradeloom.plugins.protocols_orders.client_ids import client_order_id
from tradeloom.testing import ExchangeEmulator

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
QUANTITY = {SYMBOLS[0]: 0.01, SYMBOLS[1]: 0.1}


def walk(level: float, seed: int, n: int = 400) -> pd.DataFrame:
    """Hourly bars of a random walk at ``level``."""
    rng = np.random.default_rng(seed)
    close = level * (1 + np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[level, close[:-1]]
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.uniform(100, 500, n),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
    ).round(2)


def run(emulator: ExchangeEmulator, folder: Path, bars: int, orders: int, *, batch: bool) -> float:
    """Send ``orders`` a bar for ``bars`` bars; return the median seconds of a bar."""
    journal = open_journal(
        folder / f"journal-{batch}-{time.monotonic_ns()}.sqlite", RunIdentity("b", "r", "live")
    )
    client = emulator.client(timeout=5000)
    shared = OrderBatch(5) if batch else None
    bar = emulator.exchange.position
    venues = {
        s: CcxtVenue(
            client,
            s,
            JournalOrders(journal, lambda: bar, symbol=s),
            bar_clock=lambda: bar,
            sleep=lambda _: None,
            batch=shared,
        )
        for s in SYMBOLS
    }
    for venue in venues.values():
        assert venue.calls.capabilities.can("createOrders")  # markets loaded: not timed
    price = {s: float(emulator.exchange.current_price(s.split("/")[0] + "USDT")) for s in SYMBOLS}
    numbers = itertools.count(1)
    tag = f"{time.monotonic_ns() % 10**8:08d}"  # the run's: ids never reused
    stamp = emulator.exchange.now_ms()
    times = []
    for b in range(bars):
        side = 1 if b % 2 == 0 else -1  # in and out again: the account stays small
        decided = [
            (
                s,
                Order(
                    client_order_id("b", tag, next(numbers)),
                    bar,
                    pd.Timestamp(stamp, unit="ms", tz="UTC"),
                    side,
                    QUANTITY[s],
                    "ENTRY",
                    price[s],
                ),
            )
            for s in itertools.islice(itertools.cycle(SYMBOLS), orders)
        ]
        start = time.perf_counter()
        for symbol, order in decided:
            venues[symbol].submit(order, batched=True)
        for venue in venues.values():
            venue.flush_batch()
        times.append(time.perf_counter() - start)
        journal.flush()
    journal.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--bars", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    add_smoke(parser, orders=4, bars=2, runs=1)
    args = parse_args(parser)
    print(describe("ccxt"))
    markets = {SYMBOLS[0]: walk(20_000.0, 5), SYMBOLS[1]: walk(2_000.0, 11)}
    with (
        tempfile.TemporaryDirectory() as tmp,
        ExchangeEmulator(markets, {"USDT": Decimal(10_000_000)}, start=200) as emulator,
    ):
        run(emulator, Path(tmp), 1, 2, batch=True)  # the journal's kernel compiles here
        batched, single = [], []
        before = {"batch": len(emulator.requests("POST /fapi/v1/batchOrders")), "single": 0}
        for _ in range(args.runs):  # interleaved, so that both see the same machine
            batched.append(run(emulator, Path(tmp), args.bars, args.orders, batch=True))
            single.append(run(emulator, Path(tmp), args.bars, args.orders, batch=False))
        before["batch"] = len(emulator.requests("POST /fapi/v1/batchOrders")) - before["batch"]
        before["single"] = len(emulator.requests("POST /fapi/v1/order"))
        assert emulator.errors == []
    b, s = statistics.median(batched), statistics.median(single)
    print(
        f"\n{args.orders} orders a bar over 2 perpetuals, {args.bars} bars a run, {args.runs} runs"
        f"\n  batched:   {b * 1e3:7.1f} ms a bar ({before['batch']} batch requests in all)"
        f"\n  reference: {s * 1e3:7.1f} ms a bar, one request an order "
        f"({before['single']} requests in all): {s / b:4.2f} x the batched"
    )


if __name__ == "__main__":
    main()
