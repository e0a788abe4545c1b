"""A data source of the single-market form (``load() -> Bars``) still runs, with a warning.

The data layer is written over symbols (`DataSource.load_universe`: one market is the
universe of one). A third-party source written before keeps working for at least one
minor release: it is driven through `UniverseOfOne`, and warns with a
`TradeloomDeprecationWarning` through `tradeloom._deprecated` (CHANGELOG.md's Deprecated).
The plugin is kept as it was written in ``tests/fixtures/plugins/one_market_data.py``.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import warnings
from pathlib import Path

import pandas as pd
import pytest

from tests.builders import strategy_text
from tests.old_forms import FIXTURES, run_cli, without_run_ids
from tradeloom._deprecated import TradeloomDeprecationWarning
from tradeloom.domain import Universe
from tradeloom.journal import read_events
from tradeloom.live.tick.ticker import BarTicker
from tradeloom.plugins.protocols import DataSource, KnownLength, KnownSymbols, LiveFeed
from tradeloom.plugins.protocols_symbols import LiveUniverseOfOne, UniverseOfOne, data_source

KINDS = ("one_market", "one_market_universe")
WARNING = (
    "data kind 'one_market' of plugin 'one_market_data': a data source of one market "
    "(load() -> Bars) is deprecated since tradeloom 0.1 and will be removed in tradeloom "
    "0.2; use load_universe() -> Universe, one market being the universe of one"
)


FEED_WARNING = (
    "data kind 'one_market_feed' of plugin 'one_market_data': a data source of one market "
    "(load() -> Bars; closed_bars, bar_stream) is deprecated since tradeloom 0.1 and will be "
    "removed in tradeloom 0.2; use load_universe() -> Universe, closed_bars_of(symbol, ...) "
    "and bar_stream_of(symbol, ...), one market being the universe of one"
)


@pytest.fixture
def one_market_data(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.syspath_prepend(str(FIXTURES))
    import one_market_data

    return one_market_data


def test_the_single_market_form_is_adapted_with_a_warning(one_market_data: object) -> None:
    old = one_market_data.OneMarket(one_market_data.OneMarketParams(bars=50), seed=4)  # type: ignore[attr-defined]
    assert not isinstance(old, DataSource)

    with pytest.warns(TradeloomDeprecationWarning) as caught:
        adapted = data_source(old, "data kind 'one_market' of plugin 'one_market_data'")

    assert [str(w.message) for w in caught] == [WARNING]
    assert isinstance(adapted, UniverseOfOne) and isinstance(adapted, DataSource)
    universe = adapted.load_universe()
    assert isinstance(universe, Universe) and universe.symbols == ("BTC/USDT",)
    pd.testing.assert_frame_equal(universe.bars[0].frame, old.load().frame, check_exact=True)
    assert universe.index.equals(old.load().frame.index)
    # what it can do besides loading is its own; it has one symbol
    assert isinstance(adapted, KnownLength) and adapted.bar_count() == 50
    assert isinstance(adapted, KnownSymbols) and adapted.symbol_count() == 1
    assert not hasattr(adapted, "load_informative")
    copied = pickle.loads(pickle.dumps(adapted))
    assert copied.bar_count() == 50


def test_a_live_feed_of_the_single_market_form_is_adapted_with_one_warning(
    one_market_data: object,
) -> None:
    old = one_market_data.OneMarketFeed(one_market_data.OneMarketParams(bars=50), seed=4)  # type: ignore[attr-defined]
    assert not isinstance(old, LiveFeed)

    with pytest.warns(TradeloomDeprecationWarning) as caught:
        adapted = data_source(old, "data kind 'one_market_feed' of plugin 'one_market_data'")

    assert [str(w.message) for w in caught] == [FEED_WARNING]
    assert isinstance(adapted, LiveUniverseOfOne) and isinstance(adapted, LiveFeed)
    assert adapted.load_universe().symbols == ("BTC/USDT",)
    index = old.load().frame.index
    last, now = index[9], index[20]
    pd.testing.assert_frame_equal(
        adapted.closed_bars_of("BTC/USDT", last, now), old.closed_bars(last, now), check_exact=True
    )
    assert adapted.bar_stream_of("BTC/USDT", grace_seconds=1.0, clock=lambda: 0.0) is None
    # the live ticker runs the bars the feed closed, one market's clock being its bars
    ticker = BarTicker(adapted, ("BTC/USDT",), 3600, 0.0)
    assert not ticker.watch("auto", lambda: now)
    ticker.poll(last, now)
    ran, seen = [], last
    while (due := ticker.due(seen, lambda: now)) is not None:
        seen, prices = due
        ran.append((seen, prices[0].tolist()))
    expected = old.load().frame.iloc[10:20]
    assert [t for t, _ in ran] == list(expected.index)
    assert [row for _, row in ran] == expected.to_numpy().tolist()


def test_a_source_over_symbols_is_taken_as_it_is(one_market_data: object) -> None:
    new = one_market_data.OneMarketUniverse(one_market_data.OneMarketParams(bars=50), seed=4)  # type: ignore[attr-defined]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data_source(new, "data kind 'one_market_universe'") is new


def _run(folder: Path, kind: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        folder,
        kind,
        strategy_text(
            plugins=["one_market_data"],
            data={"kind": kind, "bars": 400},
        ),
    )


def test_a_single_market_plugin_runs_through_the_cli_with_a_deprecation(tmp_path: Path) -> None:
    old = _run(tmp_path, "one_market")
    new = _run(tmp_path, "one_market_universe")

    assert old.returncode == 0, old.stderr
    assert new.returncode == 0, new.stderr
    assert f"TradeloomDeprecationWarning: {WARNING}" in old.stderr
    assert "DeprecationWarning" not in new.stderr
    # the same bars through the adapter and through the form of today: the same run
    for name in ("equity.csv", "orders.csv", "fills.csv", "trades.csv", "positions.csv"):
        # an order's id starts with the run's (a hash of its file: the kinds differ)
        one, universe = (without_run_ids((tmp_path / kind / name).read_text()) for kind in KINDS)
        assert one == universe, name
    metrics = [json.loads((tmp_path / kind / "metrics.json").read_text()) for kind in KINDS]
    assert [m.pop("run_dir") for m in metrics] == [str(tmp_path / kind) for kind in KINDS]
    assert metrics[0] == metrics[1]
    loaded = [e for e in read_events(tmp_path / "one_market" / "journal.sqlite")]
    assert [(e.symbol, e.bars) for e in loaded if e.KIND == "data_loaded"] == [("BTC/USDT", 400)]
    assert sum(e.KIND == "fill" for e in loaded) > 0
