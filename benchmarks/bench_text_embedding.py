"""tradeloom's embedding features against a plain wordllama + pandas script doing the same.

100,000 made-up headlines (seeded, each one different) over 50,000 hourly bars, visible
5 minutes after their time, about one market (``symbols == ()``: every bar sees them).
Both sides compute, per bar, the mean of the 256-dimension vectors of the headlines
visible at its close within 12 hours, and the count; then the projection on 4
principal components fitted on the first 60% of the bars (one walk-forward fold's
training rows) applied to every bar.

* ours: the ``text_embedding`` feature (`build_text_embedding`, the text feature base's
  scoring and aggregation kernel) over `Bars` carrying the documents, then
  `tradeloom.plugins.model.fold_transforms.Projection`;
* plain: ``WordLlama.load(...).embed`` on the texts, a pandas cumulative sum over the
  documents sorted by visibility read at each close with ``searchsorted``, then
  scikit-learn's ``PCA(svd_solver="covariance_eigh")`` (its default for as many rows).

Each side runs in a process of its own (its peak memory is its own ``ru_maxrss``); the
time is its work after imports and the model's load. The runs alternate; the figures
are the medians. The numbers are asserted equal (vectors to 1e-9: the plain side's
cumulative sums round otherwise than a window's own sum; components up to sign).

    python benchmarks/bench_text_embedding.py [--documents 100000] [--bars 50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

HOUR_NS = 3_600_000_000_000
DELAY_NS = 5 * 60 * 1_000_000_000
WINDOW_NS = 12 * HOUR_NS
COMPONENTS = 4
START = pd.Timestamp("2024-01-01", tz="UTC")

_SUBJECTS = [
    "Bitcoin",
    "Ether",
    "Solana",
    "Regulators",
    "Miners",
    "Funds",
    "Whales",
    "Exchanges",
    "Banks",
    "Traders",
]
_VERBS = [
    "rally",
    "slump",
    "surge",
    "stall",
    "rebound",
    "tumble",
    "climb",
    "slide",
    "recover",
    "sink",
]
_REASONS = [
    "after ETF inflows",
    "on hack fears",
    "as rates fall",
    "ahead of the halving",
    "on merger talk",
    "after a liquidation cascade",
    "as volumes thin",
    "on a court ruling",
    "after an outage",
    "as stablecoin supply grows",
]


def headlines(n: int, bars: int, seed: int = 7) -> tuple[np.ndarray, list[str]]:
    """Return ``n`` headlines' times (ns, sorted) and texts, each text different."""
    rng = np.random.default_rng(seed)
    span = bars * HOUR_NS
    stamps = np.sort(START.value + rng.integers(0, span, n, dtype=np.int64))
    s, v, r = (rng.integers(0, len(x), n) for x in (_SUBJECTS, _VERBS, _REASONS))
    pct = rng.integers(1, 30, n)
    texts = [
        f"{_SUBJECTS[a]} {_VERBS[b]} {p}% {_REASONS[c]} (story {i})"
        for i, (a, b, c, p) in enumerate(zip(s, v, r, pct, strict=True))
    ]
    return stamps, texts


def ours(stamps: np.ndarray, texts: list[str], bars: int) -> tuple[float, np.ndarray]:
    from tradeloom.domain import Bars
    from tradeloom.plugins.component import BuildContext
    from tradeloom.plugins.features.text_embedding import EmbeddingParams, build_text_embedding
    from tradeloom.plugins.model.fold_transforms import Projection
    from tradeloom.text.documents import Documents

    n = len(texts)
    documents = Documents(
        ids=tuple(f"d{i}" for i in range(n)),
        stamped_ns=stamps,
        visible_ns=stamps + DELAY_NS,
        texts=tuple(texts),
        titles=("",) * n,
        sources=("",) * n,
        symbols=((),) * n,
    )
    index = pd.date_range(START, periods=bars, freq="h", name="timestamp")
    frame = pd.DataFrame({c: np.ones(bars) for c in ("open", "high", "low", "close", "volume")})
    frame.index = index
    market = Bars(frame, "BTC/USDT", "1h", 3600, documents={"news": documents})
    params = EmbeddingParams(of="news", knowledge_cutoff="2024-07", window="12h")
    ctx = BuildContext(strategy_name="bench", strategy_dir=Path.cwd(), seed=0)
    feature = build_text_embedding(params, ctx)  # loads the model: not timed
    start = time.perf_counter()
    table = feature.compute(market, pd.DataFrame(index=index)).to_numpy()
    vectors = table[:, :-1]
    fitted = Projection(COMPONENTS).fit(vectors[: int(bars * 0.6)])
    projected = fitted.transform(vectors)
    took = time.perf_counter() - start
    return took, np.column_stack([table, projected])


def plain(stamps: np.ndarray, texts: list[str], bars: int) -> tuple[float, np.ndarray]:
    import wordllama
    from sklearn.decomposition import PCA
    from wordllama import WordLlama

    model = WordLlama.load(
        "l2_supercat", cache_dir=Path(wordllama.__file__).parent, disable_download=True
    )
    start = time.perf_counter()
    vectors = pd.DataFrame(model.embed(texts, batch_size=256).astype(np.float64))
    visible = stamps + DELAY_NS
    closes = pd.date_range(START, periods=bars, freq="h").as_unit("ns").asi8 + HOUR_NS
    sums = pd.concat([vectors.iloc[:0], vectors]).cumsum().to_numpy()
    sums = np.vstack([np.zeros((1, vectors.shape[1])), sums])
    hi = np.searchsorted(visible, closes, side="right")
    lo = np.searchsorted(visible, closes - WINDOW_NS, side="right")
    count = (hi - lo).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums[hi] - sums[lo]) / count[:, None]
    mean[count == 0] = 0.0
    pca = PCA(COMPONENTS, svd_solver="covariance_eigh").fit(mean[: int(bars * 0.6)])
    projected = pca.transform(mean)
    took = time.perf_counter() - start
    return took, np.column_stack([mean, count, projected])


def child(side: str, documents: int, bars: int, out: Path) -> None:
    stamps, texts = headlines(documents, bars)
    took, table = (ours if side == "ours" else plain)(stamps, texts, bars)
    np.save(out, table)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": took, "peak_mib": peak_kib / 1024}))


def run_side(side: str, documents: int, bars: int, out: Path) -> dict[str, float]:
    here = Path(__file__).resolve()
    done = subprocess.run(
        [sys.executable, str(here), "--child", side, "--documents", str(documents),
         "--bars", str(bars), "--out", str(out)],
        capture_output=True, text=True, check=True, cwd=here.parent,
    )  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def check_same(ours_table: np.ndarray, plain_table: np.ndarray) -> float:
    d = ours_table.shape[1] - COMPONENTS - 1
    np.testing.assert_array_equal(ours_table[:, d], plain_table[:, d])  # counts
    worst = float(np.abs(ours_table[:, :d] - plain_table[:, :d]).max())
    np.testing.assert_allclose(ours_table[:, :d], plain_table[:, :d], rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        np.abs(ours_table[:, d + 1 :]), np.abs(plain_table[:, d + 1 :]), rtol=0, atol=1e-8
    )
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=["ours", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    add_smoke(parser, documents=2_000, bars=1_000, runs=1)
    if "--child" in sys.argv:
        args = parser.parse_args()
        child(args.child, args.documents, args.bars, args.out)
        return
    args = parse_args(parser)
    print(describe("wordllama", "numpy", "pandas", "scikit-learn"))
    print(f"{args.documents:,} documents over {args.bars:,} hourly bars, 256 dimensions, "
          f"window 12h, {COMPONENTS} components fitted on 60% of the bars")  # fmt: skip
    times: dict[str, list[float]] = {"ours": [], "plain": []}
    peaks: dict[str, list[float]] = {"ours": [], "plain": []}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            for side in ("ours", "plain"):
                loads.append(os.getloadavg()[0])
                figures = run_side(side, args.documents, args.bars, Path(folder) / side)
                times[side].append(figures["seconds"])
                peaks[side].append(figures["peak_mib"])
        worst = check_same(np.load(Path(folder) / "ours.npy"), np.load(Path(folder) / "plain.npy"))
    print(f"same numbers: counts equal, vectors within {worst:.1e}, components equal up to sign")
    for side in ("ours", "plain"):
        t = statistics.median(times[side])
        print(
            f"{side:6s} median {t:7.2f} s ({args.documents / t:,.0f} documents/s; runs "
            f"{', '.join(f'{x:.2f}' for x in times[side])}), peak RSS "
            f"{statistics.median(peaks[side]):,.0f} MiB"
        )
    ratio = statistics.median(times["ours"]) / statistics.median(times["plain"])
    print(f"ratio ours / plain: {ratio:.2f} (below 1: faster)")
    print(f"load average (1 min) at each run's start: {', '.join(f'{x:.1f}' for x in loads)}")


if __name__ == "__main__":
    main()
