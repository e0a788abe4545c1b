"""The books' figures (`tradeloom.reporting.book_figures`) on journal frames built by hand:
each figure is the documented one, worked out here another way (the equity's return and
drawdown by a loop, the AUC by scikit-learn, the ECE bin by bin), and a challenger added
to a running run is measured over its own bars."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tradeloom.reporting.book_figures import CHAMPION, book_figures

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
