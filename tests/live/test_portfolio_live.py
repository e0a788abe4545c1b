"""A portfolio file traded on paper and live against an exchange: two strategies on one
account, through the real command line, killed with ``kill -9`` and started again with
the same command.

Live, the run sends each book's orders to its own market of the account; the restart
replays every book's ticks, sends no client order id twice, reconciles each market against
the journal's position in it (its books' in all). In both modes the restarted run decides
what a run never killed decides.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import make_bars, rows
from tests.live.test_crash import CrashRig
from tradeloom.journal import read_rows
from tradeloom.testing import ExchangeEmulator

pytestmark = pytest.mark.slow  # child processes

HISTORY = 150
"""Bars closed when the run first starts: both models train at once."""
END = 215
"""The emulator's position at the end."""
MARKETS = ("BTC/USDT", "ETH/USDT")

MEMBER = """\
name: NAME
seed: SEED
plugins: [tests.live.live_child]
data:
  kind: ccxt
  exchange: binance
  symbol: SYMBOL
  timeframe: 1h
  start: "2024-01-01"
  cache_dir: CACHE
  api_key: ${EMU_API_KEY}
  secret: ${EMU_API_SECRET}
  options: {recvWindow: 10000}
features:
  - {kind: log_return, period: 1}
  - {kind: log_return, period: 6}
  - {kind: rsi, window: 14}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 15, max_depth: 4, min_samples_leaf: 10, n_jobs: 1}
  label: {horizon: 3}
  walk_forward: {train_window: 100, retrain_every: 30}
signal: {kind: threshold, threshold: 0.03, min_interval: 2}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.4}
execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}
live:
  stream: poll
  poll_seconds: 0.02
  close_delay_seconds: 0
  stale_after_bars: null
"""

PORTFOLIO = """\
name: pair
initial_cash: 60000
strategies:
  - {file: trend_btc.yaml, weight: 0.5}
  - {file: swing_eth.yaml, weight: 0.5}
risk:
  max_drawdown: 0.3
"""

MOVING = PORTFOLIO.replace(", weight: 0.5}", "}").replace(
    "strategies:", "allocation: {kind: risk_parity, window: 30, rebalance: {every: 5}}\nstrategies:"
)
"""The same two strategies, their weights moving with their trailing returns."""


def _write(folder: Path, portfolio: str = PORTFOLIO) -> Path:
    for name, symbol, seed in (("trend_btc", "BTC/USDT", 11), ("swing_eth", "ETH/USDT", 5)):
        text = MEMBER.replace("NAME", name).replace("SYMBOL", symbol).replace("SEED", str(seed))
        (folder / f"{name}.yaml").write_text(text.replace("CACHE", str(folder / "cache")))
    path = folder / "pair.yaml"
    path.write_text(portfolio)
    return path


def _markets() -> dict[str, Any]:
    return {symbol: make_bars(n=END + 5, seed=7 + k) for k, symbol in enumerate(MARKETS)}


@contextmanager
def _rig(
    folder: Path, mode: str, portfolio: str = PORTFOLIO
) -> Iterator[tuple[CrashRig, ExchangeEmulator]]:
    folder.mkdir(parents=True, exist_ok=True)
    with ExchangeEmulator(
        _markets(), {"USDT": Decimal("60000")}, start=HISTORY, include_open_kline=False
    ) as emu:
        rig = CrashRig(emu, folder, 10_000)
        rig.strategy = _write(folder, portfolio)
        rig.args = ("--mode", mode)
        rig.started_kinds = ("warm_up", "reconciled" if mode == "live" else "restarted")
        rig.polls_per_tick = len(MARKETS)
        try:
            yield rig, emu
        finally:
            rig.close()


def _held(path: Path) -> dict[str, float]:
    """The journal's position in each market: its books' fills."""
    position = dict.fromkeys(MARKETS, 0.0)
    for event in read_rows(path, ["fill"]):
        position[event.symbol.split(":", 1)[1]] += event.values["side"] * event.values["quantity"]
    return position


def _account(emu: ExchangeEmulator) -> dict[str, float]:
    balances = {s: emu.exchange.balance(s.split("/")[0]) for s in MARKETS}
    return {s: float(b.free + b.locked) for s, b in balances.items()}


def _decisions(path: Path) -> dict[str, list[Any]]:
    """Each book's orders and fills, without client order ids, and the weights decided
    between the strategies."""
    orders = [
        (r.bar, r.symbol, r.values["side"], r.values["reason"], r.values["quantity"])
        for r in read_rows(path, ["order"])
    ]
    fills = [
        (r.bar, r.symbol, r.values["side"], r.values["quantity"], r.values["price"])
        for r in read_rows(path, ["fill"])
    ]
    weights = [(r.bar, r.values["weights"]) for r in read_rows(path, ["allocation_decided"])]
    return {"orders": orders, "fills": fills, "weights": weights}


@pytest.mark.parametrize(
    ("mode", "portfolio"),
    [("paper", PORTFOLIO), ("live", PORTFOLIO), ("paper", MOVING)],
    ids=["paper", "live", "paper-moving-weights"],
)
def test_a_portfolio_killed_with_kill_9_restarts_and_sends_no_order_twice(
    tmp_path: Path, mode: str, portfolio: str
) -> None:
    with _rig(tmp_path / "whole", mode, portfolio) as (rig, emu):
        rig.launch()
        rig.advance_to(END)
        rig.stop()
        assert emu.errors == []
        whole = _decisions(rig.journal)
    books = {symbol for _, symbol, *_ in whole["orders"]}
    assert books == {"trend_btc:BTC/USDT", "swing_eth:ETH/USDT"}  # both strategies trade
    assert len(whole["orders"]) > 4
    if portfolio == MOVING:  # the restart makes the journal's decisions again, moved ones too
        assert any(w != [0.5, 0.5] for bar, w in whole["weights"] if bar >= HISTORY)
    else:
        assert whole["weights"] == []

    with _rig(tmp_path / "cut", mode, portfolio) as (rig, emu):
        rig.launch(crash="order:3")
        while rig.child is not None and rig.advance() == "processed":
            pass
        rig.reap(-signal.SIGKILL)
        killed_at = max(r["bar"] for r in rig.rows("live_bar"))
        assert len(rig.order_ids()) == 2  # the third died with its bar's rows
        rig.launch()
        rig.advance_to(END)
        rig.stop()
        assert emu.errors == []
        holdings = _account(emu)
        venue_trades = sorted(str(t.trade_id) for t in emu.exchange.trades())
        venue_orders = [(o.client_order_id, o.market_id) for o in emu.exchange.orders()]
    journal = rig.journal
    assert killed_at < END - 1  # it died mid-run
    assert _decisions(journal) == whole
    ids = rig.order_ids()
    assert len(set(ids)) == len(ids)
    assert len(rows(journal, "restarted")) == 1
    assert rig.exit_codes == [-signal.SIGKILL, 0]
    if mode == "paper":
        assert venue_orders == []  # paper trading sends nothing
        return
    assert sorted(rig.posted()) == sorted(ids)  # each intent reached the venue once
    book_of = {r.values["id"]: r.symbol for r in read_rows(journal, ["order"])}
    assert venue_orders == [
        (i, book_of[i].split(":", 1)[1].replace("/", "")) for i in rig.posted()
    ]  # each book's orders in its own market
    assert sorted(str(r["trade_id"]) for r in rig.rows("venue_fill")) == venue_trades
    assert _held(journal) == pytest.approx(holdings, abs=1e-8)
    assert [r.symbol for r in read_rows(journal, ["reconciled"])] == list(MARKETS)
    assert [r.symbol for r in read_rows(journal, ["market_at_start"])] == list(MARKETS)


CUTS = 12


def test_a_live_portfolio_whose_journal_lost_its_tail_is_refused_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 after orders went out, then the write-ahead log cut at seeded points. A cut
    below the journal's tail record (durable commits lost: intents of orders the markets
    may have) is refused in one line and nothing is sent: a portfolio's restart does not
    take a cut journal (one market's asks its venue instead, test_tail_cuts). A cut of
    commits made without fsync only restarts, adopting nothing."""
    import random
    import re
    import shutil
    from collections import Counter

    from tests.live import live_child
    from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET

    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    with _rig(tmp_path / "cut", "live") as (rig, emu):
        monkeypatch.chdir(rig.tmp)
        rig.launch(crash="fill:4")
        while rig.child is not None and rig.advance() == "processed":
            pass
        rig.reap(-signal.SIGKILL)
        sent = Counter(rig.posted())
        assert len(sent) >= 4 and set(sent.values()) == {1}
        wal = rig.run_dir / "journal.sqlite-wal"
        intact = rig.tmp / "intact"
        shutil.copytree(rig.run_dir, intact)
        journal = re.escape(str(rig.journal))
        refusals = {
            "cut": re.compile(
                rf"^{journal}: its tail was cut: it holds \d+ rows, its tail record says \d+ "
                r"were committed \(\d+ rows? lost\); refusing to restart: nothing was sent$"
            ),
            "lost": re.compile(  # a cut before the journal's first commit
                rf"^{journal}: holds no journal tables \(no such table: meta\); its "
                r"write-ahead log \(journal\.sqlite-wal\) was lost after a crash, or it is "
                r"not a journal; refusing to restart: nothing was sent$"
            ),
        }
        outcomes: Counter[str] = Counter()
        for cut in sorted(random.Random(7).sample(range(wal.stat().st_size), CUTS)):
            shutil.rmtree(rig.run_dir)
            shutil.copytree(intact, rig.run_dir)
            with wal.open("r+b") as handle:
                handle.truncate(cut)
            capsys.readouterr()
            args = [emu.url, str(rig.strategy), str(rig.run_dir), "--max-bars", "1"]
            code = live_child.main(args)
            err = capsys.readouterr().err
            assert Counter(rig.posted()) == sent, f"a restart sent at cut {cut}"
            if code == 2:
                (why,) = [k for k, line in refusals.items() if line.match(err.rstrip("\n"))]
                outcomes[why] += 1
                continue
            assert code == 0 and "Traceback" not in err, err
            states = {r.values["state"] for r in read_rows(rig.journal, ["order_state"])}
            assert "adopted" not in states, cut
            for r in read_rows(rig.journal, ["reconciled"]):
                difference = r.values["venue_position"] - r.values["position"]
                assert abs(difference) <= r.values["tolerance"], (cut, r.symbol, r.values)
            outcomes["restarted"] += 1
    with capsys.disabled():
        print(f"restarts after {CUTS} cuts: {dict(outcomes)}")
    assert outcomes["cut"] >= 2, outcomes
