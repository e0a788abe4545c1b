"""``tradeloom validate`` reports every mistake at once: the factories of the components
whose keys validated run beside the file's other mistakes (`loader._own_checks`).

A misspelt estimator used to be reported only once the file's five other mistakes were
fixed (a factory ran only for a file whose keys all validated).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tradeloom.cli.main import main

_FILE = """\
name: many
seed: 1
data: {kind: csv, path: nosuch.csv, timeframe: 1h}
features:
  - {kind: log_return, period: 0}
  - {kind: rsi, windw: 14}
  - {kind: zscore, of: rsi_14, window: 10}
model:
  kind: sklearn
  estimator:
    class: sklearn.ensemble.VotingClassifier
    params:
      voting: soft
      estimators:
        - {name: a, class: sklearn.ensemble.RandomForestClasifier}
        - {name: b, class: xgboost.XGBClassifier, params: {device: nosuch}}
  label: {horizon: 2}
  walk_forward: {train_window: 150, retrain_every: 100}
signal: {kind: threshold, threshold: 2, min_interval: 1}
risk: {sizing: {kind: fixed_fraction, fraction: 1.5}}
execution: {kind: simulated, fee_bps: -10, initial_cash: 10000}
"""


def test_every_mistake_is_reported_at_once_estimators_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The zscore of rsi_14 is not refused: rsi's own keys are wrong, so what it defines
    is not known (``BuildContext.features_known``)."""
    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path / "cache"))  # no remembered verdict
    path = tmp_path / "s.yaml"
    path.write_text(_FILE)
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:3:25 data.path: file not found: {tmp_path / 'nosuch.csv'}",
        f"{path}:5:32 features.0.period: must be >= 1, was 0",
        f"{path}:6:17 features.1.windw: unknown key (did you mean 'window'?)",
        f"{path}:15:28 model.estimator.params.estimators.0.class: cannot import "
        "'sklearn.ensemble.RandomForestClasifier': module 'sklearn.ensemble' has no attribute "
        "'RandomForestClasifier' (did you mean 'RandomForestClassifier'?)",
        f"{path}:16:68 model.estimator.params.estimators.1.params.device: must be cpu, cuda, "
        "cuda:<ordinal>, gpu or gpu:<ordinal> (such as cuda:0) or null; was 'nosuch'",
        f"{path}:19:38 signal.threshold: must be <= 1, was 2",
        f"{path}:20:49 risk.sizing.fraction: must be <= 1, was 1.5",
        f"{path}:21:39 execution.fee_bps: must be >= 0, was -10",
    ]


def test_a_name_a_feature_cannot_know_is_refused_once_the_features_are_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: one
            data: {kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 300}
            features:
              - {kind: rsi, window: 14}
              - {kind: zscore, of: rsi_41, window: 10}
            model: {kind: precomputed, column: close}
            signal: {kind: threshold, threshold: 2}
            risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
            execution: {kind: simulated, initial_cash: 1000}
            """
        )
    )
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:5:24 features.1.of: unknown feature 'rsi_41'; defined before it: rsi_14 "
        "(did you mean 'rsi_14'?)",
        f"{path}:7:38 signal.threshold: must be <= 1, was 2",
    ]
