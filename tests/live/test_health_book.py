"""`HealthBook`: the figures a gate's health and a stage's rollback rules read at every
bar's close, kept up to date bar by bar, equal to the bit to `prediction_health` over the
whole book after every bar, and after a restart that reads the book from the journal."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.live.lifecycle.prediction_health import (
    HealthBook,
    PredictionHealth,
    ece_rounding,
    prediction_health,
)

_TIED = np.array([0.0, -0.0, 0.1, 0.25, 0.5, 0.5000000000000001, 0.95, 1.0])
"""Scores a model's probabilities tie on (a threshold's, a clipped one's), the bins' edges."""


def _same(incremental: PredictionHealth, batch: PredictionHealth) -> None:
    assert incremental.samples == batch.samples
    for got, want in (
        (incremental.auc, batch.auc),
        (incremental.calibration_error, batch.calibration_error),
    ):
        assert (math.isnan(got) and math.isnan(want)) or got.hex() == want.hex()


def _book(
    seed: int, bars: int, symbols: int, tied: bool, gaps: float
) -> tuple[np.ndarray, dict[int, np.ndarray], list[int]]:
    rng = np.random.default_rng(seed)
    closes = 100 + rng.normal(0, 1, (bars, symbols)).round(1).cumsum(axis=0)  # level closes
    closes[rng.random(closes.shape) < gaps] = np.nan  # symbols without a bar
    rows = {}
    for t in range(bars):
        if rng.random() < 0.15:
            continue  # a bar the book has no row for
        row = rng.choice(_TIED, symbols) if tied else rng.random(symbols)
        row[rng.random(symbols) < 0.1] = np.nan
        rows[t] = row
    order = sorted(rows)
    return closes, rows, order


@settings(max_examples=examples(150), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    bars=st.integers(0, 60),
    symbols=st.integers(1, 3),
    horizon=st.integers(1, 4),
    min_samples=st.integers(1, 12),
    tied=st.booleans(),
    gaps=st.sampled_from([0.0, 0.15]),
    restart=st.integers(0, 60),
)
def test_a_gates_book_read_bar_by_bar_equals_the_whole_books_figures(
    seed: int,
    bars: int,
    symbols: int,
    horizon: int,
    min_samples: int,
    tied: bool,
    gaps: float,
    restart: int,
) -> None:
    """A challenger's gate: rows from the book's first one, a row added at each bar
    before the reading; a restart at bar ``restart`` reads the book the journal holds."""
    closes, rows, _ = _book(seed, bars, symbols, tied, gaps)
    book, asked = HealthBook(horizon), {}
    for t in range(bars):
        if t == restart:
            book = HealthBook(horizon)  # rebuilt: the journal's rows so far, read at once
        if t in rows:
            asked[t] = rows[t]
        got = book.health(asked, closes[: t + 1], min_samples)
        _same(got, prediction_health(asked, closes[: t + 1], horizon, min_samples))


@settings(max_examples=examples(150), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    bars=st.integers(0, 50),
    symbols=st.integers(1, 3),
    horizon=st.integers(1, 4),
    start=st.integers(0, 10),
    tied=st.booleans(),
    restart=st.integers(0, 50),
)
def test_a_stages_book_read_bar_by_bar_equals_canary_figures(
    seed: int, bars: int, symbols: int, horizon: int, start: int, tied: bool, restart: int
) -> None:
    """A canary's or a watch's book: every bar after the start bar, a bar without a row
    read as a row of NaN (`canary_figures`)."""
    closes, rows, _ = _book(seed, bars + start + 1, symbols, tied, 0.1)
    book, asked = HealthBook(horizon, start + 1), {}
    for t in range(start + 1, len(closes)):
        if t == restart:
            book = HealthBook(horizon, start + 1)
        if t in rows:
            asked[t] = rows[t]
        dense = {k - start: asked.get(k, np.full(symbols, np.nan)) for k in range(start + 1, t + 1)}
        want = prediction_health(dense, closes[start : t + 1], horizon, 3)
        _same(book.health(asked, closes[: t + 1], 3), want)


def test_a_row_for_a_bar_already_read_reads_the_book_again() -> None:
    closes, rows, order = _book(11, 40, 2, False, 0.1)
    book = HealthBook(2)
    late = {t: rows[t] for t in order[1:]}
    book.health(late, closes, 1)
    late[order[0]] = rows[order[0]]  # the first row, after the book was read
    _same(book.health(late, closes, 1), prediction_health(late, closes, 2, 1))


def test_many_tied_scores_count_as_the_batch_counts_them_level_by_level() -> None:
    """Past 4096 pairs of a few levels `tradeloom.stats.auc` counts level by level: the
    same twice-U the book keeps."""
    closes, rows, _ = _book(5, 3000, 2, True, 0.0)
    book, asked = HealthBook(3), {}
    for t in range(len(closes)):
        if t in rows:
            asked[t] = rows[t]
        got = book.health(asked, closes[: t + 1], 10)
        if t % 500 == 0 or t == len(closes) - 1:
            _same(got, prediction_health(asked, closes[: t + 1], 3, 10))
    assert book.samples > 4096


def _sides(figure: float, limit: float) -> tuple[bool, bool]:
    return figure > limit, figure <= limit  # a stage's rule fires on >, a gate passes on <=


@settings(max_examples=examples(150), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    bars=st.integers(1, 60),
    symbols=st.integers(2, 4),
    horizon=st.integers(1, 3),
    tied=st.booleans(),
    gaps=st.sampled_from([0.0, 0.15]),
    near=st.lists(st.integers(-3, 3), min_size=1, max_size=4),
    data=st.data(),
)
def test_a_universes_ece_judged_against_its_limit_reads_as_the_pooled_figure(
    seed: int,
    bars: int,
    symbols: int,
    horizon: int,
    tied: bool,
    gaps: float,
    near: list[int],
    data: st.DataObject,
) -> None:
    """Several symbols: the running bins' ECE (summed in the order the pairs resolved)
    lands on the same side of any limit as the pooled figure (summed symbol by symbol),
    limits at the pooled figure, a few ulps and a few roundings from it included."""
    closes, rows, _ = _book(seed, bars, symbols, tied, gaps)
    book, whole, asked = HealthBook(horizon), HealthBook(horizon), {}
    for t in range(bars):
        if t in rows:
            asked[t] = rows[t]
        want = whole.health(asked, closes[: t + 1], 1)
        _same(want, prediction_health(asked, closes[: t + 1], horizon, 1))
        ece = want.calibration_error
        limits = [data.draw(st.floats(0.0, 1.0)), None]
        if ece == ece:
            rounding = ece_rounding(want.samples)
            for k in near:
                limits += [ece + k * abs(ece) * 2.0**-52, ece + k * rounding / 2]
        for limit in limits:
            got = book.judged(asked, closes[: t + 1], 1, limit)
            assert (got.auc.hex(), got.samples) == (want.auc.hex(), want.samples)
            if limit is None:
                assert math.isnan(got.calibration_error) == math.isnan(ece)
            else:
                assert _sides(got.calibration_error, limit) == _sides(ece, limit)


def test_a_long_universe_book_pools_its_pairs_only_near_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three symbols, 3,000 bars read against a limit the ECE crosses: the pairs are
    pooled again (`calibration_error` over the whole book) only within the rounding."""
    from tradeloom.live.lifecycle import prediction_health as module

    closes, rows, _ = _book(8, 3000, 3, False, 0.05)
    whole, asked = HealthBook(2), {}
    figures = []
    for t in range(len(closes)):
        if t in rows:
            asked[t] = rows[t]
        figures.append(whole.health(asked, closes[: t + 1], 30).calibration_error)
    limit = float(np.nanmedian(figures))  # crossed many times
    pooled = 0
    real = module.calibration_error

    def counted(*args: object) -> object:
        nonlocal pooled
        pooled += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "calibration_error", counted)
    book, asked = HealthBook(2), {}
    for t in range(len(closes)):
        if t in rows:
            asked[t] = rows[t]
        got = book.judged(asked, closes[: t + 1], 30, limit).calibration_error
        assert _sides(got, limit) == _sides(figures[t], limit)
    assert pooled <= 3  # the figure at the limit itself: the one reading that pools
