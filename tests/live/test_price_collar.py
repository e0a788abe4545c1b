"""The price collar and the drawdown halt: the same refusals and states in every mode.

A limit buy 6% from the close under a 5% collar is refused ``PRICE_COLLAR`` before it
is an order, in a backtest, a paper run and a live run against the emulator, with the
same rejection rows; a market order of the same strategy (an urgent signal of ``type:
auto``) is at the close and passes, and so does a limit sell that closes the long (a
reducing order skips the limits). A drawdown halt moves the trading state
to HALTED, in every mode, and the halt's exit still closes the position.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import HISTORY, STRATEGY, emulated_run, rows, tick_until
from tests.live.test_live_parity import backtest

ORDERS = (
    "execution:\n"
    "  kind: simulated\n"
    "  fee_bps: 0\n"
    "  initial_cash: 50000\n"
    "  orders: {type: auto, auto: {max_spread_bps: 9999, urgent_confidence: 0.3}, "
    "limit: {offset_bps: 600}}\n"
)
COLLARED = STRATEGY.replace(
    "  sizing: {kind: fixed_fraction, fraction: 0.5}\n",
    "  sizing: {kind: fixed_fraction, fraction: 0.5}\n  limits: {price_collar: 0.05}\n",
).replace("execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}\n", ORDERS)
HALTING = STRATEGY.replace(
    "  sizing: {kind: fixed_fraction, fraction: 0.5}\n",
    "  sizing: {kind: fixed_fraction, fraction: 0.5}\n"
    "  rules: [{kind: drawdown_halt, max_drawdown: 0.004}]\n",
).replace("fee_bps: 10", "fee_bps: 0")
KINDS = ("signal", "risk_decision", "rejection", "order", "fill", "trading_state", "halt")


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "order_id")}  # client ids differ


def _journals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> tuple[dict[str, Path], list[dict[str, Any]]]:
    """Run ``text`` on paper and live over the emulator's bars, and backtest it.

    Returns:
        The journals by mode, and what the live run POSTed to the exchange.
    """
    monkeypatch.chdir(tmp_path)
    journals: dict[str, Path] = {}
    posted: list[dict[str, Any]] = []
    for mode in ("paper", "live"):
        # no fee: a live buy's fee, paid in BTC, would leave dust the backtest has not
        with emulated_run(
            tmp_path, monkeypatch, text=text, maker_fee=Decimal(0), taker_fee=Decimal(0)
        ) as run:
            runner = run.runner(tmp_path / mode, mode=mode)
            runner.start()
            try:
                tick_until(run, runner, len(run.bars))
            finally:
                runner.stop("test over")
            journals[mode] = tmp_path / mode / "journal.sqlite"
            if mode == "live":
                posted = [dict(r.params) for r in run.emulator.requests("POST /api/v3/order")]
                journals["backtest"] = backtest(run, tmp_path)
    return journals, posted


def _within_the_lot(row: dict[str, Any]) -> bool:
    values = row.get("values") or {}
    return row.get("code") == "BELOW_MINIMUM" and values["quantity"] <= values["lot"]


def _same_rows_in_every_mode(journals: dict[str, Path]) -> None:
    """Paper journals every row the backtest does; live, the same signals, refusals, states.

    A live run's quantities are the venue's (lots), so its equity, and with it a
    drawdown's last digits, may differ from the backtest's; and an order within the
    market's lot (the rest of a target the position already holds to a lot) is refused
    there (``BELOW_MINIMUM``), where the backtest, which has no lot, sends it.
    """
    for kind in KINDS:
        theirs = [_strip(r) for r in rows(journals["backtest"], kind) if r["bar"] >= HISTORY]
        assert [_strip(r) for r in rows(journals["paper"], kind)] == theirs, ("paper", kind)
        live = [_strip(r) for r in rows(journals["live"], kind) if not _within_the_lot(r)]
        if kind in ("signal", "rejection", "trading_state"):
            assert live == theirs, ("live", kind)
        elif kind == "halt":
            assert [(r["bar"], r["code"]) for r in live] == [
                (r["bar"], r["code"]) for r in theirs
            ], ("live", kind)


def test_the_price_collar_refuses_the_same_orders_in_backtest_paper_and_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journals, posted = _journals(tmp_path, monkeypatch, COLLARED)
    collared = [r for r in rows(journals["backtest"], "rejection") if r["code"] == "PRICE_COLLAR"]
    orders = rows(journals["backtest"], "order")
    # some signals are urgent (a market order at the close: inside the collar), the others
    # a limit 6% from the close: refused, with the values that say why
    assert collared and orders, (len(collared), len(orders))
    # what passed: the urgent signals' market orders, and the limit sells, which close a
    # long (long-only): a reducing order skips the limits, so no limit can trap a position
    assert {o["kind"] for o in orders} == {"market", "limit"}
    assert {o["side"] for o in orders if o["kind"] == "limit"} == {-1}
    for row in collared:
        price, reference = row["values"]["price"], row["values"]["reference"]
        assert abs(price / reference - 1.0) == pytest.approx(0.06)
        assert row["values"]["collar"] == 0.05
        assert row["values"]["low"] == pytest.approx(reference * 0.95)
        assert row["values"]["high"] == pytest.approx(reference * 1.05)
        assert row["message"].startswith(f"price={price:.10g}, reference={reference:.10g}, ")
    _same_rows_in_every_mode(journals)
    # a refused order never reaches the exchange: every limit POSTed is a sell
    assert {p["type"] for p in posted} == {"MARKET", "LIMIT"}
    assert {p["side"] for p in posted if p["type"] == "LIMIT"} == {"SELL"}


def test_a_drawdown_halt_moves_the_trading_state_to_halted_in_every_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journals, _ = _journals(tmp_path, monkeypatch, HALTING)
    for mode, path in journals.items():
        halts = rows(path, "halt")
        states = rows(path, "trading_state")
        assert [h["code"] for h in halts] == ["MAX_DRAWDOWN_HALT"], mode
        assert [(s["bar"], s["previous"], s["state"], s["code"]) for s in states] == [
            (halts[0]["bar"], "ACTIVE", "HALTED", "MAX_DRAWDOWN_HALT")
        ], mode
        # the halt's exit still goes, and nothing after it
        after = [r for r in rows(path, "order") if r["bar"] >= halts[0]["bar"]]
        assert [r["reason"] for r in after] in (["EXIT_HALT"], []), mode
        assert sum(f["side"] * f["quantity"] for f in rows(path, "fill")) == pytest.approx(
            0.0, abs=1e-4
        ), mode
    _same_rows_in_every_mode(journals)
