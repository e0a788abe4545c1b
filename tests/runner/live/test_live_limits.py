"""Pre-trade limits and the retraining cron in a running strategy."""

from __future__ import annotations

from pathlib import Path

import pytest
from live_emulated import STRATEGY, emulated_run, rows, tick_bars


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
