"""`prediction_health`: a model's AUC and calibration error over its resolved predictions
(each symbol's own bars), the rule a canary's rollback and a promotion gate's health read,
and the pairs status, the console and the report read."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from tests.hunting import examples
from tradeloom.journal import ChallengerBar, RunIdentity, open_journal
from tradeloom.live.lifecycle.challengers import _journaled
from tradeloom.live.lifecycle.prediction_health import health_json, prediction_health
from tradeloom.reporting.book_figures import resolved_predictions
from tradeloom.stats import RELIABILITY_BINS, auc, calibration_error


def _ece(p: np.ndarray, up: np.ndarray) -> float:
    """Ten equal-width bins, written out bin by bin (p = 1 in the last)."""
    total = 0.0
    for b in range(10):
        inside = (p >= b / 10) & ((p < (b + 1) / 10) if b < 9 else (p <= 1.0))
        if inside.any():
            total += inside.sum() * abs(p[inside].mean() - up[inside].mean())
    return total / len(p)


@settings(max_examples=examples(200), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    bars=st.integers(0, 40),
    symbols=st.integers(1, 3),
    horizon=st.integers(1, 5),
    min_samples=st.integers(2, 30),
)
def test_the_figures_are_sklearns_auc_and_the_ece_over_the_resolved_pairs(
    seed: int, bars: int, symbols: int, horizon: int, min_samples: int
) -> None:
    rng = np.random.default_rng(seed)
    closes = 100 + rng.normal(0, 1, (bars + horizon + 5, symbols)).cumsum(axis=0)
    closes[rng.random(closes.shape) < 0.1] = np.nan  # symbols without a bar
    asked = {}
    for t in rng.choice(len(closes), size=min(bars, len(closes)), replace=False):
        row = rng.random(symbols)
        row[rng.random(symbols) < 0.1] = np.nan
        asked[int(t)] = row
    health = prediction_health(asked, closes, horizon, min_samples)
    start = min(asked, default=0)
    pairs = []  # each symbol's own bars (a NaN close: no bar), from the first prediction on
    for s in range(symbols):
        own = [t for t in range(start, len(closes)) if not np.isnan(closes[t, s])]
        for k, t in enumerate(own[: max(0, len(own) - horizon)]):
            if t in asked and not np.isnan(asked[t][s]):
                pairs.append((asked[t][s], closes[own[k + horizon], s] > closes[t, s]))
    assert health.samples == len(pairs)
    if len(pairs) < min_samples:
        assert math.isnan(health.auc) and math.isnan(health.calibration_error)
        return
    p = np.array([q for q, _ in pairs])
    up = np.array([u for _, u in pairs], dtype=np.float64)
    assert health.calibration_error == pytest.approx(_ece(p, up), abs=1e-12)
    if 0 < up.sum() < len(up):
        assert health.auc == pytest.approx(roc_auc_score(up, p), abs=1e-12)
    else:
        assert math.isnan(health.auc)  # one class: no AUC


def test_the_journal_holds_the_figures_as_json_with_null_for_none() -> None:
    closes = np.array([[1.0], [2.0], [3.0]])
    few = prediction_health({0: np.array([0.7])}, closes, horizon=1, min_samples=5)
    assert health_json(few) == '{"auc": null, "calibration_error": null, "samples": 1}'


def test_the_gate_and_the_books_pair_a_universes_predictions_alike() -> None:
    """One rule: a universe with a symbol missing bars gives the gate's health the very
    pairs `book_figures` shows (`resolved_predictions`)."""
    rng = np.random.default_rng(7)
    closes = 100 + rng.normal(0, 1, (60, 3)).cumsum(axis=0)
    closes[10:16, 1] = np.nan  # one symbol halted for six bars
    closes[30, 2] = np.nan
    probabilities = rng.random((60, 3))
    asked = {t: probabilities[t] for t in range(5, 60)}
    health = prediction_health(asked, closes, horizon=3, min_samples=2)
    index = np.arange(5, 60)
    shown = resolved_predictions(
        pd.DataFrame(probabilities[5:], index=index), pd.DataFrame(closes[5:], index=index), 3
    )
    assert health.samples == len(shown[0])
    assert health.auc == auc(shown[0], shown[1])
    assert (
        health.calibration_error
        == calibration_error(shown[0], shown[1].astype(np.float64), RELIABILITY_BINS)[0]
    )


def test_a_restart_reads_a_book_whose_symbol_had_no_bar(tmp_path: Path) -> None:
    """A NaN probability (a universe's symbol without a bar) is journaled as null and
    read back as NaN: the restart's read of the books does not fail on it."""
    journal = open_journal(tmp_path / "journal.sqlite", RunIdentity("s", "run", "paper"))
    row = ChallengerBar(
        bar=3,
        timestamp=pd.Timestamp("2024-01-01", tz="UTC"),
        correlation_id=3,
        challenger="logit",
        probabilities=[math.nan, 0.6],
        signals=0,
        positions=[0.0, 0.0],
        cash=1.0,
        equity=1.0,
        traded=0.0,
        champion_equity=1.0,
    )
    journal.append(row)
    journal.close()
    books = _journaled(tmp_path)[3]
    [(bar, probabilities)] = books["logit"].probabilities.items()
    assert bar == 3 and math.isnan(probabilities[0]) and probabilities[1] == 0.6
