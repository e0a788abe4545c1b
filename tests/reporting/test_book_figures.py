"""The books' figures (`tradeloom.reporting.book_figures`) on journal frames built by hand:
each figure is the documented one, worked out here another way (the equity's return and
drawdown by a loop, the AUC by scikit-learn, the ECE bin by bin), and a challenger added
to a running run is measured over its own bars. Over a universe, the AUC and ECE are
those of every symbol's predictions pooled, each labelled by its own symbol's close
``horizon`` of its own bars later."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from tradeloom.reporting.book_figures import CHAMPION, book_figures, resolved_predictions

CAPITAL = 1000.0
HORIZON = 2
N = 60


def _frames(added_at: int) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    rng = np.random.default_rng(7)
    bars = np.arange(100, 100 + N)
    times = pd.date_range("2024-01-01", periods=N, freq="1h", tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N)))
    live = pd.DataFrame(
        {
            "bar": bars,
            "timestamp": times,
            "symbol": "BTC/USDT",
            "close": close,
            "probability": rng.uniform(0, 1, N),
        }
    )
    live.loc[3, "probability"] = math.nan  # a bar the model did not predict
    fills = pd.DataFrame({"price": [100.0, 101.0], "quantity": [2.0, 2.0]})
    later = slice(added_at, None)
    shadow = pd.DataFrame(
        {
            "bar": bars[later],
            "timestamp": times[later],
            "challenger": "late",
            "probabilities": [[p] for p in rng.uniform(0, 1, N - added_at)],
            "equity": CAPITAL + np.cumsum(rng.normal(0, 5, N - added_at)),
            "traded": np.r_[300.0, np.zeros(N - added_at - 1)],
        }
    )
    shadow_fills = pd.DataFrame({"challenger": ["late"], "price": [100.0], "quantity": [3.0]})
    curve = pd.DataFrame({"equity": CAPITAL + np.cumsum(rng.normal(0, 5, N))})
    frames = {
        "live_bar": live,
        "fill": fills,
        "challenger_bar": shadow,
        "challenger_fill": shadow_fills,
    }
    return frames, curve


def _max_drawdown(equity: np.ndarray) -> float:
    peak, worst = CAPITAL, 0.0
    for value in equity:
        peak = max(peak, value)
        worst = max(worst, (peak - value) / peak)
    return worst


def _resolved(p: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [
        (p[i], close[i + HORIZON] > close[i])
        for i in range(len(p) - HORIZON)
        if not math.isnan(p[i])
    ]
    return np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])


def _ece(p: np.ndarray, up: np.ndarray) -> float:
    total = 0.0
    for b in range(10):
        inside = (np.minimum((p * 10).astype(int), 9)) == b
        if inside.any():
            total += inside.sum() / len(p) * abs(p[inside].mean() - up[inside].mean())
    return total


def test_each_book_has_the_documented_figures_over_its_own_bars() -> None:
    frames, curve = _frames(added_at=20)
    champion, late = book_figures(frames, curve, CAPITAL, 3600, HORIZON)
    assert (champion.name, late.name) == (CHAMPION, "late")
    assert (champion.first_bar, champion.bars) == (100, N)
    assert (late.first_bar, late.bars) == (120, N - 20)  # added at bar 120: from there
    close = frames["live_bar"]["close"].to_numpy()
    for book, equity, p, closes in (
        (champion, curve["equity"].to_numpy(), frames["live_bar"]["probability"].to_numpy(), close),
        (
            late,
            frames["challenger_bar"]["equity"].to_numpy(),
            np.array([q[0] for q in frames["challenger_bar"]["probabilities"]]),
            close[20:],
        ),
    ):
        assert book.equity == equity[-1]
        assert book.total_return == pytest.approx(equity[-1] / CAPITAL - 1, rel=1e-12)
        assert book.max_drawdown == pytest.approx(_max_drawdown(equity), rel=1e-12)
        scores, up = _resolved(p, closes)
        assert book.auc == pytest.approx(roc_auc_score(up, scores), rel=1e-12)
        assert book.ece == pytest.approx(_ece(scores, up.astype(float)), rel=1e-12)
    assert (champion.fills, late.fills) == (2, 1)
    assert champion.turnover == pytest.approx((200 + 202) / CAPITAL)
    assert late.turnover == pytest.approx(300 / CAPITAL)


def test_no_challenger_no_books_and_no_label_no_model_figures() -> None:
    frames, curve = _frames(added_at=0)
    assert (
        book_figures(
            {**frames, "challenger_bar": frames["challenger_bar"][:0]},
            curve,
            CAPITAL,
            3600,
            HORIZON,
        )
        == []
    )
    books = book_figures(frames, curve, CAPITAL, 3600, None)
    assert [(b.auc, b.ece) for b in books] == [(None, None), (None, None)]
    assert all(b.sharpe is not None and b.max_drawdown is not None for b in books)


# --- a universe: every symbol's predictions pooled -----------------------------------

SYMBOLS = ("ETH/USDT", "BTC/USDT", "SOL/USDT")
"""The universe's order (its warm_up rows'); ETH has no bar at the first clock bar, so
the order the live bars first name them in is another."""


def _universe_frames() -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    rng = np.random.default_rng(11)
    bars = np.arange(200, 200 + N)
    times = pd.date_range("2024-01-01", periods=N, freq="1h", tz="UTC")
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (N, len(SYMBOLS))), axis=0))
    present = np.ones((N, len(SYMBOLS)), dtype=bool)
    present[0, 0] = False  # ETH/USDT opens a bar late
    present[20:26, 2] = False  # SOL/USDT halted six bars
    # informative probabilities: whether the symbol's close is higher HORIZON of its
    # own bars later, blurred (a wrong symbol or a wrong later bar scores near 0.5)
    probability = np.full((N, len(SYMBOLS)), np.nan)
    for s in range(len(SYMBOLS)):
        own = np.flatnonzero(present[:, s])
        for k, t in enumerate(own[:-HORIZON]):
            up = closes[own[k + HORIZON], s] > closes[t, s]
            probability[t, s] = np.clip(0.5 + (0.3 if up else -0.3) + rng.normal(0, 0.2), 0, 1)
    probability[7, 1] = math.nan  # a bar the model did not predict
    live = pd.DataFrame(
        [
            {"bar": bars[t], "timestamp": times[t], "symbol": SYMBOLS[s],
             "close": closes[t, s], "probability": probability[t, s]}
            for t in range(N)
            for s in range(len(SYMBOLS))
            if present[t, s]
        ]
    )  # fmt: skip
    blurred = np.where(
        present, np.clip(probability + rng.normal(0, 0.3, probability.shape), 0, 1), np.nan
    )
    added = 10
    shadow = pd.DataFrame(
        {
            "bar": bars[added:],
            "timestamp": times[added:],
            "challenger": "late",
            "probabilities": [list(row) for row in blurred[added:]],
            "equity": CAPITAL + np.cumsum(rng.normal(0, 5, N - added)),
            "traded": np.zeros(N - added),
        }
    )
    frames = {
        "live_bar": live,
        "fill": pd.DataFrame({"price": [100.0], "quantity": [1.0]}),
        "challenger_bar": shadow,
        "challenger_fill": pd.DataFrame({"challenger": [], "price": [], "quantity": []}),
        "warm_up": pd.DataFrame({"symbol": list(SYMBOLS)}),
    }
    return frames, pd.DataFrame({"equity": CAPITAL + np.cumsum(rng.normal(0, 5, N))})


def _pooled(live: pd.DataFrame, p_of: Any, first_bar: int) -> tuple[np.ndarray, np.ndarray]:
    """The documented pooling, by a loop: each symbol's own bars from ``first_bar`` on,
    its prediction at its k-th against its close at its (k + HORIZON)-th."""
    scores, ups = [], []
    for symbol in SYMBOLS:
        own = live[(live["symbol"] == symbol) & (live["bar"] >= first_bar)]
        bars, close = own["bar"].tolist(), own["close"].tolist()
        for k in range(len(bars) - HORIZON):
            p = p_of(symbol, bars[k])
            if not math.isnan(p):
                scores.append(p)
                ups.append(close[k + HORIZON] > close[k])
    return np.array(scores), np.array(ups)


def test_over_a_universe_auc_and_ece_pool_every_symbols_predictions() -> None:
    frames, curve = _universe_frames()
    champion, late = book_figures(frames, curve, CAPITAL, 3600, HORIZON)
    live = frames["live_bar"]
    by_bar = live.set_index(["symbol", "bar"])["probability"]
    shadow = frames["challenger_bar"].set_index("bar")["probabilities"]
    for book, p_of, first in (
        (champion, lambda s, t: by_bar[(s, t)], 200),
        (late, lambda s, t: shadow[t][SYMBOLS.index(s)], 210),
    ):
        scores, up = _pooled(live, p_of, first)
        assert len(scores) > 2 * (N - 10 - HORIZON)  # the symbols' predictions pooled
        assert book.auc == pytest.approx(roc_auc_score(up, scores), rel=1e-12)
        assert book.ece == pytest.approx(_ece(scores, up.astype(float)), rel=1e-12)
    assert champion.auc is not None and champion.auc > 0.9  # each symbol's own labels
    # the books' other figures are as before: the model's figures alone are new
    assert (champion.first_bar, champion.bars, late.first_bar, late.bars) == (200, N, 210, N - 10)


def test_a_universe_without_warm_up_rows_orders_its_symbols_as_they_first_traded() -> None:
    frames, curve = _universe_frames()
    kept = book_figures(frames, curve, CAPITAL, 3600, HORIZON)
    without = {k: v for k, v in frames.items() if k != "warm_up"}
    live = frames["live_bar"]
    # a journal without warm_up rows whose live bars name the symbols in order from its
    # first bar: the same figures
    ordered = without | {"live_bar": live[live["bar"] > 200].reset_index(drop=True)}
    first = [str(s) for s in dict.fromkeys(ordered["live_bar"]["symbol"])]
    assert first == list(SYMBOLS)
    again = book_figures(ordered, curve, CAPITAL, 3600, HORIZON)
    assert again[1].auc is not None and again[1].auc == kept[1].auc  # from bar 210
    # the champion's figures are each symbol's by name: in any order, the same
    assert book_figures(without, curve, CAPITAL, 3600, HORIZON)[0].auc == kept[0].auc


def test_a_challenger_row_without_a_probability_per_symbol_has_no_model_figures() -> None:
    frames, curve = _universe_frames()
    shadow = frames["challenger_bar"].copy()
    shadow["probabilities"] = [row[:2] for row in shadow["probabilities"]]
    champion, late = book_figures(
        {**frames, "challenger_bar": shadow}, curve, CAPITAL, 3600, HORIZON
    )
    assert champion.auc is not None and (late.auc, late.ece) == (None, None)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.lists(
        st.tuples(st.floats(0, 1), st.floats(50, 150), st.booleans(), st.booleans()),
        min_size=1,
        max_size=30,
    ),
)
def test_the_pooled_predictions_are_each_symbols_own_pairs(
    m: int, horizon: int, cells: list[tuple[float, float, bool, bool]]
) -> None:
    n = len(cells)
    rng = np.random.default_rng(n * 31 + m)
    p = np.array([[c[0] for c in cells]] * m).T + rng.uniform(-0.05, 0.05, (n, m))
    close = np.array([[c[1] for c in cells]] * m).T * rng.uniform(0.9, 1.1, (n, m))
    absent = np.array([[c[2] and s == n % m for s in range(m)] for c in cells])
    unpredicted = np.array([[c[3] for _ in range(m)] for c in cells])
    probabilities = pd.DataFrame(np.where(unpredicted, np.nan, p), index=np.arange(n) + 5)
    closes = pd.DataFrame(np.where(absent, np.nan, close), index=np.arange(n) + 5)
    scores, up = resolved_predictions(probabilities, closes, horizon)
    wanted = []
    for s in range(m):
        own = [t for t in range(n) if not absent[t, s]]
        wanted += [
            (probabilities.iloc[t, s], close[own[k + horizon], s] > close[t, s])
            for k, t in enumerate(own[: max(0, len(own) - horizon)])
            if not unpredicted[t, s]
        ]
    assert list(zip(scores.tolist(), up.tolist(), strict=True)) == wanted
