"""A perpetual trades live on the emulator's USD-M swap market through ccxt's unified swap
API: longs and shorts, funding booked by the core as the exchange pays it, positions (not
balances) reconciled at a restart after ``kill -9``, also ``kill -9`` right after an order
was sent (its trades read through the fallback for fetchOrderTrades, which Binance USD-M
has not got), and a market without what a live run needs refused before anything is sent.

The strategy reads ``BTC/USDT:USDT`` bars and funding rates from the emulator (``/fapi``)
and sends its orders there (``POST /fapi/v1/order``); the emulator's clock drives the
run (`live_emulated`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog

from tests.live.live_emulated import (
    HISTORY,
    STRATEGY,
    crash,
    emulated_run,
    make_bars,
    rows,
    tick_until,
)
from tradeloom.backtest.pipeline import run_backtest
from tradeloom.cli.main import main
from tradeloom.domain import Bars, RunInfo, Universe
from tradeloom.engine.events import Recorder
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import UserError
from tradeloom.journal import RunIdentity, open_journal
from tradeloom.plugins.data.auxiliary import AuxiliarySeries
from tradeloom.schemas import load_strategy
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator, Reject

SWAP = "BTC/USDT:USDT"
END = 200
"""The last bar the runs play: the first fold trains at bar 123, a few dozen ticks after."""

PERP = (
    STRATEGY.replace("symbol: BTC/USDT\n", f"symbol: {SWAP}\n")
    .replace(
        "  secret: ${EMU_API_SECRET}\n",
        "  secret: ${EMU_API_SECRET}\n"
        "  auxiliary:\n"
        "    - {name: funding, kind: funding_rate, available_after: 0s}\n",
    )
    .replace(
        "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}",
        "execution:\n"
        "  kind: simulated\n"
        "  market: swap\n"
        "  funding: funding\n"
        "  fee_bps: 5\n"
        "  initial_cash: 50000\n"
        "  margin: {initial: 0.5, maintenance: 0.01, leverage: 2}",
    )
)


@pytest.fixture(autouse=True)
def _cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def sine_funding() -> pd.Series:
    """A rate every 8 hours over the bars, from -0.1% to +0.1% and back (both signs)."""
    index = pd.date_range("2024-01-01", periods=420 // 8 + 1, freq="8h", tz="UTC")
    return pd.Series(np.round(0.001 * np.sin(np.arange(len(index)) / 3.0), 6), index=index)


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    return emulated_run(
        tmp_path, monkeypatch, text=PERP, symbol=SWAP, bars=make_bars(),
        funding_rates={SWAP: sine_funding()}, taker_fee=Decimal("0.0005"),
    )  # fmt: skip


def _decisions(journal: Path) -> dict[str, list[Any]]:
    fields = {
        "order": ("bar", "side", "reason", "quantity"),
        "fill": ("bar", "price", "quantity", "fee"),
        "funding": ("bar", "rate", "position", "amount"),
    }
    return {
        kind: [tuple(r[f] for f in names) for r in rows(journal, kind)]
        for kind, names in fields.items()
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The run never stopped, and what the exchange holds after it."""
    tmp = tmp_path_factory.mktemp("perp_whole")
    with pytest.MonkeyPatch.context() as monkeypatch, _run(tmp, monkeypatch) as run:
        whole = run.runner(tmp / "whole")
        whole.start()
        tick_until(run, whole, END)
        position = whole.session_or_fail.engine.portfolio.position_of(0)
        whole.stop("done")
        exchange = run.emulator.exchange
        assert run.emulator.errors == []
        assert run.emulator.requests("POST /fapi/v1/order")
        assert not run.emulator.requests("POST /api/v3/order")
        return {
            "path": tmp / "whole" / "journal.sqlite",
            "strategy": run.strategy,
            "journal": _decisions(tmp / "whole" / "journal.sqlite"),
            "position": position,
            "held": exchange.perp_position("BTCUSDT"),
            "leverage": exchange.perp_position("BTCUSDT").leverage,
            "payments": exchange.funding_payments(),
        }


def test_a_live_perpetual_goes_short_and_books_the_funding_the_exchange_pays(
    uninterrupted: dict[str, Any],
) -> None:
    journal = uninterrupted["journal"]
    positions = [p for _, _, p, _ in journal["funding"]]
    assert any(p < 0 for p in positions) and any(p > 0 for p in positions)  # short and long
    assert uninterrupted["leverage"] == 2  # ceil(1 / margin.initial), set at the start
    # each funding time the exchange paid on the position is the one the core booked; the
    # exchange paid bar END's as it opened, the core books it when that bar has closed
    end_ms = make_bars().index[END].value // 1_000_000
    paid = [float(amount) for at, _, _, amount in uninterrupted["payments"] if at < end_ms]
    booked = [amount for *_, amount in journal["funding"]]
    assert len(paid) == len(booked) > 3
    assert booked == pytest.approx(paid, abs=1e-8)  # the exchange rounds to 8 decimals
    # the position the journal ends with is the exchange's
    held = uninterrupted["held"]
    assert float(held.amount) == pytest.approx(uninterrupted["position"], abs=1e-12)


@pytest.mark.parametrize("down", [0, 9])
def test_a_kill_9_mid_position_restarts_reconciling_the_exchanges_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: dict[str, Any], down: int
) -> None:
    """``down``: bars that close while the run is down (9: a funding time among them, paid
    by the exchange then, booked by the restarted run as it catches up)."""
    with _run(tmp_path, monkeypatch) as run:
        first = run.runner(tmp_path / "cut")
        first.start()
        tick_until(run, first, 130)
        while first.session_or_fail.engine.portfolio.position_of(0) == 0.0:
            tick_until(run, first, run.emulator.exchange.position + 1)
        crash(first)
        if down:
            run.emulator.advance(down)
        second = run.runner(tmp_path / "cut")
        second.start()
        tick_until(run, second, END)
        second.stop("done")
        assert run.emulator.errors == []
        payments = run.emulator.exchange.funding_payments()
    cut = tmp_path / "cut" / "journal.sqlite"
    (reconciled,) = rows(cut, "reconciled")
    assert reconciled["position"] != 0.0
    assert reconciled["venue_position"] == pytest.approx(reconciled["position"], abs=1e-12)
    assert reconciled["base_balance"] is None  # NaN: a swap's balance is not its position
    mine = _decisions(cut)
    if down == 0:
        assert mine == uninterrupted["journal"]
    else:
        # orders decided on bars closed while down fill at the restart's price; the
        # funding the exchange paid, the run booked, each once
        assert [o[:3] for o in mine["order"]] == [o[:3] for o in uninterrupted["journal"]["order"]]
        end_ms = make_bars().index[END].value // 1_000_000
        paid = [float(amount) for at, _, _, amount in payments if at < end_ms]
        assert [f[3] for f in mine["funding"]] == pytest.approx(paid, abs=1e-8)


def test_a_position_the_journal_does_not_know_refuses_the_restart_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with _run(tmp_path, monkeypatch) as run:
        first = run.runner(tmp_path / "live")
        first.start()
        tick_until(run, first, 110)  # before the first fold: flat
        crash(first)
        run.emulator.client().create_order(SWAP, "market", "sell", 0.5)  # a manual short
        capsys.readouterr()
        live = ("run", str(run.strategy), "--mode", "live", "--out", str(tmp_path / "live"))
        code = main(["-q", *live])
        out, err = capsys.readouterr()
    # the tolerance: what the minimum notional (5 USDT) buys at the price, over a lot
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{tmp_path / 'live'}: the journal's position is 0 BTC, the exchange's position in "
        f"{SWAP} is -0.5 BTC (tolerance 0.000267); refusing to trade: find the difference (a "
        "manual trade? another run on this account?) before restarting"
    ]


def test_a_new_live_run_refuses_an_account_already_holding_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _run(tmp_path, monkeypatch) as run:
        run.emulator.exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=Decimal("0.25"))
        runner = run.runner(tmp_path / "live")
        with pytest.raises(UserError) as refused:
            runner.start()
        runner.inbox.release_pid()
    assert str(refused.value) == (
        f"{tmp_path / 'live'}: the account holds a position of 0.25 BTC in {SWAP}; a new "
        "live run starts flat: close it (or trade another account) before starting"
    )


def test_live_refuses_a_perpetuals_stops_resting_at_the_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its exits go at the bar close live, so its backtest must fill them so too."""
    with _run(tmp_path, monkeypatch) as run:
        stop = ("--set", "risk.stop_loss=0.02")
        code = main(["validate", str(run.strategy), "--mode", "live", *stop])
        err = capsys.readouterr().err
        assert code == 2
        line = 2 + PERP.splitlines().index("execution:")  # no orders key: the section
        assert err.splitlines()[-1] == (
            f"{run.strategy}:{line}:3 execution.orders.stops: --mode live sends a perpetual's "
            "stop-loss and take-profit exits (partial ones too) as market orders at the bar "
            "close (its stops do not rest at the exchange yet); set execution.orders.stops: "
            "bar_close, so that its backtest fills them so too"
        )
        close = ("--set", "execution.orders.stops=bar_close")
        assert main(["validate", str(run.strategy), "--mode", "live", *stop, *close]) == 0


class _Frame:
    """A data source of fixed bars and funding rates (the backtest of what live saw)."""

    def __init__(self, bars: Bars, funding: pd.Series) -> None:
        self.bars = bars
        times = funding.index.as_unit("ns").asi8
        self.series = (AuxiliarySeries("funding", times, funding.to_numpy(float), 0),)

    def load_universe(self) -> Universe:
        return Universe((self.bars,), self.bars.frame.index)

    def auxiliary_series(self) -> tuple[AuxiliarySeries, ...]:
        return self.series


def test_the_live_perpetual_makes_its_backtests_decisions_and_books_its_funding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: dict[str, Any]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    config, plugins = load_strategy(uninterrupted["strategy"], ())
    frame = make_bars().iloc[:END]
    frame.index = frame.index.as_unit("ns")
    data = _Frame(Bars(frame, SWAP, "1h", 3600), sine_funding())
    pipeline = replace(build_pipeline(config), data=data)  # type: ignore[arg-type]
    path = tmp_path / "backtest.sqlite"
    journal = open_journal(path, RunIdentity("live_rf", "bt", "backtest"))
    info = RunInfo("bt", "live_rf", "backtest", str(tmp_path))
    run_backtest(pipeline, Recorder(journal, plugins.hook, info), "live_rf-bt", driver="per_bar")
    journal.close()
    live, reference = uninterrupted["journal"], _decisions(path)
    assert [o[:3] for o in live["order"]] == [o[:3] for o in reference["order"]]
    assert any(o[2] == "REVERSE" for o in live["order"])  # long to short and back
    assert [f[:2] for f in live["fill"]] == [f[:2] for f in reference["fill"]]
    # live rounds each order to the 0.00001 lot: a reversal closes one rounded position
    # and opens another, so two lots apart at most
    assert [f[2] for f in live["fill"]] == pytest.approx(
        [f[2] for f in reference["fill"]], abs=2e-5
    )
    # the same funding times on the same positions (rounded to the lot live)
    assert [f[:2] for f in live["funding"]] == [f[:2] for f in reference["funding"] if f[0] >= 100]
    live_amounts = [f[3] for f in live["funding"]]
    assert live_amounts == pytest.approx(
        [f[3] for f in reference["funding"] if f[0] >= 100], rel=2e-5
    )


@pytest.mark.slow  # a child process
def test_a_live_perpetual_killed_with_kill_9_right_after_an_order_was_sent_restarts(
    tmp_path: Path, uninterrupted: dict[str, Any]
) -> None:
    """The real command in a child process, SIGKILLed as the exchange's answer to its first
    order came back (filled; the journal has the intent only), then started again with the
    same command. The restart finds the order by client order id and counts its trades:
    ccxt's binance lists fetchOrderTrades and refuses it for a swap (NotSupported, which
    stopped the restart with exit 1), so they are read with fetchMyTrades from the order's
    time (`tradeloom.live.orders.ccxt_capabilities`). It then trades on to the end as
    the run never killed does: each client order id sent once, the journal's position the
    exchange's."""
    import signal

    from tests.live.test_crash import CrashRig

    class PerpRig(CrashRig):
        def _polls(self) -> int:
            return len(self.emulator.requests("GET /fapi/v1/klines"))

        def posted(self) -> list[str]:
            requests = self.emulator.requests("POST /fapi/v1/order")
            return [r.params["newClientOrderId"] for r in requests]

    text = (
        PERP.replace("seed: 3\n", "seed: 3\nplugins: [tests.live.live_child]\n")
        .replace("cache_dir: cache", f"cache_dir: {tmp_path / 'cache'}")
        .replace("  stream: poll\n", "  stream: poll\n  poll_seconds: 0.02\n")
        .replace(  # the child's client is not the emulator's: it is told the swap markets
            "  auxiliary:\n", "  options: {fetchMarkets: {types: [spot, linear]}}\n  auxiliary:\n"
        )
    )
    with ExchangeEmulator(
        {SWAP: make_bars()},
        {"USDT": Decimal("100000")},
        start=HISTORY,
        include_open_kline=False,
        funding_rates={SWAP: sine_funding()},
        taker_fee=Decimal("0.0005"),
    ) as emu:
        rig = PerpRig(emu, tmp_path, 10_000)
        rig.strategy.write_text(text)
        try:
            rig.launch(crash="sent:1")
            while rig.child is not None and rig.advance() == "processed":
                pass
            rig.reap(-signal.SIGKILL)
            (killed,) = rig.posted()
            # the journal has its intent and nothing of the exchange's answer
            assert killed in [r["id"] for r in rig.rows("order_sent")]
            assert not [r for r in rig.rows("order_state") if r["client_id"] == killed]
            rig.launch()
            rig.advance_to(END)
            rig.stop()
        finally:
            rig.close()
        assert emu.errors == []
        posted = rig.posted()
        held = emu.exchange.perp_position("BTCUSDT")
        asked = emu.requests("GET /fapi/v1/userTrades")
    journal = rig.journal
    assert any("startTime" in r.params for r in asked)  # the fallback read its trades
    assert len(posted) == len(set(posted)) > 1 and posted[0] == killed
    states = [r["state"] for r in rows(journal, "order_state") if r["client_id"] == killed]
    assert states[-1] == "filled"
    position = sum(r["side"] * r["quantity"] for r in rows(journal, "fill"))
    assert float(held.amount) == pytest.approx(position, abs=1e-9)
    assert _decisions(journal) == uninterrupted["journal"]


def test_a_market_without_what_a_live_run_needs_is_refused_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked, not assumed: an exchange that refused fetchMyTrades for a swap could count
    neither a poll's trades nor a restarted order's (it is also fetchOrderTrades' fallback)."""
    from tradeloom.live.orders import ccxt_capabilities

    known = ccxt_capabilities.REFUSED["binance"]
    refusing = {"binance": {**known, "swap": known["swap"] | {"fetchMyTrades"}}}
    monkeypatch.setattr(ccxt_capabilities, "REFUSED", refusing)
    with _run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "live")
        with pytest.raises(UserError) as refused:
            runner.start()
        runner.inbox.release_pid()
        assert not run.emulator.requests("POST /fapi/v1/order")
        strategy = run.strategy
    assert str(refused.value) == (
        f"{strategy}:4:3 data: binance swap {SWAP} cannot be traded live: ccxt has no "
        "fetchMyTrades for it (tradeloom.live.orders.ccxt_capabilities lists what a "
        "live run needs)"
    )


def test_a_restart_books_a_perpetuals_order_found_nowhere_with_its_fee_in_quote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A perpetual's limit entry rests acknowledged (no venue id journaled) at a kill,
    # fills while the run is down, and is found nowhere by its client id at the restart:
    # the reconcile books the exchange's position to it. A swap's fee is charged in USDT
    # on the notional, the position is the quantity filled: the booking pays the market's
    # maker rate (ccxt's for Binance USD-M, 0.02%, the emulator's here) in quote. Before,
    # fee 0: the journal's cash stayed above the account's by it.
    from tests.live.test_restart_and_kill_edges import drive, no_sleep

    no_sleep(monkeypatch)
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    text = PERP.replace(
        "  initial_cash: 50000\n",
        "  initial_cash: 50000\n  orders: {type: limit, limit: {offset_bps: 2}}\n",
    )
    with emulated_run(
        tmp_path, monkeypatch, text=text, symbol=SWAP, bars=make_bars(),
        funding_rates={SWAP: sine_funding()}, taker_fee=Decimal("0.0005"),
        maker_fee=Decimal("0.0002"),
    ) as run:  # fmt: skip
        exchange = run.emulator.exchange
        runner = run.runner(run_dir)
        runner.start()
        drive(run, runner, lambda: [o for o in exchange.orders() if o.status == "NEW"] != [])
        (order,) = [o for o in exchange.orders() if o.status == "NEW"]
        crash(runner)
        while exchange.orders()[-1].status == "NEW":  # it fills while the run is down
            run.emulator.advance()
        run.emulator.faults.always("GET /fapi/v1/order", Reject(-2013, "Order does not exist."))
        again = run.runner(run_dir)
        again.start()
        again.stop("test over")
        assert run.emulator.errors == []
        (trade,) = [t for t in exchange.trades() if t.order_id == order.order_id]
        held = exchange.perp_position("BTCUSDT")
    assert trade.commission_asset == "USDT" and trade.is_maker
    (booked,) = [r for r in rows(journal, "venue_fill") if r["order_id"] == order.client_order_id]
    assert str(booked["trade_id"]) == f"reconciled-{order.client_order_id}"
    assert (booked["quantity"], booked["fee_currency"]) == (float(trade.qty), "USDT")
    assert booked["fee_cost"] == pytest.approx(float(trade.commission), abs=1e-8)
    position = sum(r["side"] * r["quantity"] for r in rows(journal, "venue_fill"))
    assert position == pytest.approx(float(held.amount), abs=1e-9)
