"""A canary API key and secret, used for real against the emulator, leak nowhere.

The key and secret come from ``${ENV}`` references; a strategy run writes its run
directory, and a ccxt client built by the data source's path (``verbose`` on, debug
logs, stdlib logging at DEBUG) signs balance, order and cancel requests through the
venue, fails with a traceback, and journals. Neither value, nor any request signature
ccxt computed, may appear in stdout, stderr, the stdlib log, the journal or the run
directory's files.

The same holds over whole sessions of the command: ``tradeloom --log-level debug run
FILE --mode live`` trading on the emulator with the canary keys (an order refused with
a message that echoes them), the same command again (a restart from the journal,
reconciled with the account), then ``--mode paper``. The same session with the
redaction layer switched off leaks the canary through every one of those channels, so
the test sees what it claims to.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import ccxt
import pandas as pd
import pytest
import structlog

from tests.builders import EMULATED, OMIT, REPORTED, strategy_text, walk_bars
from tradeloom.cli.main import main
from tradeloom.domain import Order
from tradeloom.journal import RunIdentity, VenueUnreachable, open_journal, read_rows
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.order_journal import JournalOrders
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_source import CcxtParams, build_ccxt
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.plugins.protocols_orders.client_ids import client_order_id
from tradeloom.schemas.secrets import resolve_secrets
from tradeloom.testing import ExchangeEmulator, Reject, ServerError, bars_closing

SYMBOL = "BTC/USDT"
START = 250
KLINES = "GET /api/v3/klines"

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
        journal = open_journal(run_dir / "venue.sqlite", RunIdentity("canary", "venue", "live"))
        venue = CcxtVenue(
            client,
            SYMBOL,
            JournalOrders(journal, lambda: START, symbol=SYMBOL),
            bar_clock=lambda: START,
            sleep=lambda _: None,
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
        journal.append(
            VenueUnreachable(operation="note", error=f"{key} {secret} signature={signatures[-1]}")
        )
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
    assert leaks(texts, [key, secret, *signatures]) == {}


# --- whole live and paper sessions of the command ----------------------------------------

LIVE_START = 160
"""Bars closed when the live session starts; the rest close while it runs."""

LIVE_STRATEGY = strategy_text(
    EMULATED,
    REPORTED,  # every file a user's run writes is searched for the secrets
    name="live_canary",
    data={
        "api_key": "${CANARY_API_KEY}",
        "secret": "${CANARY_API_SECRET}",
        "config": {"verbose": True},
    },
    features=[
        {"kind": "log_return"},
        {"kind": "log_return", "period": 3},
        {"kind": "rsi", "window": 14},
    ],
    model={
        "estimator": "sklearn.linear_model.LogisticRegression",
        "walk_forward": {"train_window": 100, "retrain_every": 50},
        "params": OMIT,
        "label": OMIT,
    },
    signal={"threshold": 0.01, "min_interval": OMIT},
    risk={"sizing": {"fraction": 0.2}},
    execution={"initial_cash": 10000, "fee_bps": OMIT},
    live={
        "capital": 10000,
        "poll_seconds": 0.05,
        "close_delay_seconds": OMIT,
        "stale_after_bars": OMIT,
    },
)


def signing_clients(
    emulator: ExchangeEmulator, signatures: list[str]
) -> Callable[[Mapping[str, Any]], ccxt.Exchange]:
    """Return a client factory for the emulator whose clients record every signature."""

    def make(settings: Mapping[str, Any]) -> ccxt.Exchange:
        client = emulator.client(**{**settings, "enableRateLimit": False})
        sign = client.sign

        def recording_sign(*args: Any, **kwargs: Any) -> Any:
            request = sign(*args, **kwargs)
            query = parse_qs(urlsplit(request["url"]).query) | parse_qs(request["body"] or "")
            signatures.extend(query.get("signature", []))
            return request

        client.sign = recording_sign
        return client

    return make


def wire_forms(value: str) -> list[str]:
    """The value as written and as it travels URL-encoded."""
    return list(dict.fromkeys([value, quote(value, safe=""), quote_plus(value)]))


def leaks(texts: dict[str, bytes], values: list[str]) -> dict[str, list[str]]:
    """Return, for each value found in some text, the names of those texts."""
    found = {
        value: [name for name, text in texts.items() if value.encode() in text] for value in values
    }
    return {value: names for value, names in found.items() if names}


def run_dir_files(run_dir: Path) -> dict[str, bytes]:
    """Every file under ``run_dir``, by its path relative to the parent folder."""
    return {
        str(path.relative_to(run_dir.parent)): path.read_bytes()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }


def journal_text(run_dir: Path) -> bytes:
    """Every row of the run's journal, every column, as text."""
    return "\n".join(repr(row) for row in read_rows(run_dir / "journal.sqlite")).encode()


def journal_types(run_dir: Path) -> list[str]:
    return [row.kind for row in read_rows(run_dir / "journal.sqlite")]


def switch_redaction_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every redaction of text a no-op, wherever it was imported."""
    import tradeloom.journal.columns
    import tradeloom.journal.schema
    import tradeloom.live.lifecycle.reload
    import tradeloom.runtime.redaction

    modules = (
        tradeloom.runtime.redaction,
        tradeloom.journal.schema,
        tradeloom.journal.columns,
        tradeloom.live.lifecycle.reload,
    )
    for module in modules:
        monkeypatch.setattr(module, "redact_text", lambda text: text)


@pytest.mark.parametrize("redaction", ["on", "off"])
def test_a_canary_key_leaks_from_no_live_or_paper_session(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    stdlib_log: io.StringIO,
    redaction: str,
) -> None:
    # "/+=" make the URL-encoded forms differ from the values
    key = "CANARYKEY" + secrets.token_hex(16) + "/+="
    secret = "CANARYSECRET" + secrets.token_hex(16) + "/+="
    monkeypatch.setenv("CANARY_API_KEY", key)
    monkeypatch.setenv("CANARY_API_SECRET", secret)
    monkeypatch.chdir(tmp_path)
    if redaction == "off":
        switch_redaction_off(monkeypatch)
    strategy = tmp_path / "live_canary.yaml"
    strategy.write_text(LIVE_STRATEGY)
    live_dir, paper_dir = tmp_path / "live", tmp_path / "paper"
    command = ["--log-level", "debug", "run", str(strategy), "--max-bars", "4"]
    signatures: list[str] = []

    with (
        ExchangeEmulator(
            {SYMBOL: walk_bars(600, 9, step=80, wick=50)},
            {"USDT": Decimal(100_000)},
            api_key=key,
            secret=secret,
            start=LIVE_START,
            include_open_kline=False,
        ) as emulator,
        use_client_factory("binance", signing_clients(emulator, signatures)),
        use_pro_client_factory("binance", None),
        bars_closing(emulator),
    ):
        emulator.faults.next("POST /api/v3/order", Reject(-2010, f"refused {key} {secret}"))
        live = [*command, "--mode", "live", "--out", str(live_dir)]
        assert main(live) == 0
        assert main(live) == 0  # the same command: a restart from the journal
        # its own cache: its history is downloaded, not read from the live run's
        paper = [*command, "--mode", "paper", "--out", str(paper_dir)]
        assert main([*paper, "--set", "data.cache_dir=paper_cache"]) == 0
        sent = emulator.requests("POST /api/v3/order")
        filled = emulator.exchange.trades()
        assert emulator.errors == []

    out, err = capfd.readouterr()
    logged = stdlib_log.getvalue()

    # The sessions did what the test claims: live orders signed with the canary, one of
    # them refused with a message holding it, a restart reconciled with the account, a
    # paper run; ccxt's verbose lines, its debug lines, signatures cut out of them.
    assert len(sent) >= 2 and sent[0].faults and filled
    live_types, paper_types = journal_types(live_dir), journal_types(paper_dir)
    assert {"order_sent", "restarted", "reconciled"} <= set(live_types)
    assert live_types.count("live_bar") >= 8 and paper_types.count("live_bar") >= 4
    assert "order_sent" not in paper_types
    assert len(signatures) >= len(sent) + 2  # the orders, the balance at start and restart
    assert out.count("live run ") == 2 and out.count("paper run ") == 1
    assert "ccxt_verbose" in err and "X-MBX-APIKEY" in err
    assert "Request:" in logged and "/api/v3/order" in logged

    texts = {
        "stdout": out.encode(),
        "stderr": err.encode(),
        "stdlib log": logged.encode(),
        "live journal rows": journal_text(live_dir),
        "paper journal rows": journal_text(paper_dir),
        **run_dir_files(live_dir),
        **run_dir_files(paper_dir),
    }
    values = [*wire_forms(key), *wire_forms(secret), *signatures]
    found = leaks(texts, values)
    if redaction == "on":
        assert "signature=***" in err and "signature=***" in logged
        assert "'X-MBX-APIKEY': '***'" in err
        assert b"-2010: refused *** ***" in texts["live journal rows"]
        assert found == {}
    else:
        # Without redaction each channel the test reads carries the canary.
        channels = {name for names in found.values() for name in names}
        assert {"stderr", "stdlib log", "live journal rows"} <= channels, found
