"""The text seam: documents from a source, per-bar aggregation, the text feature base."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.text.scorers import LengthScorer
from tradeloom.domain import Bar, Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data.auxiliary import AuxiliaryParams, rejoin_published_by
from tradeloom.plugins.data.synthetic import SyntheticParams, build_synthetic, simulate
from tradeloom.plugins.features.text import (
    TextFeature,
    TextFeatureParams,
    build_text_feature,
    parse_cutoff,
)
from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext
from tradeloom.text.aggregation import AggregateStep, Aggregation, aggregate
from tradeloom.text.documents import Documents

HOUR = 3_600_000_000_000
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def hourly_bars(n: int = 120, symbol: str = "BTC/USDT") -> Bars:
    frame = simulate(SyntheticParams(bars=max(n, 100)), 1).frame.iloc[:n]
    return Bars(frame, symbol, "1h", 3600)


def random_documents(bars: Bars, n: int, seed: int = 0) -> Documents:
    rng = np.random.default_rng(seed)
    first = int(bars.frame.index[0].value) - 12 * HOUR
    last = int(bars.frame.index[-1].value) + 12 * HOUR
    stamped = np.sort(rng.integers(first, last, n))
    delay = rng.integers(0, 3 * HOUR, n)
    visible = stamped + delay
    order = np.argsort(visible, kind="stable")
    words = ["up", "down", "flat", "err"]
    texts = [
        " ".join(rng.choice(words, rng.integers(1, 6), p=[0.4, 0.35, 0.2, 0.05])) for _ in range(n)
    ]
    choices: list[tuple[str, ...]] = [(), (SYMBOLS[0],), (SYMBOLS[1],), SYMBOLS]
    about = [choices[k] for k in rng.integers(0, 4, n)]
    return Documents(
        ids=tuple(f"d{i}" for i in order),
        stamped_ns=stamped[order],
        visible_ns=visible[order],
        texts=tuple(texts[i] for i in order),
        titles=("",) * n,
        sources=("wire",) * n,
        symbols=tuple(about[i] for i in order),
    )


def reference(
    visible: np.ndarray, values: np.ndarray, decisions: np.ndarray, how: Aggregation
) -> np.ndarray:
    """The aggregation written plainly, one decision time at a time."""
    out = np.empty((len(decisions), values.shape[1] + 1))
    for d, t in enumerate(decisions):
        seen = (visible <= t) & (visible > t - how.window_ns)
        out[d, -1] = seen.sum()
        for f in range(values.shape[1]):
            v = values[seen, f]
            ok = ~np.isnan(v)
            w = np.ones(ok.sum())
            if how.half_life_ns:
                w = 0.5 ** ((t - visible[seen][ok]) / how.half_life_ns)
            if not ok.any():
                out[d, f] = how.empty
            elif how.how == "sum":
                out[d, f] = (w * v[ok]).sum()
            else:
                out[d, f] = (w * v[ok]).sum() / w.sum()
    return out


@pytest.mark.parametrize(
    "how",
    [
        Aggregation(6 * HOUR),
        Aggregation(24 * HOUR, 4 * HOUR, "sum"),
        Aggregation(2 * HOUR, 0, "mean", float("nan")),
    ],
)
def test_aggregate_agrees_with_the_plain_computation(how: Aggregation) -> None:
    rng = np.random.default_rng(4)
    visible = np.sort(rng.integers(0, 500 * HOUR, 2_000))
    values = rng.normal(size=(2_000, 3))
    values[rng.random(2_000) < 0.1] = np.nan
    decisions = np.arange(0, 510 * HOUR, HOUR)
    got = aggregate(visible, values, decisions, how)
    np.testing.assert_allclose(got, reference(visible, values, decisions, how), rtol=1e-12)
    step = AggregateStep(how, 3)
    step.replace(visible, values)
    stepped = np.array([step.row(int(t)) for t in decisions])
    assert np.array_equal(stepped, got, equal_nan=True)


def test_aggregate_refuses_unsorted_times() -> None:
    with pytest.raises(ValueError, match=r"^aggregate: visibility times must be sorted$"):
        aggregate(np.array([2, 1]), np.zeros((2, 1)), np.array([3]), Aggregation(5))


def feature(scorer: LengthScorer | None = None, **keys: object) -> TextFeature:
    params = TextFeatureParams.model_validate({"of": "news", "window": "6h", **keys})
    return build_text_feature(
        params, scorer or LengthScorer(), BuildContext("s", Path("."), 0), default_name="len"
    )


def stepped(text: TextFeature, bars: Bars) -> np.ndarray:
    stepper = FeatureStepper([text], StepContext.of(bars))
    rows = []
    for i, (t, row) in enumerate(
        zip(bars.frame.index, bars.frame.itertuples(index=False), strict=True)
    ):
        rows.append(stepper.step(Bar(i, t, row.open, row.high, row.low, row.close, row.volume)))
    return np.array(rows)


@pytest.mark.parametrize(
    "keys",
    [{}, {"half_life": "2h", "aggregate": "sum"}, {"scope": "global", "empty": "nan"}],
)
def test_the_stepped_form_gives_the_batch_numbers_bit_for_bit(keys: dict[str, str]) -> None:
    bars = hourly_bars()
    bars = Bars(bars.frame, "ETH/USDT", "1h", 3600, documents={"news": random_documents(bars, 400)})
    batch = feature(**keys).compute(bars, pd.DataFrame(index=bars.frame.index))
    assert list(batch.columns) == ["len_length", "len_tone", "len_count"]
    assert np.array_equal(stepped(feature(**keys), bars), batch.to_numpy(), equal_nan=True)
    assert batch["len_count"].sum() > 0


def test_a_bar_sees_the_documents_visible_at_its_close_about_its_symbol() -> None:
    bars = hourly_bars(4)
    t0 = int(bars.frame.index[0].value)
    documents = Documents(
        ids=("a", "b", "c", "d"),
        stamped_ns=np.array([t0, t0, t0, t0 + HOUR]),
        visible_ns=np.array([t0 + HOUR, t0 + HOUR + 1, t0 + HOUR, t0 + 2 * HOUR]),
        texts=("up up", "down", "up", "err"),
        titles=("",) * 4,
        sources=("",) * 4,
        symbols=((), ("BTC/USDT",), ("ETH/USDT",), ()),
    )
    sorted_docs = documents.take(np.argsort(documents.visible_ns, kind="stable"))
    bars = Bars(bars.frame, "BTC/USDT", "1h", 3600, documents={"news": sorted_docs})
    out = feature().compute(bars, pd.DataFrame(index=bars.frame.index))
    # bar 0 closes at t0 + 1h: 'a' (whole market) is visible, 'b' one ns later, 'c' is ETH's
    assert out.iloc[0].tolist() == [5.0, 2.0, 1.0]
    # bar 1: 'a', 'b'; 'd' is visible at its close but has no score (counted, not averaged)
    assert out.iloc[1].tolist() == [4.5, 0.5, 3.0]


def test_each_document_is_scored_once_and_only_those_some_bar_sees() -> None:
    bars = hourly_bars(48)
    documents = random_documents(bars, 300)
    bars = Bars(bars.frame, "BTC/USDT", "1h", 3600, documents={"news": documents})
    scorer = LengthScorer()
    text = feature(scorer, scope="global")
    text.compute(bars, pd.DataFrame(index=bars.frame.index))
    last_close = int(bars.frame.index[-1].value) + HOUR
    assert sum(scorer.calls) == int((documents.visible_ns <= last_close).sum()) - int(
        (documents.visible_ns <= int(bars.frame.index[0].value) + HOUR - 6 * HOUR).sum()
    )
    text.compute(bars, pd.DataFrame(index=bars.frame.index))
    assert len(scorer.calls) == 1
    assert set(text.reasons.values()) == {"no answer"}


def test_a_cut_keeps_only_the_documents_visible_by_its_close() -> None:
    bars = hourly_bars(100)
    documents = random_documents(bars, 300)
    bars = Bars(bars.frame, "BTC/USDT", "1h", 3600, documents={"news": documents})
    cut = 60
    known = rejoin_published_by(bars, (), cut)
    close = int(bars.frame.index[cut].value) + HOUR
    assert len(known.documents["news"]) == int((documents.visible_ns <= close).sum())
    before = feature().compute(bars, pd.DataFrame(index=bars.frame.index))
    after = feature().compute(known, pd.DataFrame(index=bars.frame.index))
    assert np.array_equal(before.to_numpy()[: cut + 1], after.to_numpy()[: cut + 1])
    assert not np.array_equal(before.to_numpy()[cut + 1 :], after.to_numpy()[cut + 1 :])


def test_a_missing_text_source_is_one_line() -> None:
    bars = hourly_bars(10)
    with pytest.raises(DataError, match=r"^features: text source 'news' is not among the data's"):
        feature().compute(bars, pd.DataFrame(index=bars.frame.index))


def test_knowledge_cutoffs_are_months_or_days() -> None:
    assert parse_cutoff("2025-06") == pd.Timestamp("2025-07-01", tz="UTC")
    assert parse_cutoff("2025-06-15") == pd.Timestamp("2025-06-16", tz="UTC")
    with pytest.raises(ValueError, match=r"^must be a month \(YYYY-MM"):
        parse_cutoff("June 2025")
    text = feature(LengthScorer(pd.Timestamp("2024-01-01", tz="UTC")), cutoff_margin="30d")
    assert text.cutoff == pd.Timestamp("2024-01-31", tz="UTC")


# --- documents from a source ------------------------------------------------------------


ROWS = [
    {"time": "2024-01-01T00:10:00Z", "body": "BTC  up\n", "sym": "BTC/USDT", "id": "n1"},
    {"time": "2024-01-01T01:30:00Z", "body": "Cafe\u0301 down", "sym": "", "id": "n2"},
    {"time": "2024-01-01T02:00:00Z", "body": "both up", "sym": "BTC/USDT|ETH/USDT", "id": "n3"},
]


def write(folder: Path, kind: str) -> Path:
    frame = pd.DataFrame(ROWS)
    path = folder / f"news.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    else:
        frame.to_parquet(path)
    return path


def source(folder: Path, path: Path, **keys: object) -> object:
    item = {
        "name": "news",
        "kind": "text",
        "path": path.name,
        "available_after": "15m",
        "timestamp_column": "time",
        "text_column": "body",
        "symbol_column": "sym",
        "id_column": "id",
        **keys,
    }
    params = SyntheticParams.model_validate(
        {"bars": 100, "start": "2024-01-01", "auxiliary": [item]}
    )
    return build_synthetic(params, BuildContext("s", folder, seed=1))


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_a_text_source_rides_beside_the_bars(tmp_path: Path, kind: str) -> None:
    data = source(tmp_path, write(tmp_path, kind))
    bars = data.load()  # type: ignore[attr-defined]
    assert "news" not in bars.frame.columns
    documents = bars.documents["news"]
    assert documents.ids == ("n1", "n2", "n3")
    assert documents.texts == ("BTC up", "Caf\u00e9 down", "both up")
    assert documents.symbols == (("BTC/USDT",), (), ("BTC/USDT", "ETH/USDT"))
    quarter = 15 * 60 * 1_000_000_000
    assert (documents.visible_ns - documents.stamped_ns == quarter).all()


def test_text_keys_belong_to_kind_text() -> None:
    with pytest.raises(ValueError, match=r"text_column: for kind text only; remove them"):
        AuxiliaryParams.model_validate(
            {
                "name": "m",
                "kind": "file",
                "path": "m.csv",
                "available_after": "0s",
                "text_column": "body",
            }
        )
