"""A text feature written with ``compute`` only (a plugin's) is stepped in paper and live
with the documents the run knows, and steps the numbers its batch form gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeloom.domain import Bar, Bars
from tradeloom.plugins.protocols_steps import ComputeStep, StepContext
from tradeloom.text.documents import Documents

HOUR = 3_600_000_000_000


class _CountVisible:
    """Counts the documents visible at each bar's close (compute only: no stepper)."""

    def columns(self) -> list[str]:
        return ["news_seen"]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        docs = bars.documents["news"]
        closes = bars.frame.index.as_unit("ns").asi8 + bars.timeframe_seconds * 1_000_000_000
        seen = np.searchsorted(docs.visible_ns, closes, side="right").astype(np.float64)
        return pd.DataFrame({"news_seen": seen}, index=bars.frame.index)


class _Growing:
    """A feed that knows the documents that arrived by the time it is asked."""

    def __init__(self, docs: Documents) -> None:
        self.docs = docs
        self.known = 0

    def documents(self) -> Documents:
        return self.docs.take(np.arange(self.known))


def test_a_compute_only_text_feature_steps_over_the_documents_known_then() -> None:
    start = pd.Timestamp("2024-01-01", tz="UTC")
    index = pd.date_range(start, periods=6, freq="1h", name="timestamp")
    visible = start.value + np.array([30, 90, 150, 170, 290], dtype=np.int64) * 60_000_000_000
    n = len(visible)
    docs = Documents(
        ids=tuple(f"d{i}" for i in range(n)),
        stamped_ns=visible,
        visible_ns=visible,
        texts=("t",) * n,
        titles=("",) * n,
        sources=("",) * n,
        symbols=((),) * n,
    )
    frame = pd.DataFrame(1.0, index=index, columns=["open", "high", "low", "close", "volume"])
    batch = _CountVisible().compute(Bars(frame, "X", "1h", 3600, documents={"news": docs}), frame)
    feed = _Growing(docs)
    step = ComputeStep(_CountVisible(), StepContext("X", "1h", 3600, documents={"news": feed}))
    stepped = []
    for t, time in enumerate(index):
        close = time.value + HOUR
        feed.known = int(np.searchsorted(visible, close, side="right"))  # arrived by then
        bar = Bar(t, time, *frame.iloc[t].tolist())
        stepped.append(step.step(bar, {})[0])
    assert stepped == batch["news_seen"].tolist() == [1.0, 2.0, 4.0, 4.0, 5.0, 5.0]
