"""Write the news file of examples/news_lexicon.yaml: made-up headlines over its synthetic market.

    python scripts/make_news.py [FILE]

The example's market is tradeloom's synthetic BTC/USDT (seed 42, hourly, from
2024-01-01). About six documents a day are written at seeded random minutes: most about
BTC/USDT, some about ETH/USDT (which the BTC strategy does not see: scope symbol), some
about the whole market (every symbol sees them). Each is published five minutes after
its time (the example's ``available_after: 5m``).

In this made-up world news leads the price a little: a BTC headline's tone agrees with
the sign of the next six hours' return 60% of the time (the rest is noise), so the
lexicon feature has something to find, as the order-book example's book leans ahead of
the next bar. That is a property of the data, not a look-ahead of the engine: a
document is used only from the first bar closing after it is published, and
``tradeloom check-lookahead examples/news_lexicon.yaml`` proves it. Some headlines are
negated (``not expected to recover``) to show the lexicon's negation.

The file is rewritten byte for byte by every run (tests/text/test_news_example.py
checks it); FILE is examples/data/news.csv by default.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tradeloom.plugins.data.synthetic import SyntheticParams, simulate

ROOT = Path(__file__).resolve().parents[1]
FILE = ROOT / "examples" / "data" / "news.csv"
SEED = 42
BARS = 4000
START = "2024-01-01T00:00:00Z"
PER_DAY = 6
LEAD_HOURS = 6
AGREES = 0.6

UP = (
    "{a} rallies as buyers return",
    "Analysts upgrade their {a} outlook after strong inflows",
    "{a} gains on record exchange inflows",
    "Funds add {a} exposure; traders see a breakout",
    "{a} surges as a large buyer is reported",
    "{a}: no sign of outflows, desks say",
)
DOWN = (
    "{a} slides as sellers take profits",
    "Analysts downgrade {a} after weak demand",
    "{a} falls on heavy exchange outflows",
    "Regulators probe a {a} lender; traders cut risk",
    "{a} drops as a large seller is reported",
    "{a} is not expected to recover soon, desks warn",
)
CALM = (
    "{a} trades sideways in a quiet session",
    "Volumes in {a} are flat ahead of the weekend",
    "{a} desk notes: a mixed session",
)
MARKET = (
    ("Central bank signals a rate cut; risk assets rally", 1),
    ("Central bank holds rates; markets calm", 0),
    ("Inflation surprises higher; risk assets slide", -1),
    ("Exchange outage halts withdrawals; traders cut risk", -1),
    ("Stablecoin inflows surge across exchanges", 1),
)
SOURCES = ("wire", "desk", "blog")


def make_news(seed: int = SEED, bars: int = BARS) -> pd.DataFrame:
    """Return the documents, one row each, sorted by time."""
    market = simulate(SyntheticParams(bars=bars, start=START), seed).frame
    close = market["close"].to_numpy()
    opens = market.index.as_unit("ns").asi8
    rng = np.random.default_rng(seed + 7)
    days = bars // 24
    n = days * PER_DAY
    first, last = int(opens[0]), int(opens[-1])
    times = np.sort(rng.integers(first, last, n))
    times -= times % 60_000_000_000  # whole minutes
    rows = []
    for k, t in enumerate(times):
        draw = rng.random()
        bar = int(np.searchsorted(opens, t, side="right")) - 1
        if draw < 0.15:
            title, tone = MARKET[rng.integers(len(MARKET))]
            symbols, text = "", title
        elif draw < 0.3:
            symbols = "ETH/USDT"
            tone = int(rng.integers(-1, 2))
            text = _headline(rng, tone, "ETH")
        else:
            symbols = "BTC/USDT"
            ahead = min(bar + 1 + LEAD_HOURS, len(close) - 1)
            lead = np.sign(close[ahead] - close[min(bar + 1, len(close) - 1)])
            tone = int(lead) if rng.random() < AGREES else int(rng.integers(-1, 2))
            text = _headline(rng, tone, "BTC")
        rows.append(
            {
                "id": f"n{k + 1:05d}",
                "time": pd.Timestamp(int(t), tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                "symbols": symbols,
                "source": SOURCES[int(rng.integers(len(SOURCES)))],
                "text": text,
            }
        )
    return pd.DataFrame(rows)


def _headline(rng: np.random.Generator, tone: int, asset: str) -> str:
    pool = UP if tone > 0 else DOWN if tone < 0 else CALM
    return pool[int(rng.integers(len(pool)))].format(a=asset)


def main(argv: list[str]) -> None:
    """Write the file (``argv[0]``, or examples/data/news.csv)."""
    path = Path(argv[0]) if argv else FILE
    make_news().to_csv(path, index=False, lineterminator="\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
