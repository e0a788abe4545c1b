"""A feature that reads a column the data does not have is refused before any bar, by
one rule over what each feature declares (`tradeloom.engine.feature_inputs`).

``obv`` and ``vwap`` on a file without volume used to validate, train no model (their
column NaN on every bar), trade nothing and end with exit 0; ``volume_zscore`` alone was
refused, by a list of one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tradeloom.cli.main import main


def _file_without_volume(folder: Path) -> None:
    rows = ["timestamp,open,high,low,close"]
    rows += [f"2024-01-{d:02d}T00:00:00Z,100,101,99,{100 + d % 3}" for d in range(1, 29)]
    (folder / "bars.csv").write_text("\n".join(rows) + "\n")


def _strategy(folder: Path, features: str) -> Path:
    _file_without_volume(folder)
    path = folder / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: novol
            data: {kind: csv, path: bars.csv, timeframe: 1d}
            features:
              - {kind: log_return, period: 1}
            """
        )
        + textwrap.indent(textwrap.dedent(features), "  ")
        + textwrap.dedent(
            """\
            model: {kind: precomputed, column: close}
            signal: {kind: threshold, threshold: 0.5}
            risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
            execution: {kind: simulated, initial_cash: 1000}
            """
        )
    )
    return path


def test_obv_and_vwap_without_volume_are_refused_each_on_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _strategy(
        tmp_path,
        """\
        - {kind: obv}
        - {kind: rsi, window: 5}
        - {kind: vwap}
        - {kind: obv, name: obv_week, timeframe: 1w}
        """,
    )
    for command in ("validate", "run"):
        assert main([command, str(path)]) == 2
        assert capsys.readouterr().err == (
            f"{path}:5:5 features.1: obv reads volume, and the data has no volume column; "
            "remove this feature or use data with volume\n"
            f"{path}:7:5 features.3: vwap reads volume, and the data has no volume column; "
            "remove this feature or use data with volume\n"
            f"{path}:8:5 features.4: obv reads volume, and the data has no volume column; "
            "remove this feature or use data with volume\n"
        )
    assert not (tmp_path / "runs").exists()  # refused before the run made its folder


def test_features_that_read_only_prices_run_on_a_file_without_volume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _strategy(
        tmp_path,
        """\
        - {kind: atr, window: 3}
        - {kind: time_features, fields: [weekday]}
        """,
    )
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
