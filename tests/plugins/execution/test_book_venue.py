"""A strategy file's orders filled against a recorded book (``execution.fill: book``,
`tradeloom.plugins.execution.book_venue`): the same file on bars and on books, a market
order walking two levels, a resting limit order's queue fill as the kernel alone gives
it, and what validation refuses."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog

from tradeloom.cli.main import main
from tradeloom.core.costs import VenueCosts
from tradeloom.core.kernels import book as B
from tradeloom.domain import Bar, BookSnapshot, Cancellation, Fill, Order
from tradeloom.journal import read_frame
from tradeloom.kernels import jit
from tradeloom.plugins.data.book_events import BookEvents, events_from_snapshots
from tradeloom.plugins.data.book_snapshots import snapshots_frame
from tradeloom.plugins.execution.book_venue import BookVenue, book_state
from tradeloom.plugins.protocols_orders.order_params import OrdersParams
from tradeloom.plugins.protocols_orders.realism import RealismProfile

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "order_book_fills.yaml"
HOUR = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2024-01-01", tz="UTC")
NS = 1_000_000_000


@pytest.fixture
def python_forms() -> Iterator[None]:
    """The kernels' Python forms: nothing compiled for a few events."""
    jit.interpret(lambda func: True)
    yield
    jit.interpret(None)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``tradeloom ARGS`` in this process: its exit code and output."""
    saved = structlog.get_config()

    def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(cwd)
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["tradeloom", *map(str, args)], code, out, err)

    yield run
    structlog.configure(**saved)


def _venue(
    events: BookEvents,
    profile: RealismProfile | None = None,
    cash: float = 100_000.0,
    **orders: object,
) -> BookVenue:
    return BookVenue(
        events,
        tick_size=0.01,
        lot_size=0.001,
        profile=profile,
        fee_bps=10.0,
        maker_fee_bps=2.0,
        costs=VenueCosts.from_bps(10.0, 2.0, 0.0),
        orders=OrdersParams.model_validate(orders).kernel(),
        allow_short=False,
        initial_cash=cash,
        timeframe_seconds=3600,
    )


def _order(seq: int, side: int, quantity: float, **keys: object) -> Order:
    return Order(f"t-{seq:06d}", 0, T0, side, quantity, "ENTRY", 100.0, **keys)  # type: ignore[arg-type]


def _bar(i: int) -> Bar:
    return Bar(i, T0 + i * HOUR, 100.0, 100.0, 100.0, 100.0, 1.0, "BTC/USDT")


# --- a market order walks the book ----------------------------------------------------


@pytest.mark.usefixtures("python_forms")
def test_a_market_order_larger_than_the_best_level_walks_two_levels() -> None:
    book = BookSnapshot(
        "BTC/USDT",
        int(T0.value // 1_000_000),
        ((99.99, 1.0), (99.98, 2.0)),
        ((100.01, 1.0), (100.02, 2.0)),
    )
    venue = _venue(events_from_snapshots(snapshots_frame([book], 2)))
    venue.submit(_order(1, 1, 1.5))
    venue.submit(_order(2, -1, 3.5))  # more than the bids hold: the rest is cancelled

    events = venue.match(_bar(1), "open")

    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.order_id, f.price, f.quantity, f.liquidity) for f in fills] == [
        ("t-000001", 100.01, 1.0, "taker"),
        ("t-000001", 100.02, pytest.approx(0.5), "taker"),
        ("t-000002", 99.99, 1.0, "taker"),
        ("t-000002", 99.98, 2.0, "taker"),
    ]
    buy = fills[:2]
    vwap = sum(f.price * f.quantity for f in buy) / sum(f.quantity for f in buy)
    assert vwap == pytest.approx((100.01 * 1.0 + 100.02 * 0.5) / 1.5, rel=1e-15)
    assert [f.fee for f in fills] == pytest.approx(
        [100.01 * 1e-3, 100.02 * 0.5e-3, 99.99 * 1e-3, 99.98 * 2e-3], rel=1e-12
    )
    assert all(f.bar == 1 for f in fills)
    (cancel,) = [e for e in events if isinstance(e, Cancellation)]
    assert (cancel.order_id, cancel.remaining, cancel.reason) == (
        "t-000002",
        pytest.approx(0.5),
        "BOOK_DEPTH",
    )
    assert venue.pending() == []


@pytest.mark.usefixtures("python_forms")
@pytest.mark.parametrize(
    ("orders", "price", "fills", "cancelled"),
    [
        ({"limit": {"post_only": True}}, 100.01, [], (1.5, "POST_ONLY_WOULD_CROSS")),
        ({"limit": {"time_in_force": "IOC"}}, 100.01, [(100.01, 1.0)], (0.5, "UNFILLED_IOC")),
        ({"limit": {"time_in_force": "FOK"}}, 100.01, [], (1.5, "UNFILLED_FOK")),
        ({}, 100.01, [(100.01, 1.0)], None),  # GTC: the rest rests at its price
    ],
)
def test_a_limit_order_keeps_its_time_in_force_on_the_book(
    orders: dict[str, object], price: float, fills: list[tuple[float, float]], cancelled: object
) -> None:
    book = BookSnapshot("BTC/USDT", int(T0.value // 1_000_000), ((99.99, 1.0),), ((100.01, 1.0),))
    venue = _venue(events_from_snapshots(snapshots_frame([book], 1)), type="limit", **orders)
    venue.submit(_order(1, 1, 1.5, kind="limit", limit_price=price))

    events = venue.match(_bar(1), "open")

    assert [(e.price, e.quantity) for e in events if isinstance(e, Fill)] == fills
    ended = [(e.remaining, e.reason) for e in events if isinstance(e, Cancellation)]
    assert ended == ([] if cancelled is None else [cancelled])
    assert [o.id for o in venue.pending()] == ([] if cancelled else ["t-000001"])


@pytest.mark.usefixtures("python_forms")
def test_a_replaced_limit_order_is_cancelled_when_its_cancel_arrives() -> None:
    book = BookSnapshot("BTC/USDT", int(T0.value // 1_000_000), ((99.99, 1.0),), ((100.01, 1.0),))
    profile = RealismProfile.model_validate({"latency": {"cancel": 30, "report": 5}})
    venue = _venue(events_from_snapshots(snapshots_frame([book], 1)), profile, type="limit")
    venue.submit(_order(1, 1, 1.0, kind="limit", limit_price=99.99))
    assert venue.match(_bar(1), "open") == []  # it rests behind the level

    assert venue.cancel("t-000001", _bar(1), "REPLACED") is None  # on its way: 30 ms
    assert [o.id for o in venue.pending()] == ["t-000001"]
    (cancel,) = venue.match(_bar(2), "open")

    assert (cancel.order_id, cancel.bar, cancel.remaining, cancel.reason) == (
        "t-000001", 2, 1.0, "REPLACED",
    )  # fmt: skip
    assert venue.pending() == []


@pytest.mark.usefixtures("python_forms")
def test_a_spot_buy_is_cut_to_what_the_cash_buys_walking_the_book() -> None:
    book = BookSnapshot(
        "BTC/USDT", int(T0.value // 1_000_000), ((99.99, 1.0),), ((100.01, 1.0), (100.02, 2.0))
    )
    venue = _venue(events_from_snapshots(snapshots_frame([book], 2)), cash=150.0)
    venue.submit(_order(1, 1, 2.0))

    events = venue.match(_bar(1), "open")

    # 1 at 100.01 (100.11001 with its fee), then 49.88999 buys 0.498 at 100.02
    assert [(e.price, e.quantity) for e in events if isinstance(e, Fill)] == [
        (100.01, 1.0),
        (100.02, pytest.approx(0.498)),
    ]
    (cut,) = [e for e in events if isinstance(e, Cancellation)]
    assert (cut.remaining, cut.reason) == (pytest.approx(0.502), "INSUFFICIENT_CASH")
    assert 0.0 <= venue.cash < 100.02 * 1.001 * 0.001  # less than a lot's worth left


# --- a resting limit order's queue fill -----------------------------------------------


def _queue_events() -> BookEvents:
    """A book at 100.00 / 100.01 (5 lots each), then at 1 h 10 ms on, sell trades at the
    bid and its level shrinking, so a bid resting there moves up its queue and fills."""
    rows = [(B.EV_BID_DEPTH, 0, 100.00, 5.0), (B.EV_ASK_DEPTH, 0, 100.01, 5.0)]
    for k in range(1, 8):
        at = 3600 * 1000 + 10 * k  # ms
        rows.append((B.EV_SELL_TRADE, at, 100.00, 1.0))
        rows.append((B.EV_BID_DEPTH, at, 100.00, max(5.0 - 1.5 * k, 1.0)))
    kind, ms, price, qty = (np.array(c) for c in zip(*rows, strict=True))
    exch = (ms * 1_000_000 + T0.value).astype(np.int64)
    seen = np.full(len(kind), B.SEEN_EXCH | B.SEEN_LOCAL, dtype=np.int64)
    return BookEvents(kind.astype(np.int64), seen, exch, exch + 1_000_000, price, qty)


@pytest.mark.usefixtures("python_forms")
@pytest.mark.parametrize("model", ["risk_averse", "power3"])
def test_a_limit_order_fills_on_the_book_path_as_the_kernel_alone_fills_it(model: str) -> None:
    profile = RealismProfile.model_validate(
        {
            "latency": {"send": {"kind": "lognormal", "median_ms": 5, "sigma": 0.5}, "report": 3},
            "queue": {"model": model},
        }
    )
    seq = 7
    venue = _venue(_queue_events(), profile, type="limit")
    venue.submit(_order(seq, 1, 2.0, kind="limit", limit_price=100.004))  # a bid at 100.00
    through_the_book = [e for e in venue.match(_bar(1), "open") if isinstance(e, Fill)]

    st = book_state(
        _queue_events(), tick_size=0.01, lot_size=0.001, profile=profile, fee_bps=10.0,
        maker_fee_bps=2.0, max_orders=16, max_fills=16,
    )  # fmt: skip
    decided = T0.value + 3600 * NS
    B.advance(st, decided)
    st.s[B.S_ORDERS] = seq  # the order's number draws its latency, as on bars
    assert B.submit_order(st, 1, 100.00, 2.0, B.LIMIT, B.TIF_GTC) == seq
    B.advance(st, decided + 3600 * NS)
    alone = [
        (round(float(st.ff[k, B.L_PRICE]), 2), float(st.ff[k, B.L_QTY]), float(st.ff[k, B.L_FEE]))
        for k in range(int(st.s[B.S_FILLS]))
    ]

    assert alone  # the queue was passed: at least one fill
    assert [(f.price, f.quantity) for f in through_the_book] == [(p, q) for p, q, _ in alone]
    # the fee of the level's quoted price (the kernel's is of tick x index)
    assert [f.fee for f in through_the_book] == pytest.approx([x for *_, x in alone], rel=1e-12)
    assert all(f.liquidity == "maker" for f in through_the_book)
    assert sum(q for _, q, _ in alone) == pytest.approx(2.0)


# --- the same file on bars and on books -------------------------------------------------


@pytest.mark.slow
def test_the_same_file_runs_on_bars_and_on_the_book(cli, tmp_path: Path) -> None:
    book = cli("run", EXAMPLE, "--out", tmp_path / "book", "--quiet")
    bars = cli(
        "run", EXAMPLE, "--set", "execution.fill=next_open", "--out", tmp_path / "bars", "--quiet"
    )
    assert (book.returncode, bars.returncode) == (0, 0), book.stderr + bars.stderr

    def frames(run: str, kind: str) -> pd.DataFrame:
        return read_frame(tmp_path / run / "journal.sqlite", kind)

    # the decisions are the bars': the same signals at the same bars
    signals = [frames(r, "signal")[["bar", "direction", "probability"]] for r in ("book", "bars")]
    pd.testing.assert_frame_equal(signals[0], signals[1])

    fills = frames("book", "fill")
    orders = frames("book", "order").set_index("id")
    assert len(fills) > len(orders.index.intersection(fills["order_id"]))  # walks: several fills
    snapshots = pd.read_parquet(ROOT / "examples" / "data" / "btc_book.parquet")
    for fill in fills.itertuples():
        decided = int(orders.loc[fill.order_id, "bar"])
        snapshot = snapshots.iloc[decided + 1]  # in force at the decision's close + 20 ms
        side = "ask" if fill.side > 0 else "bid"
        levels = {round(float(snapshot[f"{side}_price_{i}"]), 2) for i in range(5)}
        assert round(fill.price, 2) in levels, (fill, levels)
        assert fill.bar == decided + 1
        assert fill.fee == pytest.approx(fill.price * fill.quantity * 2e-4, rel=1e-9)
    walked = fills.groupby("order_id")["price"].nunique()
    assert (walked >= 2).any()
    bar_fills = frames("bars", "fill")
    assert not np.isin(bar_fills["price"].round(2), fills["price"].round(2)).all()


@pytest.mark.slow
def test_the_example_says_it_is_long_only_and_its_down_signals_are_no_refusals(
    cli, tmp_path: Path
) -> None:
    """``signal.sides: long``: each down signal from flat is a hold, not a SHORT_NOT_ALLOWED
    refusal (which changed nothing): the run is the one of ``sides: both`` but for them."""
    long = cli("run", EXAMPLE, "--out", tmp_path / "long", "--quiet")
    both = cli("run", EXAMPLE, "--set", "signal.sides=both", "--out", tmp_path / "both", "--quiet")
    assert (long.returncode, both.returncode) == (0, 0), long.stderr + both.stderr

    def rows(run: str, kind: str) -> pd.DataFrame:
        return read_frame(tmp_path / run / "journal.sqlite", kind)

    refused = {r: rows(r, "rejection")["code"].value_counts().to_dict() for r in ("long", "both")}
    assert refused == {"long": {}, "both": {"SHORT_NOT_ALLOWED": 166}}
    holds = rows("long", "risk_decision").query("outcome == 'hold'")["reason"]
    assert (holds == "signal.sides is long: no short position").sum() == 166
    for name in ("equity.csv", "trades.csv"):
        assert (tmp_path / "long" / name).read_bytes() == (tmp_path / "both" / name).read_bytes()
    orders = [rows(r, "order").drop(columns=["id", "seq"]) for r in ("long", "both")]
    pd.testing.assert_frame_equal(orders[0], orders[1])
    assert rows("long", "fill")["price"].tolist() == rows("both", "fill")["price"].tolist()


# --- what validation refuses ------------------------------------------------------------


def _strategy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """The example in ``tmp_path`` (with its data), edited."""
    (tmp_path / "data").mkdir()
    for name in ("book_bars.csv", "btc_book.parquet"):
        shutil.copy(ROOT / "examples" / "data" / name, tmp_path / "data" / name)
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "strategy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _at(path: Path, needle: str, key: str) -> str:
    """``FILE:LINE:COL`` of the value after ``needle``'s line's key."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return f"{path.name}:{n}:{line.index(key) + len(key) + 2}"
    raise AssertionError(needle)


def _key(path: Path, needle: str) -> str:
    """``FILE:LINE:COL`` of the key on ``needle``'s line."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return f"{path.name}:{n}:{len(line) - len(line.lstrip()) + 1}"
    raise AssertionError(needle)


def test_a_missing_book_is_refused_at_its_key(cli, tmp_path: Path) -> None:
    path = _strategy(tmp_path, ("source: data/btc_book.parquet", "source: data/gone.parquet"))
    proc = cli("validate", path.name, cwd=tmp_path)
    where = _at(path, "source: data/gone.parquet", "source:")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"{where} execution.book.source: file not found: {tmp_path / 'data' / 'gone.parquet'}\n"
    )


def test_a_book_of_another_market_is_refused(cli, tmp_path: Path) -> None:
    path = _strategy(tmp_path, ("  symbol: BTC/USDT", "  symbol: ETH/USDT"))
    proc = cli("validate", path.name, cwd=tmp_path)
    where = _at(path, "source: data/btc_book.parquet", "source:")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"{where} execution.book.source: data/btc_book.parquet records BTC/USDT, and the "
        "strategy trades ETH/USDT (data.symbol)\n"
    )


def test_what_the_book_replay_does_not_model_is_refused_at_its_key(cli, tmp_path: Path) -> None:
    path = _strategy(
        tmp_path,
        (
            "  fee_bps: 2 ",
            "  allow_short: true\n  orders: {slicing: {kind: twap, children: 2}}\n  fee_bps: 2 ",
        ),
    )
    proc = cli("validate", path.name, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [
        f"{_at(path, 'allow_short: true', 'allow_short:')} execution.allow_short: fill: book "
        "trades long-only: shorts are not modelled; use fill: next_open",
        f"{_at(path, 'slicing:', 'slicing:')} execution.orders.slicing: fill: book sends no "
        "sliced orders; use fill: next_open",
    ]


def test_an_exit_resting_at_the_venue_is_refused(cli, tmp_path: Path) -> None:
    path = _strategy(
        tmp_path, ("      max_drawdown: 0.25\n", "      max_drawdown: 0.25\n  stop_loss: 0.02\n")
    )
    proc = cli("validate", path.name, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"{_at(path, 'stop_loss: 0.02', 'stop_loss:')} risk.stop_loss: fill: book cannot fill "
        "an exit resting at the venue (a bar's range triggers it, and a book has no bar): "
        "remove it, or use fill: next_open\n"
    )


def test_a_book_that_does_not_cover_the_bars_is_refused(cli, tmp_path: Path) -> None:
    path = _strategy(tmp_path)
    short = pd.read_parquet(tmp_path / "data" / "btc_book.parquet").iloc[:600]
    short.to_parquet(tmp_path / "data" / "btc_book.parquet", index=False)
    where = _at(path, "source: data/btc_book.parquet", "source:")
    line = (
        f"{where} execution.book.source: data/btc_book.parquet covers 2024-01-01T00:00Z "
        "to 2024-01-25T23:00Z; the bars need 2024-01-01T01:00Z (the first bar's close) "
        "to 2024-02-19T23:00Z (the last bar's open): record more, or shorten the data\n"
    )

    proc = cli("run", path.name, "--out", tmp_path / "run", "--quiet", cwd=tmp_path)

    assert (proc.returncode, proc.stderr) == (2, line)


def test_paper_is_refused_at_the_fill_key(cli, tmp_path: Path) -> None:
    path = _strategy(tmp_path)
    proc = cli("validate", path.name, "--mode", "paper", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        f"{_at(path, 'fill: book', 'fill:')} execution.fill: fill: book fills backtests only; "
        "--mode paper fills at its venue: set fill: next_open (or --set "
        "execution.fill=next_open)"
    ) in proc.stderr.splitlines()


def test_fill_book_needs_its_book(cli, tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    cut = text.index("  book:\n")
    path = _strategy(tmp_path, (text[cut:], ""))
    proc = cli("validate", path.name, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.endswith(
        "execution: fill: book needs book: {source: <recorded book file>, tick_size, lot_size}\n"
    )
