"""A paper or live run's ticks journal each unscored document once, as the whole
recomputation does, at a cost of what the features left unscored since the last tick.

The property: over any run of ticks (documents arriving, in order or not; reasons
added, one given again; a feature swapped by a hot reload; a feature's reasons replaced
by others or by fewer; a portfolio file's strategies), the rows `TextAnswers` journals at each
tick are those the whole recomputation (`unscored_rows` over every feature and every
document, less the rows journaled before) gives, in the same order.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeloom.live.lifecycle.text_stage import TextAnswers
from tradeloom.text import run_files
from tradeloom.text.documents import Documents
from tradeloom.text.run_files import unscored_rows

_MINUTE = 60 * 10**9


class _Feed:
    """A text source whose documents are a new object when one arrives (as a feed's)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int]] = []
        self.held = Documents.empty()
        self.asked = 0

    def add(self, document_id: str, visible: int) -> None:
        self.rows.append((document_id, visible))
        rows = sorted(self.rows, key=lambda row: row[1])  # (stable: ties in arrival order)
        n = len(rows)
        times = np.array([at for _, at in rows], dtype=np.int64)
        self.held = Documents(
            ids=tuple(document_id for document_id, _ in rows),
            stamped_ns=times,
            visible_ns=times.copy(),
            texts=("text",) * n,
            titles=("",) * n,
            sources=("",) * n,
            symbols=((),) * n,
        )

    def documents(self) -> Documents:
        self.asked += 1
        return self.held


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    def record(self, row: Any) -> None:
        self.rows.append(row)


def _feature(prefix: str, of: str = "news") -> SimpleNamespace:
    return SimpleNamespace(of=of, prefix=prefix, reasons={})


def _pipeline(name: str, features: list[Any], feeds: dict[str, _Feed]) -> SimpleNamespace:
    data = SimpleNamespace(live_documents=lambda: feeds)
    return SimpleNamespace(features=features, data=data, config=SimpleNamespace(name=name))


def _key(row: Any) -> tuple[Any, ...]:
    visible = row.visible
    return (
        row.strategy,
        row.feature,
        row.document_id,
        "NaT" if visible is None or visible != visible else visible.isoformat(),
        row.reason,
    )


def _stage(markets: Any, folder: Path) -> tuple[TextAnswers, _Recorder]:
    recorder = _Recorder()
    link = SimpleNamespace(recorder_or_fail=recorder)
    return TextAnswers(SimpleNamespace(run_dir=folder), link, markets), recorder  # type: ignore[arg-type]


class _Whole:
    """The whole recomputation: every feature's every reason at each tick, less the rows
    journaled before (what a tick did before it read only what was new)."""

    def __init__(self) -> None:
        self.told: set[tuple[str, str, str]] = set()

    def tick(self, pipelines: list[Any], alone: bool) -> list[tuple[Any, ...]]:
        rows = []
        for pipeline in pipelines:
            if not any(getattr(f, "reasons", None) for f in pipeline.features):
                continue
            strategy = "" if alone else pipeline.config.name
            feeds = pipeline.data.live_documents()
            documents = {name: feed.held for name, feed in feeds.items()}
            for row in unscored_rows(pipeline.features, documents, strategy):
                key = (strategy, row.feature, row.document_id)
                if key not in self.told:
                    self.told.add(key)
                    rows.append(_key(row))
        return rows


_ACTION = st.one_of(
    st.tuples(st.just("document"), st.integers(-3, 3)),  # visible: minutes from the last
    st.tuples(st.just("reason"), st.integers(0, 2), st.integers(0, 40), st.sampled_from("ab")),
    st.tuples(st.just("missing"), st.integers(0, 2)),  # a reason for no document of the feed
    st.tuples(st.just("swap"), st.integers(0, 2)),  # a hot reload: a new feature object
    st.tuples(st.just("replace"), st.integers(0, 2), st.integers(0, 5)),  # reasons cut short
    st.tuples(st.just("rekey"), st.integers(0, 2)),  # as many reasons, of other documents
    st.tuples(st.just("tick")),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(actions=st.lists(_ACTION, max_size=60), portfolio=st.booleans())
def test_each_tick_journals_what_the_whole_recomputation_journals(
    actions: list[tuple[Any, ...]], portfolio: bool, tmp_path: Path
) -> None:
    feeds = {"news": _Feed(), "other": _Feed()}
    # three features: two on the news (one in each strategy of a portfolio), one on
    # another source
    features = [_feature("tone"), _feature("mood", "other"), _feature("tone")]
    if portfolio:
        first = _pipeline("first", features[:2], feeds)
        second = _pipeline("second", features[2:], feeds)
        account = _pipeline("account", features[:2], feeds)
        pipelines = [first, second]
        markets = SimpleNamespace(p=account, portfolio=SimpleNamespace(pipelines=pipelines))
    else:
        pipelines = [_pipeline("", features, feeds)]
        markets = SimpleNamespace(p=pipelines[0], portfolio=None)
    stage, recorder = _stage(markets, tmp_path)
    whole = _Whole()
    last = 0
    counter = 0

    def place(k: int, feature: Any) -> None:
        for pipeline in [*pipelines, markets.p]:
            pipeline.features[:] = [feature if f is features[k] else f for f in pipeline.features]
        features[k] = feature

    for action in [*actions, ("tick",)]:
        kind = action[0]
        if kind == "document":
            counter += 1
            last = max(0, last + action[1] * _MINUTE)
            for feed in feeds.values():
                feed.add(f"d{counter}", last)
        elif kind == "reason":
            _, k, n, reason = action
            if counter:
                features[k].reasons[f"d{1 + n % counter}"] = reason
        elif kind == "missing":
            features[action[1]].reasons[f"gone{counter}"] = "c"
        elif kind == "swap":
            old = features[action[1]]
            place(
                action[1], SimpleNamespace(of=old.of, prefix=old.prefix, reasons=dict(old.reasons))
            )
        elif kind == "replace":
            _, k, keep = action
            features[k].reasons = dict(list(features[k].reasons.items())[:keep])
        elif kind == "rekey":
            counter += 1
            held = features[action[1]].reasons
            features[action[1]].reasons = {f"r{counter}-{j}": "d" for j in range(len(held))}
        else:
            before = len(recorder.rows)
            stage.after_tick(1)
            assert [_key(r) for r in recorder.rows[before:]] == whole.tick(pipelines, not portfolio)


def test_a_tick_with_nothing_new_asks_no_documents_and_makes_no_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = _Feed()
    feature = _feature("tone")
    for n in range(200):
        feed.add(f"d{n}", n * _MINUTE)
        if n % 4 == 0:
            feature.reasons[f"d{n}"] = "refused"
    pipeline = _pipeline("", [feature], {"news": feed})
    stage, recorder = _stage(SimpleNamespace(p=pipeline, portfolio=None), tmp_path)
    stage.after_tick(1)
    assert len(recorder.rows) == 50
    made: list[str] = []
    real = run_files.DocumentUnscored

    def counted(**fields: Any) -> Any:
        made.append(fields["document_id"])
        return real(**fields)

    monkeypatch.setattr(run_files, "DocumentUnscored", counted)
    asked = feed.asked
    for n in range(200, 210):  # documents arrive, all scored
        feed.add(f"d{n}", n * _MINUTE)
        stage.after_tick(1)
    assert feed.asked == asked and made == []
    feed.add("d210", 210 * _MINUTE)
    feature.reasons["d210"] = "refused"  # one unscored: one row made, its time found
    stage.after_tick(1)
    assert made == ["d210"]
    assert recorder.rows[-1].visible.value == 210 * _MINUTE
