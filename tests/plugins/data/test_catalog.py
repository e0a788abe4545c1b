"""The data catalog: ``tradeloom data import`` of real vendor formats, ``tradeloom data
list``, and a strategy reading an imported series with ``kind: catalog``.

The vendor files are small copies of real formats (tests/fixtures/vendor/, prices
synthetic): Binance public data's spot klines (no header, epoch ms), a Yahoo Finance
download (``Date,Open,High,Low,Close,Adj Close,Volume``) and a Dukascopy export
(``Gmt time``, day-first times).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from tests.forkserver import tradeloom
from tradeloom.cli.main import main
from tradeloom.errors import UserError
from tradeloom.plugins.data.catalog import catalog_rows
from tradeloom.plugins.data.ohlcv_cache import CacheKey, OhlcvCache
from tradeloom.plugins.data.vendor_import import parse_column_map
from tradeloom.reporting.json_output import output_schema

pytestmark = pytest.mark.usefixtures("cli_logging")

ROOT = Path(__file__).resolve().parents[3]  # this checkout's package in the forked commands
VENDOR = ROOT / "tests" / "fixtures" / "vendor"
BINANCE = VENDOR / "BTCUSDT-1h-2024-01.csv"
YAHOO = VENDOR / "BTC-USD.csv"
DUKASCOPY = VENDOR / "EURUSD_Candlestick_1_Hour_BID_08.01.2024-08.01.2024.csv"

BINANCE_ARGS = ["--no-header", "--map", "time=1,open=2,high=3,low=4,close=5,volume=6"]
BINANCE_ARGS += ["--symbol", "BTC/USDT", "--venue", "binance"]
YAHOO_ARGS = ["--map", "time=Date,open=Open,high=High,low=Low,close=Close,volume=Volume"]
YAHOO_ARGS += ["--symbol", "BTC-USD", "--venue", "yahoo"]


def import_(
    capsys: pytest.CaptureFixture[str], cache: Path, file: Path, *args: str
) -> tuple[int, str, str]:
    code = main(["data", "import", str(file), *args, "--cache-dir", str(cache)])
    out, err = capsys.readouterr()
    return code, out, err


def files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def test_binance_and_yahoo_files_import_and_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"

    assert import_(capsys, cache, BINANCE, *BINANCE_ARGS) == (
        0,
        "binance BTC/USDT 1h: imported 240 bars from 2024-01-01T00:00Z to 2024-01-10T23:00Z "
        f"into {cache}/ohlcv/binance/BTC-USDT/1h.parquet\n",
        "",
    )
    assert import_(capsys, cache, YAHOO, *YAHOO_ARGS)[:2] == (
        0,
        "yahoo BTC-USD 1d: imported 30 bars from 2024-01-01T00:00Z to 2024-01-30T00:00Z "
        f"into {cache}/ohlcv/yahoo/BTC-USD/1d.parquet\n",
    )

    rows = catalog_rows(cache)
    assert [{k: v for k, v in r.items() if k not in ("bytes", "path")} for r in rows] == [
        {
            "venue": "binance",
            "symbol": "BTC/USDT",
            "timeframe": "1h",
            "source": "imported",
            "rows": 240,
            "first": "2024-01-01T00:00Z",
            "last": "2024-01-10T23:00Z",
            "gaps": 0,
        },
        {
            "venue": "yahoo",
            "symbol": "BTC-USD",
            "timeframe": "1d",
            "source": "imported",
            "rows": 30,
            "first": "2024-01-01T00:00Z",
            "last": "2024-01-30T00:00Z",
            "gaps": 0,
        },
    ]
    assert all(r["bytes"] == Path(r["path"]).stat().st_size > 0 for r in rows)
    # the bars are the vendor's: Binance's first kline, Yahoo's last close
    bars = OhlcvCache(cache).read(CacheKey("binance", "BTC/USDT", "1h"))
    assert bars is not None
    assert bars.frame.iloc[0].tolist() == [
        42283.58,
        42321.78846509,
        42248.80541019,
        42283.89209288,
        1018.64704677,
    ]
    yahoo = pd.read_csv(YAHOO)
    daily = OhlcvCache(cache).read(CacheKey("yahoo", "BTC-USD", "1d"))
    assert daily is not None
    assert daily.frame["close"].tolist() == yahoo["Close"].tolist()  # not Adj Close

    assert main(["data", "list", "--cache-dir", str(cache)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert f"2 series in {cache}" in table[0]
    shown = [[c.strip() for c in line.split("│")[1:-1]] for line in table if "│" in line]
    assert [" ".join(row[:8]) for row in shown] == [
        "binance BTC/USDT 1h imported 240 2024-01-01T00:00Z 2024-01-10T23:00Z 0",
        "yahoo BTC-USD 1d imported 30 2024-01-01T00:00Z 2024-01-30T00:00Z 0",
    ]


def test_data_list_json_is_the_catalog_rows_under_its_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert main(["data", "list", "--cache-dir", str(cache), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "schema": "tradeloom.data-list/1",
        "root": str(cache),
        "series": [],
    }
    assert import_(capsys, cache, BINANCE, *BINANCE_ARGS)[0] == 0
    assert import_(capsys, cache, YAHOO, *YAHOO_ARGS)[0] == 0

    assert main(["data", "list", "--cache-dir", str(cache), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)  # one object, nothing else on stdout
    validator = jsonschema.Draft202012Validator(output_schema("data-list"))
    assert [e.message for e in validator.iter_errors(listed)] == []
    assert listed["series"] == catalog_rows(cache)
    assert [(s["venue"], s["rows"], s["gaps"]) for s in listed["series"]] == [
        ("binance", 240, 0),
        ("yahoo", 30, 0),
    ]


def test_a_day_first_time_format_reads_a_dukascopy_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    args = ["--map", "time=Gmt time", "--time-format", "%d.%m.%Y %H:%M:%S.%f"]
    args += ["--symbol", "EUR/USD", "--venue", "dukascopy", "--calendar", "forex"]

    code, out, _ = import_(capsys, cache, DUKASCOPY, *args)

    assert (code, out.split(" into ")[0]) == (
        0,
        "dukascopy EUR/USD 1h: imported 24 bars from 2024-01-08T00:00Z to 2024-01-08T23:00Z",
    )
    assert import_(capsys, cache, DUKASCOPY, *args[:2], *args[4:]) == (
        2,
        "",
        f"data: {DUKASCOPY}: column 'Gmt time' (time) has 24 unparsable timestamps (first "
        "'08.01.2024 00:00:00.000' at line 2); expected ISO 8601 such as "
        "2024-03-01T04:00:00Z, or epoch seconds or milliseconds, between 1677-09-21 and "
        "2262-04-11\n",
    )


def test_a_gap_kept_under_repair_is_counted_by_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    lines = BINANCE.read_text().splitlines(keepends=True)
    gapped = tmp_path / "gapped.csv"
    gapped.write_text("".join(lines[:9] + lines[12:]))  # 03:00 read, 09:00-11:00 missing

    code, _, err = import_(capsys, cache, gapped, *BINANCE_ARGS)
    assert (code, err) == (
        2,
        f"data: {gapped}: 1 gap in the 1h bars, 3 bars missing (first at 2024-01-01T09:00Z, "
        "before line 10); fill it or add --validation repair to keep it\n",
    )
    assert files(cache) == []

    code, _, err = import_(capsys, cache, gapped, *BINANCE_ARGS, "--validation", "repair")
    assert (code, err) == (0, "warning: 1 gap kept (first missing bar at 2024-01-01T09:00Z)\n")
    (row,) = catalog_rows(cache)
    assert (row["rows"], row["first"], row["last"], row["gaps"]) == (
        237,
        "2024-01-01T00:00Z",
        "2024-01-10T23:00Z",
        3,
    )


def _yahoo_null(path: Path) -> Path:
    lines = YAHOO.read_text().splitlines(keepends=True)
    lines[5] = "2024-01-05,null,null,null,null,null,null\n"  # how Yahoo writes a missing day
    path.write_text("".join(lines))
    return path


def _binance_high_below_low(path: Path) -> Path:
    lines = BINANCE.read_text().splitlines(keepends=True)
    cells = lines[6].split(",")
    cells[2] = "1.0"  # high
    lines[6] = ",".join(cells)
    path.write_text("".join(lines))
    return path


def _binance_text_price(path: Path) -> Path:
    lines = BINANCE.read_text().splitlines(keepends=True)
    lines[99] = lines[99].replace(lines[99].split(",")[4], "42k", 1)
    path.write_text("".join(lines))
    return path


def _binance_empty_time(path: Path) -> Path:
    lines = BINANCE.read_text().splitlines(keepends=True)
    lines[4] = lines[4][lines[4].index(",") :]
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (
            _binance_empty_time,
            BINANCE_ARGS,
            "column 1 (time) has 1 unparsable timestamp (an empty cell at line 5); expected "
            "ISO 8601 such as 2024-03-01T04:00:00Z, or epoch seconds or milliseconds, between "
            "1677-09-21 and 2262-04-11",
        ),
        (
            _yahoo_null,
            YAHOO_ARGS,
            "1 row has missing or infinite values in open, high, low, close, volume (at "
            "2024-01-05T00:00Z, line 6); drop it or add --validation repair",
        ),
        (
            _binance_high_below_low,
            BINANCE_ARGS,
            "1 row has high < low (at 2024-01-01T06:00Z, line 7); drop it or add "
            "--validation repair",
        ),
        (
            _binance_text_price,
            BINANCE_ARGS,
            "column 5 (close) has 1 non-numeric value ('42k' at line 100); expected numbers",
        ),
    ],
)
def test_a_malformed_vendor_file_is_refused_with_its_line_and_nothing_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: object,
    args: list[str],
    message: str,
) -> None:
    cache = tmp_path / "cache"
    assert import_(capsys, cache, BINANCE, *BINANCE_ARGS)[0] == 0
    assert import_(capsys, cache, YAHOO, *YAHOO_ARGS)[0] == 0
    before = {p: p.read_bytes() for p in cache.rglob("*.parquet")}
    bad = make(tmp_path / "bad.csv")  # type: ignore[operator]

    assert import_(capsys, cache, bad, *args, "--replace") == (2, "", f"data: {bad}: {message}\n")
    assert {p: p.read_bytes() for p in cache.rglob("*.parquet")} == before
    assert len(files(cache)) == 2  # no temporary file left


def test_reimport_is_unchanged_other_bars_are_refused_unless_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert import_(capsys, cache, YAHOO, *YAHOO_ARGS)[0] == 0
    path = cache / "ohlcv" / "yahoo" / "BTC-USD" / "1d.parquet"
    written = path.stat().st_mtime_ns

    assert import_(capsys, cache, YAHOO, *YAHOO_ARGS) == (
        0,
        "yahoo BTC-USD 1d: already imported, 30 bars from 2024-01-01T00:00Z to "
        "2024-01-30T00:00Z; unchanged\n",
        "",
    )
    assert path.stat().st_mtime_ns == written

    shorter = tmp_path / "BTC-USD.csv"
    shorter.write_text("".join(YAHOO.read_text().splitlines(keepends=True)[:21]))
    assert import_(capsys, cache, shorter, *YAHOO_ARGS) == (
        2,
        "",
        f"data: the catalog already holds yahoo BTC-USD 1d (30 bars) in {path}, other than "
        "these; add --replace to overwrite it, or import under another --venue\n",
    )
    assert import_(capsys, cache, shorter, *YAHOO_ARGS, "--replace")[:2] == (
        0,
        "yahoo BTC-USD 1d: replaced with 20 bars from 2024-01-01T00:00Z to 2024-01-20T00:00Z "
        f"into {path}\n",
    )
    assert catalog_rows(cache)[0]["rows"] == 20


def test_a_fetched_series_is_listed_as_fetched(tmp_path: Path) -> None:
    cache = OhlcvCache(tmp_path)
    index = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC").delete(2)
    frame = pd.DataFrame({c: [1.0, 1.0, 1.0] for c in ("open", "high", "low", "close")}, index)
    frame["volume"] = 5.0
    cache.write(CacheKey("binance", "ETH/USDT", "1h"), frame, 1704067200000, 1704081600000)

    (row,) = catalog_rows(tmp_path)

    assert (row["venue"], row["source"], row["rows"], row["gaps"]) == ("binance", "fetched", 3, 1)


@pytest.mark.parametrize(
    ("text", "header", "message"),
    [
        ("time=Date,price=Close", True, "--map: unknown role 'price'; the roles are time, open, "
         "high, low, close, volume"),
        ("time=Date,time=Day", True, "--map: time given twice"),
        ("Date", True, "--map: 'Date' is not ROLE=COLUMN (time=Date)"),
        ("time=Date", False, "--map: time=Date: a file without a header names its columns by "
         "number from 1 (time=1)"),
        ("time=1,open=2", False, "--map: a file without a header needs the column number of "
         "high, low, close (e.g. time=1,open=2,high=3,low=4,close=5,volume=6)"),
    ],
)  # fmt: skip
def test_a_bad_column_map_is_one_line(text: str, header: bool, message: str) -> None:
    with pytest.raises(UserError, match=rf"^{re.escape(message)}$"):
        parse_column_map(text, header=header)


STRATEGY = """\
name: catalog_btc
data:
  kind: catalog
  symbol: {symbol}
  timeframe: 1h
  cache_dir: cache
features: [{{kind: log_return}}, {{kind: rsi, window: 14}}]
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  walk_forward: {{train_window: 100, retrain_every: 50}}
signal: {{kind: threshold, threshold: 0.05}}
risk: {{sizing: {{kind: fixed_fraction, fraction: 0.1}}}}
execution: {{kind: simulated}}
"""


def test_a_strategy_runs_offline_from_an_imported_series(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert import_(capsys, tmp_path / "cache", BINANCE, *BINANCE_ARGS)[0] == 0
    strategy = tmp_path / "s.yaml"
    strategy.write_text(STRATEGY.format(symbol="BTC/USDT"))

    proc = tradeloom("run", strategy, "--out", tmp_path / "run", cwd=tmp_path, pythonpath=ROOT)

    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["bars"] == 240
    equity = pd.read_csv(tmp_path / "run" / "equity.csv")
    assert equity.iloc[0, 0].startswith("2024-01-01")

    # imported under --venue binance, the klines are the cache a ccxt strategy reads offline
    ccxt = tmp_path / "ccxt.yaml"
    ccxt.write_text(
        strategy.read_text().replace(
            "  kind: catalog\n",
            '  kind: ccxt\n  exchange: binance\n  start: "2024-01-01"\n  end: "2024-01-11"\n'
            "  offline: true\n",
        )
    )
    proc = tradeloom("run", ccxt, "--out", tmp_path / "ccxt", cwd=tmp_path, pythonpath=ROOT)
    assert proc.returncode == 0, proc.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ccxt" / "equity.csv"), equity)


def test_a_series_the_catalog_lacks_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    strategy = tmp_path / "s.yaml"
    strategy.write_text(STRATEGY.format(symbol="ETH/USDT"))

    proc = tradeloom("validate", strategy, cwd=tmp_path, pythonpath=ROOT)

    assert (proc.returncode, proc.stderr.splitlines()) == (
        2,
        [
            f"{strategy}:4:11 data.symbol: no series ETH/USDT 1h in the catalog at "
            f"{(tmp_path / 'cache').resolve()}; see tradeloom data list"
        ],
    )


def test_a_series_of_several_venues_needs_venue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert import_(capsys, cache, BINANCE, *BINANCE_ARGS)[0] == 0
    assert import_(capsys, cache, BINANCE, *BINANCE_ARGS[:-1], "copy")[0] == 0
    strategy = tmp_path / "s.yaml"
    strategy.write_text(STRATEGY.format(symbol="BTC/USDT"))

    assert main(["validate", str(strategy)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{strategy}:4:11 data.symbol: series BTC/USDT 1h is in the catalog from binance, "
        "copy; choose one with venue:"
    ]
    strategy.write_text(STRATEGY.format(symbol="BTC/USDT\n  venue: copy"))
    assert main(["validate", str(strategy)]) == 0


def test_a_vendor_parquet_file_imports_and_its_rows_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    frame = pd.read_csv(YAHOO, parse_dates=["Date"])
    good = tmp_path / "BTC-USD.parquet"
    frame.to_parquet(good, index=False)
    frame.loc[3, "Low"] = frame.loc[3, "High"] * 2
    bad = tmp_path / "bad.parquet"
    frame.to_parquet(bad, index=False)

    assert import_(capsys, cache, bad, *YAHOO_ARGS) == (
        2,
        "",
        f"data: {bad}: 1 row has high < low (at 2024-01-04T00:00Z, row 4); drop it or add "
        "--validation repair\n",
    )
    assert files(cache) == []
    assert import_(capsys, cache, good, *YAHOO_ARGS)[0] == 0
    assert catalog_rows(cache)[0]["rows"] == 30


def test_naive_times_are_read_in_the_given_timezone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--map", "time=Gmt time", "--time-format", "%d.%m.%Y %H:%M:%S.%f"]
    args += ["--symbol", "EUR/USD", "--calendar", "forex", "--timezone", "Europe/Zurich"]

    code, out, _ = import_(capsys, tmp_path / "cache", DUKASCOPY, *args)

    assert (code, out.split(" into ")[0]) == (
        0,
        "local EUR/USD 1h: imported 24 bars from 2024-01-07T23:00Z to 2024-01-08T22:00Z",
    )
    assert import_(capsys, tmp_path / "cache", DUKASCOPY, *args[:-1], "Mars/Base") == (
        2,
        "",
        "--timezone: unknown time zone 'Mars/Base' (an IANA name such as Europe/Zurich)\n",
    )


def test_a_damaged_catalog_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "ohlcv" / "binance" / "BTC-USDT" / "1h.parquet"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not parquet")

    assert main(["data", "list", "--cache-dir", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"data: cache file {damaged} is corrupted (cannot read it as Parquet")
    assert line.endswith("delete it and run tradeloom data fetch again")

    assert main(["data", "list", "--cache-dir", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out == (
        f"no series in {tmp_path / 'empty'}; add some with tradeloom data fetch or "
        "tradeloom data import\n"
    )


def test_a_universe_reads_each_symbol_from_the_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradeloom.plugins.component import BuildContext
    from tradeloom.plugins.data.catalog_source import CatalogParams, build_catalog

    cache = tmp_path / "cache"
    assert import_(capsys, cache, BINANCE, *BINANCE_ARGS)[0] == 0
    assert import_(capsys, cache, BINANCE, *BINANCE_ARGS[:-3], "ETH/USDT", "--venue", "x")[0] == 0
    params = CatalogParams(symbols=["BTC/USDT", "ETH/USDT"], timeframe="1h", cache_dir="cache")

    universe = build_catalog(params, BuildContext("s.yaml", tmp_path, seed=0)).load_universe()

    assert list(universe.symbols) == ["BTC/USDT", "ETH/USDT"]
    assert [len(b.frame) for b in universe.bars] == [240, 240]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", ""], "--symbol: is blank; write a market symbol such as BTC/USDT"),
        (["--symbol", "X", "--venue", "../up"], "--venue: '../up' must be a plain name "
         "(letters, digits, . _ -) such as yahoo"),
        (["--symbol", "X", "--timeframe", "1h"], f"data: {YAHOO}: bars are mostly 1d apart, "
         "but --timeframe is 1h; fix --timeframe or resample the file"),
        (["--symbol", "X", "--no-header"], "--map: a file without a header needs the column "
         "number of time, open, high, low, close (e.g. time=1,open=2,high=3,low=4,close=5,"
         "volume=6)"),
    ],
)  # fmt: skip
def test_a_bad_option_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    mapped = [] if "--no-header" in args else ["--map", "time=Date"]
    assert import_(capsys, tmp_path, YAHOO, *args, *mapped) == (2, "", message + "\n")
    assert files(tmp_path) == []
