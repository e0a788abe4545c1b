"""A sweep's shared stages: data, features and model predictions, once per upstream configuration.

Variants that differ only in their signal, risk or execution settings share their
bars, features and predictions. `prepare_series` computes them once for such a group
and caches each stage on disk (`tradeloom.sweep.stage_cache`) under a content hash:

- ``data``: the bars as loaded (always loaded: the hash is of their content, so a data
  file that changed is never served from the cache);
- ``features``: keyed by the data's hash, the ``features`` section and the libraries'
  versions;
- ``model``: keyed by the features' key, the ``model`` section, the seed and the
  versions: the probabilities, anomaly flags and scores, and the folds trained;
- ``inputs``: the compiled core's inputs (`tradeloom.core.state.BarInputs`), built by
  the backtest's own `tradeloom.backtest.pipeline.bar_inputs`, keyed by the model's key
  and the regime settings.

`STAGE_RUNS` counts the stages this process computed rather than read (for tests and
the summary). Only a strategy of one symbol is prepared here; a universe's variants
run as whole backtests (`tradeloom.sweep.full_run`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.backtest.pipeline import bar_inputs, check_probabilities
from tradeloom.core.state import BarInputs
from tradeloom.domain import Bars, ModelOutput, ModelTraining, Universe
from tradeloom.engine.core_spec import sizing_year
from tradeloom.engine.features import SymbolFeatures, universe_features
from tradeloom.engine.universe import load_universe
from tradeloom.engine.universe_model import fit_universe
from tradeloom.engine.wiring import Pipeline
from tradeloom.sweep.stage_cache import StageCache, stage_key
from tradeloom.time.calendars import CRYPTO

__all__ = ["STAGE_RUNS", "Series", "StageHashes", "load_series", "prepare_series", "upstream_key"]

STAGE_RUNS: Counter[str] = Counter()
"""Stages computed (not read from the cache) in this process, by name."""

_DOWNSTREAM = frozenset(
    {
        "name",
        "description",
        "signal",
        "risk",
        "execution",
        "monitoring",
        "health",
        "outputs",
        "live",
    }
)
"""Top-level sections that do not change the bars, the features or the predictions."""


@dataclass(frozen=True)
class StageHashes:
    """The content hashes of a variant's shared stages."""

    data: str
    features: str
    model: str
    inputs: str


@dataclass(frozen=True)
class Series:
    """One symbol's bars and model output, ready for the compiled core.

    Attributes:
        inputs: The core's inputs (base 0).
        index: The bars' open times (UTC).
        timeframe_seconds: A bar's length.
        periods_per_year: Bars a year in the data's calendar (the metrics' figure).
        calendar_year: The same, passed to the metrics (None: the 365-day year of a
            market that never closes, computed from the timeframe).
        sizing_year: Bars a year of the calendar given no span, which annualize the
            sizing (`tradeloom.engine.core_spec.sizing_year`).
        model_trainings: Folds trained (skipped ones not counted).
        model_folds_skipped: Folds skipped.
        hashes: The stages' hashes.
    """

    inputs: BarInputs
    index: pd.DatetimeIndex
    timeframe_seconds: int
    periods_per_year: float
    calendar_year: float | None
    sizing_year: float
    model_trainings: int
    model_folds_skipped: int
    hashes: StageHashes

    @property
    def close(self) -> pd.Series:
        """Return the closes, indexed by the bars' times."""
        return pd.Series(self.inputs.px[3, :, 0], index=self.index)


def upstream_key(pipeline: Pipeline) -> str:
    """Return a hash of everything of the strategy upstream of the signal (the group's key).

    Variants with the same key share their data, features, predictions and regime labels.
    """
    config = pipeline.config
    document = {k: v for k, v in config.document.items() if k not in _DOWNSTREAM}
    regime = None if config.regime is None else config.regime.model_dump(mode="json")
    text = json.dumps([document, regime], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def prepare_series(pipeline: Pipeline, cache: StageCache) -> Series | None:
    """Load the data and return the group's series, each stage read or computed and cached.

    Returns:
        The series, or None when the data is a universe of several symbols.
    """
    universe = load_universe(pipeline)
    if len(universe.symbols) != 1:
        return None
    bars = universe.bars[0]
    config = pipeline.config
    data_hash = _data_hash(bars, universe.informative)
    features_key = stage_key("features", data_hash, config.document.get("features"))
    model_key = stage_key("model", features_key, config.document.get("model"), config.seed)
    regime = None if config.regime is None else config.regime.model_dump(mode="json")
    inputs_key = stage_key("inputs", model_key, regime)
    hashes = StageHashes(data_hash, features_key, model_key, inputs_key)
    if load_series(cache, inputs_key) is None:
        output = _model_output(pipeline, universe, cache, hashes)
        trainings_at: dict[int, list[ModelTraining]] = {}
        for training in output.trainings:
            trainings_at.setdefault(training.predict_start, []).append(training)
        inputs = bar_inputs(pipeline, universe, (output,), trainings_at)
        check_probabilities(inputs.px[5])
        calendar = bars.calendar
        index = universe.index
        year = calendar.periods_per_year(bars.timeframe_seconds, index[0].value, index[-1].value)
        meta = {
            "timeframe_seconds": bars.timeframe_seconds,
            "periods_per_year": year,
            "calendar_year": None if calendar is CRYPTO else year,
            "sizing_year": sizing_year(calendar, bars.timeframe_seconds),
            "model_trainings": sum(1 for t in output.trainings if not t.skipped),
            "model_folds_skipped": sum(1 for t in output.trainings if t.skipped),
            "hashes": [data_hash, features_key, model_key, inputs_key],
        }
        arrays: dict[str, Any] = {
            "px": inputs.px,
            "flags": inputs.flags,
            "score": inputs.score,
            "time_ns": inputs.time_ns,
            "trainings": inputs.trainings,
        }
        cache.put("inputs", inputs_key, arrays, meta)
    series = load_series(cache, inputs_key)
    assert series is not None  # just written
    return series


def load_series(cache: StageCache, inputs_key: str) -> Series | None:
    """Return the series cached under ``inputs_key`` (None: not cached, corrupt, or
    cached by a version that did not record each figure)."""
    entry = cache.get("inputs", inputs_key)
    if entry is None or "sizing_year" not in entry.meta:
        return None
    a, meta = entry.arrays, entry.meta
    inputs = BarInputs(
        np.ascontiguousarray(a["px"]),
        np.ascontiguousarray(a["flags"]),
        np.ascontiguousarray(a["score"]),
        np.ascontiguousarray(a["time_ns"]),
        np.ascontiguousarray(a["trainings"]),
    )
    index = pd.DatetimeIndex(inputs.time_ns.view("datetime64[ns]"), name="timestamp").tz_localize(
        "UTC"
    )
    return Series(
        inputs=inputs,
        index=index,
        timeframe_seconds=int(meta["timeframe_seconds"]),
        periods_per_year=float(meta["periods_per_year"]),
        calendar_year=meta["calendar_year"],
        sizing_year=float(meta["sizing_year"]),
        model_trainings=int(meta["model_trainings"]),
        model_folds_skipped=int(meta["model_folds_skipped"]),
        hashes=StageHashes(*meta["hashes"]),
    )


def _model_output(
    pipeline: Pipeline, universe: Universe, cache: StageCache, hashes: StageHashes
) -> ModelOutput:
    bars = universe.bars[0]
    entry = cache.get("model", hashes.model)
    if entry is not None:
        a = entry.arrays
        index = bars.frame.index
        return ModelOutput(
            probability=pd.Series(a["probability"], index=index),
            trainings=tuple(ModelTraining(**t) for t in entry.meta["trainings"]),
            anomalous=pd.Series(a["anomalous"], index=index) if "anomalous" in a else None,
            anomaly_score=pd.Series(a["score"], index=index) if "score" in a else None,
        )
    features = _features(pipeline, universe, cache, hashes)
    output = fit_universe(pipeline, universe, features).outputs[0]
    STAGE_RUNS["model"] += 1
    arrays: dict[str, Any] = {"probability": output.probability.to_numpy(np.float64)}
    if output.anomalous is not None:
        arrays["anomalous"] = output.anomalous.to_numpy(dtype=bool, na_value=False)
    if output.anomaly_score is not None:
        arrays["score"] = output.anomaly_score.to_numpy(dtype=np.float64, na_value=np.nan)
    trainings = [_training_fields(t) for t in output.trainings]
    cache.put("model", hashes.model, arrays, {"trainings": trainings})
    return output


def _features(
    pipeline: Pipeline, universe: Universe, cache: StageCache, hashes: StageHashes
) -> SymbolFeatures:
    bars = universe.bars[0]
    entry = cache.get("features", hashes.features)
    if entry is not None:
        columns = entry.meta["columns"]
        frame = pd.DataFrame(entry.arrays["values"], index=bars.frame.index, columns=columns)
        return SymbolFeatures((frame,), (frame,))
    features = universe_features(pipeline, universe)
    STAGE_RUNS["features"] += 1
    frame = features.own[0]
    cache.put(
        "features",
        hashes.features,
        {"values": frame.to_numpy(np.float64)},
        {"columns": [str(c) for c in frame.columns]},
    )
    return features


def _training_fields(training: ModelTraining) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: getattr(training, f.name) for f in fields(training) if f.name != "reference"}


def _data_hash(bars: Bars, informative: Sequence[Bars] = ()) -> str:
    """Return a hash of the bars' content: every column, the times, the market; and of
    the informative pairs' bars, when there are any (a strategy without keeps its hash)."""
    digest = hashlib.sha256()
    for one in (bars, *informative):
        frame = one.frame
        digest.update(
            json.dumps([one.symbol, one.timeframe, list(map(str, frame.columns))]).encode()
        )
        digest.update(np.ascontiguousarray(frame.index.as_unit("ns").asi8).tobytes())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:32]
