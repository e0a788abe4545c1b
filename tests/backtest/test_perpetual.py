"""A perpetual future in a backtest: funding placed on the bars, booked, journaled, refused
where it cannot be booked (live; paper is in tests/live/test_perp_paper.py); the
shipped ``strategies/btc_perp.yaml`` checked against the rule row by row, and its batch
and per-bar drivers against each other.

The rule (`tradeloom.core.funding`): a funding time is booked at the bar whose interval
holds it, on the position carried into the bar, at the bar's open:
``amount = -position x open x rate``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog

from tradeloom.cli.main import main
from tradeloom.domain import Bars, Universe
from tradeloom.engine.funding import LiveFunding, place_funding
from tradeloom.journal.reader import read_frame
from tradeloom.plugins.data.auxiliary import AuxiliarySeries
from tradeloom.plugins.data.synthetic_funding import synthetic_funding

ROOT = Path(__file__).resolve().parents[2]
PERP = ROOT / "strategies" / "btc_perp.yaml"
BARS = 1300
"""The shipped file's run, shortened: its model predicts from bar 1,000."""
H = 3_600_000_000_000


@pytest.fixture(autouse=True)
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run ``tradeloom ARGS`` in this process; return its exit code, stdout and stderr."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _universe(opens: list[str], timeframe: str = "4h") -> Universe:
    index = pd.DatetimeIndex(pd.to_datetime(opens, utc=True), name="timestamp")
    frame = pd.DataFrame(
        {c: np.full(len(index), 100.0) for c in ("open", "high", "low", "close", "volume")},
        index=index,
    )
    return Universe((Bars(frame, "BTC/USDT:USDT", timeframe, 4 * 3600),), index)


def _series(times: list[str], rates: list[float], symbol: str | None = None) -> AuxiliarySeries:
    stamps = pd.to_datetime(times, utc=True).as_unit("ns").asi8
    return AuxiliarySeries("funding", stamps, np.array(rates), 0, symbol)


def test_each_funding_time_goes_to_the_bar_whose_interval_holds_it() -> None:
    # 4h bars from 00:00, none at 16:00 (a gap), the last closing at 2024-01-02 00:00
    universe = _universe(
        ["2024-01-01 00:00", "2024-01-01 04:00", "2024-01-01 08:00", "2024-01-01 12:00",
         "2024-01-01 20:00"]
    )  # fmt: skip
    series = _series(
        [
            "2023-12-31 16:00",  # before the first bar: no position was held, dropped
            "2024-01-01 00:00",  # the first bar's open: bar 0
            "2024-01-01 08:00",  # bar 2's open
            "2024-01-01 10:00",  # inside bar 2: adds up with 08:00
            "2024-01-01 16:00",  # in the gap: the next bar, 20:00
            "2024-01-02 00:00",  # the last bar's close: after the run, dropped
        ],
        [0.5, 0.001, 0.002, 0.0005, -0.003, 0.7],
    )
    assert place_funding(universe, [series]).tolist() == [
        [0.001], [0.0], [0.0025], [0.0], [-0.003]
    ]  # fmt: skip
    other = _series(["2024-01-01 04:00"], [0.01], symbol="ETH/USDT:USDT")
    assert not place_funding(universe, [other]).any()  # another symbol's rates


def test_a_paper_run_places_the_funding_bar_by_bar_as_the_backtest_does() -> None:
    universe = _universe(
        ["2024-01-01 00:00", "2024-01-01 04:00", "2024-01-01 08:00", "2024-01-01 12:00",
         "2024-01-01 20:00"]
    )  # fmt: skip
    series = _series(
        ["2023-12-31 16:00", "2024-01-01 00:00", "2024-01-01 08:00", "2024-01-01 10:00",
         "2024-01-01 16:00", "2024-01-02 00:00"],
        [0.5, 0.001, 0.002, 0.0005, -0.003, 0.7],
    )  # fmt: skip
    now = [0]
    reads = []

    def load() -> list[AuxiliarySeries]:  # what the exchange has published by now
        reads.append(now[0])
        return [series.published_by(now[0])]

    opens = universe.index.as_unit("ns").asi8
    now[0] = int(opens[0])
    live = LiveFunding(load, "funding", ["BTC/USDT:USDT"], 4 * H)
    placed = []
    for open_ in opens.tolist():
        now[0] = open_ + 4 * H  # the bar closed
        placed.append(live.rates(open_, np.array([True]))[0])
    assert placed == place_funding(universe, [series])[:, 0].tolist()
    assert len(reads) > 2  # read again as rates were published


def test_the_synthetic_funding_is_every_8_hours_plausible_and_seeded() -> None:
    first = pd.Timestamp("2024-01-01T05:00Z").value
    end = first + 30 * 24 * H
    series = synthetic_funding("funding", "BTC/USDT:USDT", 0, entropy=7, first_ns=first, end_ns=end)
    times = pd.DatetimeIndex(pd.to_datetime(series.times, utc=True))
    # from the 8h time at or before a day ahead of the first bar, to the last close
    assert times[0] == pd.Timestamp("2023-12-31T00:00Z")
    assert times[-1] == pd.Timestamp("2024-01-31T00:00Z")
    assert set(np.diff(series.times)) == {8 * H}
    assert set(times.hour) == {0, 8, 16}
    assert np.all(np.abs(series.values) <= 0.003)
    assert 0.00005 < float(np.mean(series.values)) < 0.00015  # the interest component
    assert float(np.std(series.values)) > 0.00003  # with a premium that moves
    again = synthetic_funding("funding", "BTC/USDT:USDT", 0, entropy=7, first_ns=first, end_ns=end)
    assert np.array_equal(again.values, series.values)
    other = synthetic_funding("funding", "ETH/USDT:USDT", 0, entropy=7, first_ns=first, end_ns=end)
    assert not np.array_equal(other.values, series.values)


def _run(
    capsys: pytest.CaptureFixture[str], out: Path, *extra: str
) -> tuple[dict[str, object], str]:
    code, stdout, err = cli(
        capsys, "-q", "run", PERP, "--out", out, "--set", f"data.bars={BARS}", *extra
    )
    assert code == 0, err
    return json.loads((out / "metrics.json").read_text()), stdout


def test_btc_perp_books_funding_at_each_funding_time_on_the_position_held(
    capsys: pytest.CaptureFixture[str], ram_tmp_path: Path
) -> None:
    out = ram_tmp_path / "batch"
    metrics, stdout = _run(capsys, out)
    funding = read_frame(out / "journal.sqlite", "funding")
    bars = pd.read_parquet(out / "bars.parquet")
    equity = pd.read_csv(out / "equity.csv", parse_dates=["timestamp"])
    opens = pd.DatetimeIndex(bars["timestamp"])
    start = pd.Timestamp("2024-01-01T00:00Z")
    rates = synthetic_funding(
        "funding", "BTC/USDT:USDT", 0, entropy=7, first_ns=start.value, end_ns=start.value
        + BARS * H,
    )  # fmt: skip
    rate_at = dict(zip(rates.times.tolist(), rates.values.tolist(), strict=True))
    position = equity["position"].to_numpy()
    cash = equity["cash"].to_numpy()
    # every funding time of the run with a position carried into its bar is booked, once
    due = [
        b for b in range(1, BARS)
        if opens[b].hour % 8 == 0 and opens[b].minute == 0 and position[b - 1] != 0.0
    ]  # fmt: skip
    assert funding["bar"].tolist() == due
    assert len(due) > 10  # the strategy holds positions over funding times, both sides
    assert (position[[b - 1 for b in due]] > 0).any() and (position[[b - 1 for b in due]] < 0).any()
    open_ = bars["open"].to_numpy()
    for row in funding.itertuples():
        b = int(row.bar)
        assert row.timestamp == opens[b]
        assert row.rate == rate_at[opens[b].value]
        assert row.price == open_[b]
        assert row.position == position[b - 1]
        assert row.amount == -position[b - 1] * open_[b] * row.rate
        if position[b] == position[b - 1]:  # no fill in the bar: the cash moved by it only
            assert cash[b] == pytest.approx(cash[b - 1] + row.amount, rel=1e-12)
    assert metrics["funding"] == pytest.approx(float(funding["amount"].sum()), rel=1e-12)
    assert f"funding (net, + received)  {metrics['funding']:+,.2f}" in stdout
    # a closed trade's pnl includes the funding booked while it was open: at each bar a
    # trade closed and left the account flat, the trades' pnl add up to the equity's change
    trades = pd.read_csv(out / "trades.csv")
    flat = [b for b in sorted(set(trades["exit_bar"])) if position[b] == 0.0]
    assert flat
    for b in flat:
        closed = trades.loc[trades["exit_bar"] <= b, "pnl"].sum()
        assert closed == pytest.approx(cash[b] - 100_000.0, rel=1e-9, abs=1e-6)


def test_each_market_of_a_universe_books_its_own_funding(
    capsys: pytest.CaptureFixture[str], ram_tmp_path: Path
) -> None:
    symbols = ("BTC/USDT:USDT", "ETH/USDT:USDT")
    text = PERP.read_text().replace("  symbol: BTC/USDT:USDT", f"  symbols: [{', '.join(symbols)}]")
    (ram_tmp_path / "u.yaml").write_text(text)
    out = ram_tmp_path / "run"
    code, _, err = cli(
        capsys, "-q", "run", ram_tmp_path / "u.yaml", "--out", out, "--set", f"data.bars={BARS}"
    )
    assert code == 0, err
    funding = read_frame(out / "journal.sqlite", "funding")
    bars = pd.read_parquet(out / "bars.parquet")
    equity = pd.read_csv(out / "equity.csv")
    positions = pd.read_csv(out / "positions.csv")
    start = pd.Timestamp("2024-01-01T00:00Z").value
    for symbol in symbols:
        own = funding[funding["symbol"] == symbol]
        rates = synthetic_funding(
            "funding", symbol, 0, entropy=7, first_ns=start, end_ns=start + BARS * H
        )
        rate_at = dict(zip(rates.times.tolist(), rates.values.tolist(), strict=True))
        mine = positions[positions["symbol"] == symbol].set_index("bar")["position"]
        position = mine.reindex(range(len(equity)), fill_value=0.0).to_numpy()
        opens = bars.loc[bars["symbol"] == symbol, "open"].to_numpy()
        due = [b for b in range(8, BARS, 8) if position[b - 1] != 0.0]
        assert own["bar"].tolist() == due and len(due) > 5, symbol
        for row in own.itertuples():
            b = int(row.bar)
            assert row.rate == rate_at[start + b * H]
            assert row.amount == -position[b - 1] * opens[b] * row.rate
    # each symbol its own rates: the two markets' funding differs
    assert set(funding["rate"][funding["symbol"] == symbols[0]]).isdisjoint(
        funding["rate"][funding["symbol"] == symbols[1]]
    )


def test_the_per_bar_driver_books_the_same_funding_as_the_batch_driver(
    capsys: pytest.CaptureFixture[str], ram_tmp_path: Path
) -> None:
    _run(capsys, ram_tmp_path / "batch")
    _run(capsys, ram_tmp_path / "per_bar", "--driver", "per-bar")
    for name in ("equity.csv", "fills.csv", "trades.csv"):
        same = (ram_tmp_path / "batch" / name).read_bytes()
        assert (ram_tmp_path / "per_bar" / name).read_bytes() == same, name
    batch = read_frame(ram_tmp_path / "batch" / "journal.sqlite", "funding")
    per_bar = read_frame(ram_tmp_path / "per_bar" / "journal.sqlite", "funding")
    assert len(batch) > 10
    pd.testing.assert_frame_equal(batch.drop(columns="seq"), per_bar.drop(columns="seq"))


def test_a_perpetual_without_its_funding_series_is_refused_with_the_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = PERP.read_text()
    (tmp_path / "p.yaml").write_text(text)
    (tmp_path / "nofunding.yaml").write_text(text.replace("  funding: funding\n", ""))
    line = 1 + text.splitlines().index("execution:")
    assert cli(capsys, "validate", tmp_path / "nofunding.yaml") == (
        2,
        "",
        f"{tmp_path / 'nofunding.yaml'}:{line + 1}:3 execution: market swap needs funding: the "
        "name of the data.auxiliary series of its funding rates (kind funding_rate)\n",
    )
    assert cli(capsys, "validate", tmp_path / "p.yaml", "--set", "execution.market=spot") == (
        2,
        "",
        f"{tmp_path / 'p.yaml'}:{line + 1}:3 execution: funding applies to a perpetual: set "
        "market: swap, or remove funding\n",
    )
    assert cli(capsys, "validate", tmp_path / "p.yaml", "--set", "execution.funding=fund") == (
        2,
        "",
        "--set execution.funding: no data.auxiliary series 'fund' (the series: funding); "
        "declare the funding rates under data.auxiliary (kind funding_rate)\n",
    )


def test_a_portfolio_files_live_run_of_a_perpetual_is_refused_until_it_books_funding(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A perpetual trades live alone (tests/live/test_perp_live.py); a portfolio
    file's paper or live run does not book its funding yet."""
    text = PERP.read_text()
    (tmp_path / "p.yaml").write_text(text)
    (tmp_path / "book.yaml").write_text(
        "name: book\ninitial_cash: 100000\nstrategies:\n  - {file: p.yaml, weight: 1.0}\n"
    )
    line = 1 + text.splitlines().index("  funding: funding")
    for mode in ("paper", "live"):
        code, stdout, err = cli(
            capsys, "run", tmp_path / "book.yaml", "--mode", mode, "--out", tmp_path / "run"
        )
        assert (code, stdout) == (2, "")
        # among the file's other refusals of this mode (its synthetic bars are not live)
        assert (
            f"{tmp_path / 'p.yaml'}:{line}:12 execution.funding: a portfolio file's {mode} run "
            f"does not book a perpetual's funding yet; backtest it or {mode} trade it alone, "
            "or remove market: swap"
        ) in err.splitlines()
        assert not (tmp_path / "run").exists()
    # served by the emulator (its bars can be played): that line alone, from validate as
    # from run
    simulated = ("--mode", "paper", "--clock", "simulated")
    alone = (
        f"{tmp_path / 'p.yaml'}:{line}:12 execution.funding: a portfolio file's paper run "
        "does not book a perpetual's funding yet; backtest it or paper trade it alone, or "
        "remove market: swap\n"
    )
    assert cli(capsys, "validate", tmp_path / "book.yaml", *simulated) == (2, "", alone)
    ran = cli(capsys, "run", tmp_path / "book.yaml", *simulated, "--out", tmp_path / "run")
    assert ran == (2, "", alone)
    assert not (tmp_path / "run").exists()
