"""How fast the lexicon text features are, against a plain pandas script computing the same numbers.

A seeded set of documents (100,000 by default: 8 to 24 words each from a vocabulary of
lexicon terms, negators and other words; a third about the traded symbol, a third
about another, a third about the whole market; published 0 to 30 minutes after their
time) over hourly bars (50,000 by default) is written to a CSV file once. Then, timed
in turns so both see the same machine:

* tradeloom: the text source read and checked (`read_documents`: parse, normalise,
  validate), the ``lexicon`` feature's scores and its per-bar aggregation (12-hour
  window, mean of the scores, the hits, the count) through its ``compute``;
* pandas: ``read_csv`` of the lexicon and the documents, the same normalisation, the
  same scoring rule written as a plain Python function mapped over the texts, the
  documents a symbol sees picked with ``str.contains``, and each bar's window from
  cumulative sums looked up with ``searchsorted`` (the vectorised way a pandas user
  writes a time-window mean).

The two must agree (the counts exactly, the means to 1e-9: the pandas script's window
sums are differences of running sums, ours are summed afresh per window). Printed: the
machine, the load average before the runs, the median seconds of each and the ratio
tradeloom / pandas (below 1: faster), the documents per second, and the peak memory
(tracemalloc) of one run of each.

    python benchmarks/bench_text.py [--documents 100000] [--bars 50000] [--runs 5] [--smoke]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data.text_source import TextColumns, read_documents
from tradeloom.plugins.features.lexicon import LexiconParams, build_lexicon
from tradeloom.text.normalise import normalise_text

HOUR = 3_600_000_000_000
SYMBOL = "BTC/USDT"
WINDOW = "12h"
TERMS = {
    "rally": 1.0, "gains": 1.0, "surge": 1.0, "upgrade": 1.0, "breakout": 1.0,
    "inflows": 0.5, "buyers": 0.5, "recover": 1.0, "slides": -1.0, "falls": -1.0,
    "drops": -1.0, "downgrade": -1.0, "probe": -1.0, "outage": -1.0, "outflows": -0.5,
    "sellers": -0.5, "weak": -0.5, "halts": -1.0,
}  # fmt: skip
NEGATORS = ("not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without")
FILLER = [f"word{i}" for i in range(150)] + ["BTC", "ETH", "the", "a", "on", "after", "as"]


def make_files(folder: Path, documents: int, bars: int) -> tuple[Path, Path, Bars]:
    rng = np.random.default_rng(83)
    vocabulary = np.array([*TERMS, *NEGATORS[:3], *FILLER])
    p = np.r_[np.full(len(TERMS), 2.0), np.full(3, 1.5), np.ones(len(FILLER))]
    lengths = rng.integers(8, 25, documents)
    words = rng.choice(vocabulary, lengths.sum(), p=p / p.sum())
    cuts = np.cumsum(lengths)[:-1]
    texts = [" ".join(w) for w in np.split(words, cuts)]
    start = pd.Timestamp("2020-01-01", tz="UTC").value
    stamped = np.sort(rng.integers(start - 24 * HOUR, start + bars * HOUR, documents))
    published = stamped + rng.integers(0, 30, documents) * 60_000_000_000
    about = np.array([SYMBOL, "ETH/USDT", ""])[rng.integers(0, 3, documents)]
    frame = pd.DataFrame(
        {
            "id": [f"d{i}" for i in range(documents)],
            "time": pd.to_datetime(stamped, utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "published": pd.to_datetime(published, utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "symbols": about,
            "text": texts,
        }
    )
    news = folder / "news.csv"
    frame.to_csv(news, index=False)
    lexicon = folder / "lexicon.csv"
    lexicon.write_text(
        "term,weight\n" + "".join(f"{t},{w}\n" for t, w in TERMS.items()), encoding="utf-8"
    )
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=bars, freq="h", name="timestamp")
    ohlcv = pd.DataFrame(
        {c: np.ones(bars) for c in ("open", "high", "low", "close", "volume")}, index=index
    )
    return news, lexicon, Bars(ohlcv, SYMBOL, "1h", 3600)


def ours(folder: Path, news: Path, bars: Bars) -> pd.DataFrame:
    documents = read_documents(
        news,
        label="news",
        delay_ns=0,
        columns=TextColumns(timestamp="time", symbols="symbols", id="id", published="published"),
        max_chars=20_000,
        policy="reject",
    )
    params = LexiconParams.model_validate(
        {"of": "news", "lexicon": "lexicon.csv", "window": WINDOW, "title": False}
    )
    feature = build_lexicon(params, BuildContext("bench", folder, 0))
    with_docs = Bars(bars.frame, bars.symbol, "1h", 3600, documents={"news": documents})
    return feature.compute(with_docs, pd.DataFrame(index=bars.frame.index))


_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


def plain_score(text: str, terms: dict[str, float]) -> tuple[float, int]:
    """The lexicon rule ``sum`` as a user writes it: one word terms, a negator flips the
    next three words, any word ending in n't negates."""
    total, hits, flipped_until = 0.0, 0, -1
    for i, token in enumerate(_WORD.findall(text.casefold())):
        if token in NEGATORS or token.endswith("n't"):
            flipped_until = i + 3
            continue
        weight = terms.get(token)
        if weight is not None:
            total += -weight if i <= flipped_until else weight
            hits += 1
    return total, hits


def theirs(folder: Path, news: Path, bars: Bars) -> pd.DataFrame:
    lexicon = pd.read_csv(folder / "lexicon.csv")
    # Python floats: a numpy scalar's arithmetic in the loop would slow the script down
    terms = dict(
        zip(lexicon["term"].tolist(), lexicon["weight"].astype(float).tolist(), strict=True)
    )
    raw = pd.read_csv(news, keep_default_na=False)
    raw["text"] = raw["text"].map(normalise_text)
    visible = pd.to_datetime(raw["published"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
    mine = (raw["symbols"] == "") | raw["symbols"].str.contains(SYMBOL, regex=False)
    raw, visible = raw[mine.to_numpy()], visible[mine.to_numpy()]
    order = np.argsort(visible, kind="stable")
    raw, visible = raw.iloc[order], visible[order]
    scored = raw["text"].map(lambda text: plain_score(text, terms))
    score = np.array([s for s, _ in scored])
    hits = np.array([h for _, h in scored], dtype=np.float64)
    closes = bars.frame.index.as_unit("ns").asi8 + HOUR
    hi = np.searchsorted(visible, closes, side="right")
    lo = np.searchsorted(visible, closes - 12 * HOUR, side="right")
    count = (hi - lo).astype(np.float64)
    sums = [np.r_[0.0, np.cumsum(x)] for x in (score, hits)]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = [np.where(count > 0, (c[hi] - c[lo]) / count, 0.0) for c in sums]
    return pd.DataFrame(
        {"lexicon_score": means[0], "lexicon_hits": means[1], "lexicon_count": count},
        index=bars.frame.index,
    )


def timed(fn: Callable[[], object], sink: list[float]) -> None:
    start = time.perf_counter()
    fn()
    sink.append(time.perf_counter() - start)


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    add_smoke(parser, documents=2_000, bars=1_000, runs=1)
    args = parse_args(parser)
    print(describe("numpy", "pandas", "numba"))
    with tempfile.TemporaryDirectory(prefix="bench-text-") as name:
        folder = Path(name)
        news, _, bars = make_files(folder, args.documents, args.bars)
        a, b = ours(folder, news, bars), theirs(folder, news, bars)  # warm-up (compile, page in)
        assert np.array_equal(a["lexicon_count"], b["lexicon_count"])
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-9)
        load = os.getloadavg()
        print(f"load average before the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(args.runs):
            timed(lambda: ours(folder, news, bars), times[0])
            timed(lambda: theirs(folder, news, bars), times[1])
        mine, plain = statistics.median(times[0]), statistics.median(times[1])
        size = f"{args.documents:,} documents over {args.bars:,} bars"
        print(f"{size}, {args.runs} runs each, medians:")
        print(f"  tradeloom lexicon feature  {mine:8.3f} s  {args.documents / mine:>10,.0f} docs/s")
        print(
            f"  plain pandas script        {plain:8.3f} s  {args.documents / plain:>10,.0f} docs/s"
        )
        print(f"  ratio tradeloom / pandas   {mine / plain:8.2f}")
        peak = (
            peak_mib(lambda: ours(folder, news, bars)),
            peak_mib(lambda: theirs(folder, news, bars)),
        )
        print(f"  peak memory (tracemalloc)  tradeloom {peak[0]:.0f} MiB, pandas {peak[1]:.0f} MiB")
        rows = len(a)
        assert rows == args.bars and not math.isnan(float(a["lexicon_score"].sum()))


if __name__ == "__main__":
    main()
