"""The ``text_embedding`` feature: its keys, its numbers (the mean of the visible documents'
vectors, as the library and pandas compute it), the projection declared for the folds, and
paper on the simulated clock stepping the backtest's vectors and probabilities bit for bit
(examples/news_embedding.yaml through the real CLI)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
import yaml

from tradeloom.backtest.run import run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError
from tradeloom.journal import read_rows
from tradeloom.plugins.features.text_embedding import ProjectedTextFeature
from tradeloom.plugins.model.fold_transforms import Projection
from tradeloom.plugins.protocols import FoldFittedFeature
from tradeloom.schemas import load_strategy
from tradeloom.text.embedding import EmbeddingScorer

pytest.importorskip("wordllama")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "news_embedding.yaml"
NEWS = ROOT / "examples" / "data" / "news.csv"
SETTINGS = (
    "data.bars=600",
    "model.walk_forward.train_window=200",
    "model.walk_forward.retrain_every=200",
    "model.params.n_estimators=10",
)


OMIT = object()
"""A key's value that removes it from the feature's entry."""


def example(tmp_path: Path, **feature: Any) -> Path:
    """The example with 300 bars, its news file beside it, its embedding feature changed."""
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    doc["data"]["bars"] = 300
    doc["model"]["walk_forward"] = {"train_window": 100, "retrain_every": 100}
    doc["model"]["params"]["n_estimators"] = 10
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "news.csv").write_bytes(NEWS.read_bytes())
    entry = next(f for f in doc["features"] if f["kind"] == "text_embedding")
    entry.update(feature)
    for key in [k for k, v in feature.items() if v is OMIT]:
        del entry[key]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def problems(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        config, _ = load_strategy(path)
        build_pipeline(config)
    return str(caught.value)


def test_it_declares_its_vector_columns_for_a_projection_per_fold(tmp_path: Path) -> None:
    config, _ = load_strategy(example(tmp_path, name="news", dimensions=64, components=3))
    pipeline = build_pipeline(config)
    (feature,) = [f for f in pipeline.features if isinstance(f, ProjectedTextFeature)]
    assert isinstance(feature, FoldFittedFeature)
    columns = feature.columns()
    assert columns[:2] == ["news_dim000", "news_dim001"] and columns[-1] == "news_count"
    assert len(columns) == 65
    transform = feature.fold_transform()
    assert transform.columns == tuple(columns[:-1])
    assert isinstance(transform.transformer, Projection)
    assert transform.transformer.components == 3
    assert feature.scorer.identity.startswith("wordllama:l2_supercat:dimensions=64:title:")


def test_without_components_every_dimension_reaches_the_model(tmp_path: Path) -> None:
    config, _ = load_strategy(example(tmp_path, components=None))
    pipeline = build_pipeline(config)
    text = [f for f in pipeline.features if "embedding_count" in f.columns()]
    assert len(text) == 1 and not isinstance(text[0], FoldFittedFeature)


def test_its_keys_are_checked(tmp_path: Path) -> None:
    assert "features.4.knowledge_cutoff: required key is missing" in problems(
        example(tmp_path, knowledge_cutoff=OMIT)
    )
    assert "features.4.components: must be <= 64, was 65" in problems(
        example(tmp_path, dimensions=64, components=65)
    )
    said = problems(example(tmp_path, model="l3_supercat", model_dir="models"))
    assert "features.4.model_dir: text_embedding: model 'l3_supercat' not found in " in said


def test_a_bar_is_the_mean_of_the_vectors_visible_at_its_close(tmp_path: Path) -> None:
    config, plugins = load_strategy(
        example(tmp_path, name="news", half_life=None, window="12h", mask=OMIT, leakage="accepted")
    )
    outcome = run_strategy(build_pipeline(config), plugins, out=tmp_path / "run")
    features = outcome.result.features
    columns = [f"news_dim{i:03d}" for i in range(256)]
    # the plain way: pandas and the library
    news = pd.read_csv(NEWS)
    news["visible"] = pd.to_datetime(news["time"], utc=True) + pd.Timedelta(minutes=5)
    seen = news[news["symbols"].fillna("").isin(["", "BTC/USDT"])]
    scorer = EmbeddingScorer(knowledge_cutoff=pd.Timestamp("2024-07-01", tz="UTC"))
    vectors = scorer.embed(list(seen["text"]))
    closes = features.index + pd.Timedelta(hours=1)
    checked = 0
    for t, close in zip(features.index, closes, strict=True):
        inside = (seen["visible"] <= close) & (seen["visible"] > close - pd.Timedelta(hours=12))
        rows = np.flatnonzero(inside.to_numpy())
        assert features.at[t, "news_count"] == len(rows)
        expected = vectors[rows].mean(axis=0) if len(rows) else np.zeros(256)
        np.testing.assert_allclose(features.loc[t, columns].to_numpy(float), expected, atol=1e-12)
        checked += len(rows) > 1
    assert checked > 50


def tradeloom(*args: str) -> None:
    from tradeloom.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--quiet", *args])
    structlog.reset_defaults()
    assert code == 0, err.getvalue()


@pytest.mark.slow
def test_paper_on_the_simulated_clock_steps_the_backtests_vectors_and_probabilities(
    tmp_path: Path,
) -> None:
    sets = [a for s in SETTINGS for a in ("--set", s)]
    tradeloom("run", str(EXAMPLE), "--out", str(tmp_path / "backtest"), *sets)
    paper = ("--mode", "paper", "--clock", "simulated", "--speed", "max")
    tradeloom("run", str(EXAMPLE), *paper, "--out", str(tmp_path / "paper"), *sets)
    batch = pd.read_parquet(tmp_path / "backtest" / "features.parquet").set_index("timestamp")
    live = pd.read_parquet(tmp_path / "paper" / "features.parquet").set_index("timestamp")
    text = [c for c in batch.columns if c.startswith("embedding_")]
    assert len(text) == 257 and len(live) == 300
    assert live["embedding_count"].sum() > 100
    pd.testing.assert_frame_equal(live[text], batch.loc[live.index, text], check_exact=True)

    def probabilities(run: str) -> dict[str, float]:
        rows = read_rows(tmp_path / run / "journal.sqlite", ["signal"])
        return {str(r.timestamp): r.values["probability"] for r in rows}

    paper_p, batch_p = probabilities("paper"), probabilities("backtest")
    assert len(paper_p) > 20
    assert paper_p == {ts: batch_p[ts] for ts in paper_p}
