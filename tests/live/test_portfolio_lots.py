"""A portfolio file's books held to their markets' lots and minimum order costs, live.

The account's core rows are the books; each book trades its strategy's market, and the
live account venue knows each market's lot and minimum cost from the exchange
(`MarketLots`). The core refuses a book's order worth less than its market's minimum
(``BELOW_MINIMUM``) before anything is sent, as a single exchange's run does, instead
of sending it for the exchange to reject.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.live.live_emulated import make_bars, rows
from tests.live.test_portfolio_live import MEMBER
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.live.tick.portfolio_session import LivePortfolio, account_pipeline
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas.portfolio_file import load_portfolio
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator, MarketRules

pytestmark = pytest.mark.slow  # three models trained, 40 live bars

HISTORY = 150
ORDER = "POST /api/v3/order"
HIGH_MINIMUM = MarketRules(min_notional=Decimal("1000000"), max_notional=Decimal("9000000"))
"""ETH/USDT's minimum order cost: more than the whole account."""


def test_a_books_order_below_its_markets_minimum_is_refused_by_the_core_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    members = (
        ("swing_eth", "ETH/USDT", 5),
        ("trend_btc", "BTC/USDT", 11),
        ("fade_eth", "ETH/USDT", 8),
    )
    for name, symbol, seed in members:
        text = MEMBER.replace("NAME", name).replace("SYMBOL", symbol).replace("SEED", str(seed))
        (tmp_path / f"{name}.yaml").write_text(text.replace("CACHE", str(tmp_path / "cache")))
    # three books on two markets: the core's rows (the books) are not the markets, and
    # each book must be held to its own market's minimum
    (tmp_path / "pair.yaml").write_text(
        "name: three\ninitial_cash: 60000\nallocation: {kind: fixed, normalize: true}\n"
        "strategies:\n"
        + "".join(f"  - {{file: {name}.yaml, weight: 0.33}}\n" for name, _, _ in members)
    )
    markets = {
        s: make_bars(n=HISTORY + 80, seed=7 + k) for k, s in enumerate(("BTC/USDT", "ETH/USDT"))
    }
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with ExchangeEmulator(
        markets,
        {"USDT": Decimal("60000")},
        start=HISTORY,
        include_open_kline=False,
        rules={"ETH/USDT": HIGH_MINIMUM},
    ) as emu:
        with use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False})):
            portfolio = load_portfolio(tmp_path / "pair.yaml", ())
            pipelines = tuple(build_pipeline(c) for c in portfolio.strategies)
            runner = LiveRunner(
                account_pipeline(portfolio, pipelines),
                load_plugins(()),
                mode="live",
                run_dir=run_dir,
                clock=lambda: pd.Timestamp(emu.exchange.now_ms(), unit="ms", tz="UTC"),
                watch_file=False,
                portfolio=LivePortfolio(portfolio, pipelines),
                refresh=False,
            )
            runner.start()
            for _ in range(40):
                emu.advance()
                runner.tick()
            runner.stop("test over")
        sent = [r.params["symbol"] for r in emu.requests(ORDER)]
        assert "BTCUSDT" in sent, "the BTC book never traded: the test proves nothing"
        assert "ETHUSDT" not in sent  # refused before sending, not by the exchange
        refused = {
            e.symbol
            for e in read_rows(journal, ["rejection"])
            if e.values["code"] == "BELOW_MINIMUM"
        }
        # each ETH book wanted to trade and was held to ETH's minimum, not BTC's
        assert {"swing_eth:ETH/USDT", "fade_eth:ETH/USDT"} <= refused
        assert [r for r in rows(journal, "order_state") if r["state"] == "rejected"] == []
        assert emu.errors == []
