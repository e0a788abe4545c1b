"""Portfolio accounting equals independent references on identical entries and exits.

tradeloom runs through its real path (a CSV with a ``p_up`` column, a strategy file,
`run_strategy`, the compiled batch driver, the run directory's files); the same bars,
signals, fees, slippage and fill convention go to vectorbt's
``Portfolio.from_signals`` and to backtesting.py. Final equity and every trade
(entry and exit bar, size, entry and exit price, fees, profit) agree within 1e-9
relative. Both references are test dependencies only.

How the strategy becomes signals: ``model: precomputed`` reads ``p_up``, which is 1.0
at an entry bar, 0.0 at an exit bar and 0.5 elsewhere; ``signal: threshold 1.0``
with ``min_interval: 1`` turns 1.0 into a long signal and 0.0 into a short one
(confidence |p - 0.5| * 2 = 1) and 0.5 into none; ``sizing: fixed_fraction 1.0``
targets all the equity; the venue is long-only. A short signal when long is an
``EXIT_SIGNAL``; when flat it is rejected (``SHORT_NOT_ALLOWED``), as
``from_signals`` ignores an exit when flat; a long signal when long is a hold, as
``from_signals`` (``accumulate=False``) ignores an entry when in a position. No bar
is both an entry and an exit.

The fill conventions, worked out from tradeloom's README ("Position semantics") and
the references' sources:

- ``fill: close``. tradeloom orders ``equity / (close * (1 + slippage) * (1 + fee))``
  at the decision bar's close and fills it there at ``close * (1 + slippage)``: it
  spends exactly the cash. vectorbt: ``price=close`` (the default) with
  ``size=np.inf``, which `buy_nb` caps to the cash: ``cash / (1 + fee)`` of notional
  at ``price * (1 + slippage)``, the rest as the fee. The same quantity up to the
  order of the floating-point operations. Sells: both fill at
  ``close * (1 - slippage)`` and charge the fee on the slipped notional. vectorbt
  gets ``min_size=0``: the simulated venue has no minimum order size.
- ``fill: next_open``. tradeloom still sizes at the decision bar's close and fills at
  the next bar's open ``o[t+1] * (1 + slippage)``: when the open is below the decision
  close, cash is left over (``o[t+1] / c[t]`` of it is spent); when above, the spot
  venue fills what the cash affords and cancels the rest (``INSUFFICIENT_CASH``), so
  all the cash is spent. vectorbt gets the next open as the execution price at the
  signal bar (``price=open.shift(-1)``; the last bar's signals are dropped, as
  tradeloom's order from the last bar expires unfilled), and, since ``size=np.inf``
  would spend all the cash at the open, ``size_type="percent"`` with
  ``size = min(1, o[t+1] / c[t])``: `buy_nb` then spends that share of the cash,
  fee included, which is exactly tradeloom's quantity in both cases. vectorbt
  records the trade at the signal bar t, tradeloom at the fill bar t + 1.
- backtesting.py trades whole units and takes a fraction of equity only below 1
  (``0 < size < 1``). `FractionalBacktest` with a unit of 1e-11 makes units so small
  that flooring to whole ones moves a size by less than 1e-12 relative, and
  ``size = 1 - 1e-12`` stands for all-in (``min(1 - 1e-12, o[t+1] / c[t])`` under
  next-open, as above). Its ``trade_on_close=True`` fills at the signal bar's close
  (``fill: close``), the default at the next open (``fill: next_open``), recorded at
  the fill bar as tradeloom does. Its ``commission`` is charged on entry and exit like
  tradeloom's fee. Its ``spread`` moves only the entry price (closing trades fill at
  the unadjusted price), unlike slippage, so the backtesting.py cross-check runs
  without slippage. It calls the strategy from bar 1 on and never fills an order of
  the last bar, so its signals at bars 0 and n - 1 are dropped (for both engines).

Profit and fees are compared relative to the trade's entry notional, the scale of
the numbers they are differences of (a profit near zero has no meaningful relative
error of its own).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tests.reference_libraries import ON_VECTORBTS_WORKER, Reference
from tradeloom.backtest.run import run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.schemas import load_strategy

vbt = Reference("vectorbt")  # imported by the tests that use it (`reference_libraries`)

REL = 1e-9
CASH = 10_000.0
START = pd.Timestamp("2024-01-01T00:00:00Z")
ALL_IN_BELOW_ONE = 1.0 - 1e-12  # backtesting.py reads a size >= 1 as units
FRACTIONAL_UNIT = 1e-11

# vectorbt 1.2 calls DataFrame.rename(inplace=True), which pandas 3.1 deprecates.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.rename"),
    # vectorbt compiles `simulate_from_signal_func_nb` uncached (it takes functions) at
    # its first call in a process, about 10 s: one worker compiles it, not each
    ON_VECTORBTS_WORKER,
]


def _market(seed: int, n: int) -> pd.DataFrame:
    """Return a random walk's hourly OHLCV; opens gap away from the previous close."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.004, n))
    wick = np.abs(rng.normal(0.0, 0.01, (2, n)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(START, periods=n, freq="1h"),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": rng.uniform(0.05, 2.0, n),
        }
    )


def _signals(seed: int, n: int, rate: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Return random entries and exits, never both on one bar."""
    u = np.random.default_rng(seed + 1000).random(n)
    return u < rate, u > 1.0 - rate


class _Tradeloom:
    """One tradeloom backtest's outputs, read from its run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.trades = pd.read_csv(run_dir / "trades.csv")
        self.equity = pd.read_csv(run_dir / "equity.csv")
        self.metrics = json.loads((run_dir / "metrics.json").read_text())

    def cancellations(self) -> list[str]:
        rows = read_rows(self.run_dir / "journal.sqlite", ["order_cancelled"])
        return [row.values["reason"] for row in rows]


def _run_tradeloom(
    folder: Path,
    frame: pd.DataFrame,
    entries: np.ndarray,
    exits: np.ndarray,
    fill: str,
    fee_bps: float,
    slippage_bps: float,
    risk: dict[str, Any] | None = None,
) -> _Tradeloom:
    assert not (entries & exits).any()
    folder.mkdir(parents=True, exist_ok=True)
    data = frame.assign(
        timestamp=frame["timestamp"].map(pd.Timestamp.isoformat),
        p_up=np.where(entries, 1.0, np.where(exits, 0.0, 0.5)),
    )
    data.to_csv(folder / "bars.csv", index=False, float_format="%.17g")
    doc: dict[str, Any] = {
        "name": "reference",
        "data": {"kind": "csv", "path": "bars.csv"},
        "features": [{"kind": "log_return", "period": 1}],
        "model": {"kind": "precomputed", "column": "p_up"},
        "signal": {"kind": "threshold", "threshold": 1.0, "min_interval": 1},
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 1.0}, **(risk or {})},
        "execution": {
            "kind": "simulated",
            "initial_cash": CASH,
            "fill": fill,
            "fee_bps": fee_bps,
            "slippage_bps": slippage_bps,
            "allow_short": False,
        },
        # what is compared is read from the tables, metrics and journal: no report.html
        # or features.parquet (a tenth of each run's time)
        "outputs": {"report": False, "features": False},
    }
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    config, plugins = load_strategy(path, [])
    outcome = run_strategy(build_pipeline(config), plugins, out=folder / "run")
    return _Tradeloom(outcome.run_dir)


def _next_open_share(frame: pd.DataFrame, cap: float) -> np.ndarray:
    """Return the share of the cash tradeloom's next-open entry at each bar spends."""
    share = frame["open"].shift(-1).to_numpy() / frame["close"].to_numpy()
    return np.minimum(cap, np.nan_to_num(share, nan=cap))


def _run_vectorbt(
    frame: pd.DataFrame,
    entries: np.ndarray,
    exits: np.ndarray,
    fill: str,
    fee_bps: float,
    slippage_bps: float,
) -> Any:
    index = pd.DatetimeIndex(frame["timestamp"])
    close = pd.Series(frame["close"].to_numpy(), index=index)
    # min_size=0: the simulated venue has no minimum order (vectorbt's default is 1e-8 units)
    costs = {
        "fees": fee_bps / 1e4,
        "slippage": slippage_bps / 1e4,
        "init_cash": CASH,
        "min_size": 0.0,
    }
    if fill == "close":
        # price=close is vectorbt's default and an array of inf is ``size=np.inf``, but
        # given as arrays they are the argument types of the next-open call below: its
        # simulator, compiled per types in each process, is compiled once, not twice
        # (4.2 s of CPU)
        size = np.full(len(close), np.inf)
        return vbt.Portfolio.from_signals(close, entries, exits, price=close, size=size, **costs)
    entries, exits = entries.copy(), exits.copy()
    entries[-1] = exits[-1] = False
    return vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=pd.Series(frame["open"].shift(-1).to_numpy(), index=index),
        size=_next_open_share(frame, 1.0),
        size_type="percent",
        **costs,
    )


def _near(ours: float, theirs: float, scale: float = 0.0) -> bool:
    return abs(ours - theirs) <= REL * max(abs(ours), abs(theirs), scale)


def _assert_same_trades(ours: pd.DataFrame, theirs: pd.DataFrame, label: str) -> None:
    """Compare trade lists: columns bar/entry_bar, exit_bar, size, prices, fees, pnl."""
    assert len(ours) == len(theirs), label
    for i, (a, b) in enumerate(zip(ours.itertuples(), theirs.itertuples(), strict=True)):
        where = f"{label}, trade {i}"
        assert (a.entry_bar, a.exit_bar) == (b.entry_bar, b.exit_bar), where
        assert a.direction == 1, where
        assert _near(a.quantity, b.quantity), (where, a.quantity, b.quantity)
        assert _near(a.entry_price, b.entry_price), (where, a.entry_price, b.entry_price)
        assert _near(a.exit_price, b.exit_price), (where, a.exit_price, b.exit_price)
        notional = a.quantity * a.entry_price
        assert _near(a.fees, b.fees, notional), (where, a.fees, b.fees)
        assert _near(a.pnl, b.pnl, notional), (where, a.pnl, b.pnl)


def _vectorbt_trades(pf: Any, frame: pd.DataFrame, shift: int) -> tuple[pd.DataFrame, float]:
    """Return vectorbt's closed trades in tradeloom's columns, and the open position."""
    records = pf.trades.records_readable
    index = pd.DatetimeIndex(frame["timestamp"])
    closed = records[records["Status"] == "Closed"]
    trades = pd.DataFrame(
        {
            "entry_bar": index.get_indexer(closed["Entry Timestamp"]) + shift,
            "exit_bar": index.get_indexer(closed["Exit Timestamp"]) + shift,
            "quantity": closed["Size"].to_numpy(),
            "entry_price": closed["Avg Entry Price"].to_numpy(),
            "exit_price": closed["Avg Exit Price"].to_numpy(),
            "fees": (closed["Entry Fees"] + closed["Exit Fees"]).to_numpy(),
            "pnl": closed["PnL"].to_numpy(),
        }
    )
    still_open = records.loc[records["Status"] == "Open", "Size"]
    return trades, float(still_open.sum())


def _assert_matches_vectorbt(
    folder: Path,
    frame: pd.DataFrame,
    entries: np.ndarray,
    exits: np.ndarray,
    fill: str,
    fee_bps: float,
    slippage_bps: float,
) -> _Tradeloom:
    ours = _run_tradeloom(folder, frame, entries, exits, fill, fee_bps, slippage_bps)
    pf = _run_vectorbt(frame, entries, exits, fill, fee_bps, slippage_bps)
    label = f"fill={fill} fee_bps={fee_bps} slippage_bps={slippage_bps}"
    final = float(pf.final_value())
    assert _near(ours.metrics["final_equity"], final), (label, ours.metrics["final_equity"], final)
    assert _near(float(ours.equity["equity"].iloc[-1]), final), label
    theirs, open_size = _vectorbt_trades(pf, frame, 1 if fill == "next_open" else 0)
    _assert_same_trades(ours.trades, theirs, label)
    assert ours.metrics["trades"] == len(theirs)
    assert _near(ours.metrics["open_position"], open_size), label
    return ours


COSTS = [(0.0, 0.0), (10.0, 0.0), (0.0, 25.0), (10.0, 5.0), (75.0, 30.0)]


@pytest.mark.slow
@pytest.mark.parametrize("fill", ["close", "next_open"])
@pytest.mark.parametrize(("fee_bps", "slippage_bps"), COSTS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accounting_equals_vectorbt_from_signals(
    tmp_path: Path, seed: int, fill: str, fee_bps: float, slippage_bps: float
) -> None:
    frame = _market(seed, 400)
    entries, exits = _signals(seed, len(frame))
    ours = _assert_matches_vectorbt(tmp_path, frame, entries, exits, fill, fee_bps, slippage_bps)
    assert ours.metrics["trades"] >= 10  # the comparison covers many round trips
    assert ours.metrics["rejections"].get("SHORT_NOT_ALLOWED", 0) >= 1  # exits when flat happened


def test_next_open_entries_reach_both_sides_of_the_cash_limit(tmp_path: Path) -> None:
    """The markets above test both next-open cases: an open above and below the close."""
    frame = _market(0, 400)
    entries, exits = _signals(0, len(frame))
    ours = _assert_matches_vectorbt(tmp_path, frame, entries, exits, "next_open", 10.0, 5.0)
    orders = pd.read_csv(ours.run_dir / "orders.csv")
    decided = orders.loc[orders["reason"] == "ENTRY", "bar"].to_numpy()
    share = _next_open_share(frame, np.inf)[decided[decided < len(frame) - 1]]
    assert (share > 1.0).any() and (share < 1.0).any()
    # an entry whose fill open is above its decision close is cut to the cash
    assert ours.cancellations().count("INSUFFICIENT_CASH") == int((share > 1.0).sum())


@pytest.mark.slow
@settings(
    max_examples=examples(40, suite=20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    pattern=st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=2, max_size=150),
    fill=st.sampled_from(["close", "next_open"]),
    costs=st.sampled_from(COSTS),
)
def test_random_entry_exit_patterns_equal_vectorbt(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    pattern: list[int],
    fill: str,
    costs: tuple[float, float],
) -> None:
    signals = np.array(pattern)
    frame = _market(seed, len(signals))
    folder = tmp_path_factory.mktemp("reference")
    _assert_matches_vectorbt(folder, frame, signals == 1, signals == 2, fill, *costs)


@pytest.mark.slow
@pytest.mark.parametrize(("fee_bps", "slippage_bps"), [(0.0, 0.0), (10.0, 0.0), (75.0, 0.0)])
def test_a_trailing_stop_equals_vectorbts_sl_trail(
    ram_tmp_path: Path, fee_bps: float, slippage_bps: float
) -> None:
    """``risk.trailing_stop`` against ``from_signals(sl_stop=..., sl_trail=True)``.

    The conventions agree (vectorbt's ``nb.py``): the stop is checked against the
    bar's open, low and high with the best price up to the previous bar, and the best
    price takes the bar's high after the check; a gap fills at the open, else at the
    level, then slippage and fee. vectorbt starts the best price at the entry's fill
    price with ``stop_entry_price="fillprice"`` (its default is the close, which
    differs from tradeloom's entry price by the slippage). A bar whose stop fires
    takes no entry in vectorbt (the stop's signal replaces the bar's): tradeloom's
    ``cooldown_bars: 1`` is the same rule.

    One convention differs and is left out: vectorbt fills a triggered stop at its
    level with no slippage (``stop_exit_price="stoplimit"``), tradeloom's stop is a
    stop-market order and pays the venue's slippage, as its stop-loss does. With
    slippage the exit prices differ by exactly that (checked below), so the
    comparison runs with fees and without slippage.
    """
    frame = _market(3, 300)
    entries, _ = _signals(3, len(frame), rate=0.1)
    exits = np.zeros(len(frame), bool)
    risk = {"trailing_stop": 0.03, "cooldown_bars": 1}
    ours = _run_tradeloom(ram_tmp_path, frame, entries, exits, "close", fee_bps, slippage_bps, risk)
    index = pd.DatetimeIndex(frame["timestamp"])

    def series(column: str) -> pd.Series:
        return pd.Series(frame[column].to_numpy(), index=index)

    pf = vbt.Portfolio.from_signals(
        series("close"),
        entries,
        exits,
        open=series("open"),
        high=series("high"),
        low=series("low"),
        sl_stop=0.03,
        sl_trail=True,
        stop_entry_price="fillprice",
        size=np.inf,
        fees=fee_bps / 1e4,
        slippage=slippage_bps / 1e4,
        init_cash=CASH,
        min_size=0.0,
    )
    theirs, open_size = _vectorbt_trades(pf, frame, 0)
    _assert_same_trades(ours.trades, theirs, "trailing")
    assert (ours.trades["exit_reason"] == "EXIT_TRAILING_STOP").sum() >= 10
    equity = pf.value().to_numpy()
    np.testing.assert_allclose(ours.equity["equity"].to_numpy(), equity, rtol=1e-9, atol=0.0)
    assert _near(ours.metrics["open_position"], open_size)
    assert ours.metrics["rejections"].get("COOLDOWN", 0) >= 1  # the rule was exercised


def test_with_slippage_a_trailing_exit_pays_it_where_vectorbt_does_not(ram_tmp_path: Path) -> None:
    """The one documented difference: the first trailing exit, with 5 bps of slippage,
    is vectorbt's level less the slippage (the same entry, the same level)."""
    frame = _market(3, 60)
    entries, _ = _signals(3, len(frame), rate=0.1)
    exits = np.zeros(len(frame), bool)
    risk = {"trailing_stop": 0.03, "cooldown_bars": 1}
    ours = _run_tradeloom(ram_tmp_path, frame, entries, exits, "close", 0.0, 5.0, risk)
    index = pd.DatetimeIndex(frame["timestamp"])
    pf = vbt.Portfolio.from_signals(
        *(pd.Series(frame[c].to_numpy(), index=index) for c in ("close",)),
        entries,
        exits,
        **{c: pd.Series(frame[c].to_numpy(), index=index) for c in ("open", "high", "low")},
        sl_stop=0.03,
        sl_trail=True,
        stop_entry_price="fillprice",
        size=np.inf,
        slippage=5e-4,
        init_cash=CASH,
        min_size=0.0,
    )
    theirs, _ = _vectorbt_trades(pf, frame, 0)
    mine = ours.trades.iloc[0]
    first = theirs.iloc[0]
    assert mine["exit_reason"] == "EXIT_TRAILING_STOP"
    assert (mine["entry_bar"], mine["exit_bar"]) == (first["entry_bar"], first["exit_bar"])
    assert _near(mine["entry_price"], first["entry_price"])
    assert frame["open"].iloc[int(mine["exit_bar"])] > first["exit_price"]  # not a gap
    assert _near(mine["exit_price"], first["exit_price"] * (1 - 5e-4))


def _signals_strategy() -> type[Any]:
    """backtesting.py's strategy of the entries and exits a test gives it."""
    from backtesting import Strategy

    class Signals(Strategy):
        """Buy ``fraction[i]`` of the equity on an entry when flat; close on an exit."""

        entries: np.ndarray = np.zeros(0, bool)
        exits: np.ndarray = np.zeros(0, bool)
        fraction: np.ndarray = np.zeros(0)

        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            if self.entries[i] and not self.position:
                self.buy(size=float(self.fraction[i]))
            elif self.exits[i] and self.position:
                self.position.close()

    return Signals


@pytest.mark.parametrize("fill", ["close", "next_open"])
@pytest.mark.parametrize("fee_bps", [0.0, 10.0, 75.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_accounting_equals_backtesting_py(
    tmp_path: Path, seed: int, fill: str, fee_bps: float
) -> None:
    frame = _market(seed, 400)
    entries, exits = _signals(seed, len(frame))
    entries[[0, -1]] = exits[[0, -1]] = False
    ours = _run_tradeloom(tmp_path, frame, entries, exits, fill, fee_bps, 0.0)
    data = frame.set_index("timestamp")[["open", "high", "low", "close", "volume"]]
    data.columns = ["Open", "High", "Low", "Close", "Volume"]
    if fill == "close":
        fraction = np.full(len(frame), ALL_IN_BELOW_ONE)
    else:
        fraction = _next_open_share(frame, ALL_IN_BELOW_ONE)
    from backtesting.lib import FractionalBacktest

    backtest = FractionalBacktest(
        data,
        _signals_strategy(),
        cash=CASH,
        commission=fee_bps / 1e4,
        trade_on_close=fill == "close",
        fractional_unit=FRACTIONAL_UNIT,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "trades remain open" and the fractional-unit notes
        stats = backtest.run(entries=entries, exits=exits, fraction=fraction)
    label = f"backtesting.py fill={fill} fee_bps={fee_bps}"
    final = float(stats["Equity Final [$]"])
    assert _near(ours.metrics["final_equity"], final), (label, ours.metrics["final_equity"], final)
    raw = stats["_trades"]
    theirs = pd.DataFrame(
        {
            "entry_bar": raw["EntryBar"].to_numpy(),
            "exit_bar": raw["ExitBar"].to_numpy(),
            "quantity": raw["Size"].to_numpy(),
            "entry_price": raw["EntryPrice"].to_numpy(),
            "exit_price": raw["ExitPrice"].to_numpy(),
            "fees": raw["Commission"].to_numpy(),
            "pnl": raw["PnL"].to_numpy(),
        }
    )
    _assert_same_trades(ours.trades, theirs, label)
    assert ours.metrics["trades"] >= 10
