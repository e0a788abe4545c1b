"""A canary API key and secret, used for real against the emulator, leak nowhere.

The key and secret come from ``${ENV}`` references; a strategy run writes its run
directory, and a ccxt client built by the data source's path (``verbose`` on, debug
logs, stdlib logging at DEBUG) signs balance, order and cancel requests through the
venue, fails with a traceback, and journals. Neither value, nor any request signature
ccxt computed, may appear in stdout, stderr, the stdlib log, the journal or the run
directory's files.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
import pandas as pd
import pytest
import structlog

from tradeloom.domain import Order
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_source import CcxtParams, build_ccxt
from tradeloom.plugins.execution.ccxt_venue import CcxtVenue
from tradeloom.plugins.execution.client_ids import client_order_id
from tradeloom.plugins.execution.order_events import VenueEvent, VenueOrder
from tradeloom.runner.cli import main
from tradeloom.runner.journal import Journal
from tradeloom.schemas.secrets import resolve_secrets
from tradeloom.testing import ExchangeEmulator, Reject, ServerError

SYMBOL = "BTC/USDT"
START = 250

STRATEGY = """\
name: canary
data:
  kind: ccxt
  exchange: binance
  symbol: BTC/USDT
  timeframe: 1h
  start: "2024-01-01"
  end: "2024-01-11"
  cache_dir: cache
  api_key: ${CANARY_API_KEY}
  secret: ${CANARY_API_SECRET}
  config: {verbose: true}
features: [{kind: log_return}, {kind: rsi, window: 14}]
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  walk_forward: {train_window: 100, retrain_every: 50}
signal: {kind: threshold, threshold: 0.05}
risk: {sizing: {kind: fixed_fraction, fraction: 0.1}}
execution: {kind: simulated}
"""


def make_bars(n: int = 400) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    close = 20_000 + (pd.Series(range(n), dtype=float).to_numpy() % 17) * 10
    return pd.DataFrame(
        {"open": close, "high": close + 20, "low": close - 20, "close": close, "volume": 5.0},
        index=index,
    )


class WalJournal:
    """The venue's journal contract on the run's SQLite journal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def before_send(self, order: VenueOrder) -> None:
        self.journal.append("order_intent", order, bar=order.order.bar)
        self.journal.flush()

    def record(self, event: VenueEvent) -> None:
        self.journal.append(f"order_{type(event).__name__.lower()}", event)
        self.journal.flush()


@pytest.fixture
def stdlib_log() -> Iterator[io.StringIO]:
    """Everything stdlib logging emits at DEBUG (ccxt's request lines, urllib3's URLs)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    level, saved = root.level, structlog.get_config()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)
    structlog.configure(**saved)


def test_a_canary_key_appears_nowhere(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    stdlib_log: io.StringIO,
) -> None:
    key = "CANARYKEY" + secrets.token_hex(16)
    secret = "CANARYSECRET" + secrets.token_hex(16)
    monkeypatch.setenv("CANARY_API_KEY", key)
    monkeypatch.setenv("CANARY_API_SECRET", secret)
    signatures: list[str] = []
    run_dir = tmp_path / "run"
    strategy = tmp_path / "canary.yaml"
    strategy.write_text(STRATEGY)

    def emulated(settings: Any) -> ccxt.Exchange:
        client = emulator.client(**settings)
        sign = client.sign

        def recording_sign(*args: Any, **kwargs: Any) -> Any:
            request = sign(*args, **kwargs)
            query = parse_qs(urlsplit(request["url"]).query) | parse_qs(request["body"] or "")
            signatures.extend(query.get("signature", []))
            return request

        client.sign = recording_sign
        return client

    with (
        ExchangeEmulator(
            {SYMBOL: make_bars()}, {"USDT": 100_000}, api_key=key, secret=secret, start=START
        ) as emulator,
        use_client_factory("binance", emulated),
    ):
        # 1. A strategy run at debug level: the resolved strategy file, journal, logs.
        assert main(["--log-level", "debug", "run", str(strategy), "--out", str(run_dir)]) == 0

        # 2. The data source's client (keys from ${ENV}, verbose) trading via the venue.
        data, problems = resolve_secrets(
            {"api_key": "${CANARY_API_KEY}", "secret": "${CANARY_API_SECRET}"}, str
        )
        assert problems == []
        params = CcxtParams(
            exchange="binance",
            symbol=SYMBOL,
            timeframe="1h",
            start="2024-01-01",
            cache_dir="cache",
            config={"verbose": True},
            **data,
        )
        client = build_ccxt(params, BuildContext("canary", tmp_path, seed=0)).client
        assert client.verbose and client.apiKey == key
        journal = Journal(run_dir / "venue.sqlite")
        venue = CcxtVenue(
            client, SYMBOL, WalJournal(journal), bar_clock=lambda: START, sleep=lambda _: None
        )
        assert venue.balance()["USDT"] == 100_000
        price = float(make_bars()["close"].iloc[START - 1])
        order = Order(
            client_order_id("canary", "1a2b3c4d", 1),
            START,
            make_bars().index[START],
            1,
            0.01,
            "ENTRY",
            price,
        )
        venue.submit(order, limit_price=round(price * 0.8, 2))
        venue.cancel(order.id)
        emulator.faults.next("POST /api/v3/order", Reject(-2010, f"refused {key} {secret}"))
        venue.submit(
            Order(
                client_order_id("canary", "1a2b3c4d", 2),
                START,
                make_bars().index[START],
                1,
                0.01,
                "ENTRY",
                price,
            )
        )
        journal.append("note", {"text": f"{key} {secret} signature={signatures[-1]}"})
        journal.close()

        # 3. An error path with a traceback, logged by structlog and by stdlib logging.
        emulator.faults.next("GET /api/v3/account", ServerError(500), times=2)
        for log in (structlog.get_logger("canary"), logging.getLogger("canary")):
            try:
                client.fetch_balance()
            except ccxt.BaseError as error:
                log.exception(f"balance failed with {key}: {error}")

    out, err = capfd.readouterr()
    logged = stdlib_log.getvalue()
    files = {path.name: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    assert {"venue.sqlite", "journal.sqlite"} <= set(files)
    assert any(name.endswith((".yaml", ".yml")) for name in files)
    assert len(signatures) >= 5  # balance, order, cancel, rejected order, failed balance

    # The test saw what it claims to: ccxt's verbose lines, its debug lines, tracebacks.
    assert "ccxt_verbose" in err and "signature=***" in err and "X-MBX-APIKEY" in err
    assert "Request:" in logged and "signature=***" in logged
    assert "Traceback" in err and "Traceback" in logged
    assert err.count("ExchangeNotAvailable") >= 1 and "ExchangeNotAvailable" in logged

    texts = {"stdout": out.encode(), "stderr": err.encode(), "stdlib log": logged.encode(), **files}
    for value in [key, secret, *signatures]:
        leaks = [name for name, text in texts.items() if value.encode() in text]
        assert leaks == [], f"{value[:12]}... found in {leaks}"
