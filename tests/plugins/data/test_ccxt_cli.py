"""``tradeloom data fetch`` and a ``kind: ccxt`` strategy through the real command line."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests import forkserver
from tests.forkserver import tradeloom
from tests.plugins.data.ccxt_emulated import KLINES, START, emulated_binance, make_bars, ms
from tradeloom.cli.data_fetch import run_fetch
from tradeloom.cli.main import main
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data.ccxt_source import CcxtParams, build_ccxt
from tradeloom.runtime import progress
from tradeloom.testing import ExchangeEmulator, ServerError

pytestmark = pytest.mark.usefixtures("cli_logging")

FETCH = ["data", "fetch", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h"]


def cached_file(cache: Path) -> Path:
    return cache / "ohlcv" / "binance" / "BTC-USDT" / "1h.parquet"


def test_fetch_downloads_then_tops_up_the_cache(
    tmp_path: Path,
    emulator: ExchangeEmulator,
    bars: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    args = [*FETCH, "--start", "2024-01-01", "--cache-dir", str(cache)]

    assert main(args) == 0
    out, err = capsys.readouterr()
    assert (out.splitlines(), err) == (
        [
            "binance BTC/USDT 1h: fetched 250 bars from 2024-01-01T00:00Z to "
            "2024-01-11T09:00Z in 1 request",
            "binance BTC/USDT 1h: 250 bars cached from 2024-01-01T00:00Z to 2024-01-11T09:00Z "
            f"in {cached_file(cache)}",
        ],
        "",
    )

    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[0] == "binance BTC/USDT 1h: nothing new to fetch"

    emulator.advance(10)
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "binance BTC/USDT 1h: fetched 10 bars from 2024-01-11T10:00Z to 2024-01-11T19:00Z "
        "in 1 request",
        "binance BTC/USDT 1h: 260 bars cached from 2024-01-01T00:00Z to 2024-01-11T19:00Z "
        f"in {cached_file(cache)}",
    ]
    assert [int(r.params["startTime"]) for r in emulator.requests(KLINES)] == [
        ms(bars.index[0]),
        ms(bars.index[START]),
    ]
    cached = pd.read_parquet(cached_file(cache)).set_index("timestamp")
    pd.testing.assert_frame_equal(
        cached, bars.iloc[: START + 10], check_freq=False, check_index_type=False
    )


def test_fetch_shows_progress_on_a_terminal_only(
    tmp_path: Path, emulator: ExchangeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The download advances a progress bar (`tradeloom.runtime.progress`: rich, on a terminal
    only) by the bars of each page; off a terminal nothing is written."""
    params = CcxtParams(
        exchange="binance",
        symbol="BTC/USDT",
        timeframe="1h",
        start="2024-01-01",
        page_limit=100,
        cache_dir="cache",
    )
    source = build_ccxt(params, BuildContext("s", tmp_path, seed=0))
    out, err = io.StringIO(), io.StringIO()
    shown: list[tuple[str, float]] = []

    class Shown(progress.Task):
        def __init__(self, description: str) -> None:
            self.description = description

        def advance(self, steps: float = 1.0) -> None:
            shown.append((self.description, steps))

    @contextlib.contextmanager
    def task(description: str, total: float | None = None) -> Iterator[progress.Task]:
        yield Shown(description)

    monkeypatch.setattr(progress, "task", task)
    assert run_fetch(source, out=out, err=err) == 0

    assert shown == [("downloading binance BTC/USDT 1h bars", n) for n in (100, 100, 50)]
    assert err.getvalue() == ""
    assert out.getvalue().startswith("binance BTC/USDT 1h: fetched 250 bars")


def test_fetch_warns_about_gaps_as_the_data_layer_reports_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = make_bars(120).drop(pd.Timestamp("2024-01-02 05:00", tz="UTC"))
    with emulated_binance(bars, 110):
        code = main([*FETCH, "--start", "2024-01-01", "--cache-dir", str(tmp_path)])

    assert code == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("binance BTC/USDT 1h: fetched 110 bars")
    assert err.splitlines() == [
        "warning: data: binance BTC/USDT 1h: 1 gap in the 1h bars, 1 bar missing (first at "
        "2024-01-02T05:00Z, before bar 30); fill it or set data.validation: repair to keep it"
    ]


def test_fetch_with_bad_arguments_exits_2_with_one_line_each(tmp_path: Path) -> None:
    proc = tradeloom(
        "data",
        "fetch",
        "--exchange",
        "bitfinexx",
        "--symbol",
        "BTC/USDT",
        "--timeframe",
        "1hour",
        "--start",
        "2024-01-01",
        "--end",
        "yesterday",
        cwd=tmp_path,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [
        "--exchange: must be a ccxt exchange id such as binance, kraken or okx; was "
        "'bitfinexx' (did you mean 'bitfinex'?)",
        "--timeframe: timeframe must be a number and a unit (s, m, h, d, w) such as 1m, 4h, "
        "1d; was '1hour'",
        "--end: must be a UTC timestamp such as 2024-03-01T04:00:00Z or 2024-03-01; was "
        "'yesterday'",
    ]


def test_fetch_of_a_timeframe_the_exchange_lacks_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*FETCH[:-1], "2m", "--start", "2024-01-01", "--cache-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "--timeframe: binance serves no 2m bars; its timeframes: 1s, 1m, 3m, 5m, 15m, 30m, 1h, "
        "2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w, 1M"
    ]


STRATEGY = """\
name: ccxt_btc
data:
  kind: ccxt
  exchange: binance
  symbol: BTC/USDT
  timeframe: 1h
  start: "2024-01-01"
  end: "2024-01-11"
  cache_dir: cache
  offline: {offline}
features: [{{kind: log_return}}, {{kind: rsi, window: 14}}]
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  walk_forward: {{train_window: 100, retrain_every: 50}}
signal: {{kind: threshold, threshold: 0.05}}
risk: {{sizing: {{kind: fixed_fraction, fraction: 0.1}}}}
execution: {{kind: simulated}}
"""


@pytest.mark.slow
def test_a_ccxt_strategy_backtests_online_then_offline_from_the_cache(
    tmp_path: Path, emulator: ExchangeEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    online = tmp_path / "online.yaml"
    online.write_text(STRATEGY.format(offline="false"))
    offline = tmp_path / "offline.yaml"
    offline.write_text(STRATEGY.format(offline="true"))

    assert main(["run", str(online), "--out", str(tmp_path / "run1")]) == 0
    capsys.readouterr()
    assert emulator.requests(KLINES) != []

    # A fresh process with no exchange at all: the bars come from the cache.
    proc = tradeloom("run", offline, "--out", tmp_path / "run2", cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    first = json.loads((tmp_path / "run1" / "metrics.json").read_text())
    second = json.loads((tmp_path / "run2" / "metrics.json").read_text())
    assert first["bars"] == second["bars"] == 240  # 2024-01-01 to 2024-01-11, exclusive
    for key in ("total_return", "trades", "final_equity", "fees"):
        assert first[key] == second[key], key
    orders = [
        pd.read_csv(tmp_path / run / "orders.csv").drop(columns="id") for run in ("run1", "run2")
    ]
    assert len(orders[0]) > 0
    pd.testing.assert_frame_equal(orders[0], orders[1])  # ids differ: they name the run


def test_an_offline_strategy_without_a_cache_exits_2(tmp_path: Path) -> None:
    offline = tmp_path / "offline.yaml"
    offline.write_text(STRATEGY.format(offline="true"))

    proc = tradeloom("run", offline, "--out", tmp_path / "run", cwd=tmp_path)

    cache = (tmp_path / "cache").resolve()
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [
        f"data: binance BTC/USDT 1h: offline and nothing is cached at {cached_file(cache)}; "
        "run tradeloom data fetch --exchange binance --symbol BTC/USDT --timeframe 1h "
        f"--start 2024-01-01 --end 2024-01-11 --cache-dir {cache} or set data.offline: false"
    ]


def test_an_exchange_that_never_answers_is_a_run_failure(
    tmp_path: Path, emulator: ExchangeEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.faults.always(KLINES, ServerError(503))
    strategy = tmp_path / "s.yaml"
    strategy.write_text(
        STRATEGY.format(offline="false").replace(
            "  offline: false\n",
            "  offline: false\n  retry: {max_attempts: 2, base_delay: 0.01, max_delay: 0.01}\n",
        )
    )

    assert main(["run", str(strategy), "--out", str(tmp_path / "run")]) == 1

    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(
        "run failed: ExchangeUnavailable: data: binance BTC/USDT 1h: bars from "
        "2024-01-01T00:00Z: no answer after 2 attempts; last error ExchangeNotAvailable: "
    ), last
    assert len(emulator.requests(KLINES)) == 2


def test_fetch_downloads_each_symbol_given(
    tmp_path: Path, bars: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradeloom.plugins.data.ccxt_client import use_client_factory

    markets = {"BTC/USDT": bars, "ETH/USDT": bars * 0.05}
    clock: list[ExchangeEmulator] = []
    with ExchangeEmulator(
        markets, {"USDT": 1000}, start=START, wall_clock=lambda: clock[0].exchange.now_ms() / 1000
    ) as emulator:
        clock.append(emulator)
        with use_client_factory("binance", lambda settings: emulator.client(**settings)):
            cache = tmp_path / "cache"
            args = [*FETCH, "--symbol", "ETH/USDT", "--start", "2024-01-01"]
            assert main([*args, "--cache-dir", str(cache)]) == 0
            lines = capsys.readouterr().out.splitlines()
            assert [line.split(":")[0] for line in lines] == [
                "binance BTC/USDT 1h",
                "binance BTC/USDT 1h",
                "binance ETH/USDT 1h",
                "binance ETH/USDT 1h",
            ]
            for symbol, part in (("BTC/USDT", "BTC-USDT"), ("ETH/USDT", "ETH-USDT")):
                cached = pd.read_parquet(cache / "ohlcv" / "binance" / part / "1h.parquet")
                pd.testing.assert_frame_equal(
                    cached.set_index("timestamp"),
                    markets[symbol].iloc[:START],
                    check_freq=False,
                    check_index_type=False,
                )
        assert emulator.wait_idle()


def test_fetch_refuses_a_symbol_given_twice_before_any_request(tmp_path: Path) -> None:
    proc = tradeloom(*FETCH, "--symbol", "BTC/USDT", "--start", "2024-01-01", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2,
        "",
        "--symbol: BTC/USDT given more than once; give each once\n",
    )


def test_fetch_offline_exits_1_as_its_help_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An unreachable exchange is not bad input (exit 2): the help's "1 the exchange did
    # not answer or cannot be reached" holds for a host name that does not resolve.
    import ccxt

    from tradeloom.plugins.data.ccxt_client import use_client_factory

    def unresolvable(settings: dict[str, object]) -> ccxt.Exchange:
        urls = {"api": {"public": "https://api.nonexistent.invalid/api/v3"}}
        return ccxt.binance({**settings, "urls": urls})

    with use_client_factory("binance", unresolvable):
        code = main([*FETCH, "--start", "2024-01-01", "--cache-dir", str(tmp_path)])

    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (
        1,
        "",
        "data: binance BTC/USDT 1h: cannot reach api.nonexistent.invalid: its name does not "
        "resolve (this machine is offline, or the exchange's URL is wrong); nothing was sent\n",
    )
    help_text = forkserver.run(
        [sys.executable, "-m", "tradeloom.cli.main", *FETCH[:2], "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "1 the exchange did not answer or cannot be reached" in " ".join(help_text.split())
