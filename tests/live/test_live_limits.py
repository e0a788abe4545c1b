"""Pre-trade limits and the retraining cron in a running strategy."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.live.live_emulated import STRATEGY, SYMBOL, emulated_run, rows, tick_bars
from tradeloom.testing.emulator import MarketRules


def test_an_order_over_the_notional_limit_is_refused_and_never_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = STRATEGY.replace(
        "  sizing: {kind: fixed_fraction, fraction: 0.5}\n",
        "  sizing: {kind: fixed_fraction, fraction: 0.5}\n  limits: {max_order_notional: 1000}\n",
    )
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        tick_bars(run, runner, 200)
        runner.stop("test over")
        assert run.emulator.exchange.orders() == []
    journal = tmp_path / "run" / "journal.sqlite"
    refused = [r for r in rows(journal, "rejection") if r.get("code") == "MAX_ORDER_NOTIONAL"]
    accepted = [r for r in rows(journal, "risk_decision") if r["outcome"] == "accepted"]
    # the risk engine refuses the order before it is one: no order row, nothing sent
    assert accepted and len(refused) == len(accepted)
    assert all(r["message"].endswith(", limit=1000") for r in refused)
    assert rows(journal, "order") == []
    assert rows(journal, "order_sent") == []
    assert rows(journal, "fill") == []


def test_the_retraining_cron_trains_a_fold_at_the_first_bar_close_after_it_fires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = STRATEGY.replace(
        "  capital: 50000\n", "  capital: 50000\n  retrain_cron: '0 */12 * * *'\n"
    )
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(tmp_path / "run", mode="paper")
        runner.start()
        tick_bars(run, runner, 150)
        runner.stop("test over")
    trainings = rows(tmp_path / "run" / "journal.sqlite", "model_trained")
    cron = [t for t in trainings if t["reason"].startswith("live.retrain_cron fired at")]
    scheduled = [t for t in trainings if t["reason"] == "scheduled"]
    assert (
        scheduled and len(cron) >= 8
    )  # 150 hourly bars: every 12 h, but not over a scheduled fold
    for training in cron:
        fired = training["reason"].split(" at ")[1]
        assert fired.endswith(("T00:00:00+00:00", "T12:00:00+00:00"))
        # trained at the close of the bar before predict_start, on labels known then
        assert training["train_end"] + 3 < training["predict_start"]


def test_an_order_below_the_markets_minimum_cost_is_refused_by_the_core_and_never_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The market's ``limits.cost.min`` (30,000) is above the file's minimum (the default,
    a billionth of the cash) and above every order the sizing makes (half of 50,000): the
    core refuses each entry as BELOW_MINIMUM with the market's minimum, before an order
    row, so nothing reaches the exchange (not a VENUE_MIN_NOTIONAL refusal after it was
    journaled as an order)."""
    monkeypatch.chdir(tmp_path)
    rules = {SYMBOL: MarketRules(min_notional=Decimal("30000"))}
    with emulated_run(tmp_path, monkeypatch, rules=rules) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        tick_bars(run, runner, 120)
        runner.stop("test over")
        assert run.emulator.exchange.orders() == []
    journal = tmp_path / "run" / "journal.sqlite"
    accepted = [r for r in rows(journal, "risk_decision") if r["outcome"] == "accepted"]
    refused = [r for r in rows(journal, "rejection") if r.get("code") == "BELOW_MINIMUM"]
    assert accepted and len(refused) == len(accepted)
    assert all(r["message"].startswith("ENTRY quantity=") for r in refused)
    assert all(
        r["message"].endswith(
            "is below the venue's minimum order notional 30000 (execution.min_notional, "
            "or a live market's limits.cost.min)"
        )
        for r in refused
    )
    assert [r for r in rows(journal, "rejection") if r.get("code") == "VENUE_MIN_NOTIONAL"] == []
    assert rows(journal, "order") == []
    assert rows(journal, "order_sent") == []


def test_an_order_within_the_markets_lot_is_refused_by_the_core_and_never_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The market's minimum amount (``limits.amount.min``, 100 BTC) is more than any entry
    buys (half of 50,000): the core refuses each as BELOW_MINIMUM naming the market's lot,
    before an order row (it used to drop such an order without a word)."""
    monkeypatch.chdir(tmp_path)
    rules = {SYMBOL: MarketRules(min_qty=Decimal("100"))}
    with emulated_run(tmp_path, monkeypatch, rules=rules) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        tick_bars(run, runner, 120)
        runner.stop("test over")
        assert run.emulator.exchange.orders() == []
    journal = tmp_path / "run" / "journal.sqlite"
    accepted = [r for r in rows(journal, "risk_decision") if r["outcome"] == "accepted"]
    refused = [r for r in rows(journal, "rejection") if r.get("code") == "BELOW_MINIMUM"]
    assert accepted and len(refused) == len(accepted)
    for r in refused:
        assert r["message"].startswith("ENTRY quantity=")
        assert r["message"].endswith(
            " is within the market's lot 100 (its amount step or limits.amount.min)"
        )
        assert r["values"]["lot"] == 100.0
    assert [r for r in rows(journal, "rejection") if r.get("code") == "VENUE_MIN_AMOUNT"] == []
    assert rows(journal, "order") == []
