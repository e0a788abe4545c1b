"""The report's calibration table and reliability diagram, from ``calibration_by_fold``."""

from __future__ import annotations

import numpy as np

from tradeloom.plugins.model.calibration import calibration_figures
from tradeloom.reporting.calibration_view import calibration_table, reliability_chart


def _folds() -> list[dict[str, object]]:
    rng = np.random.default_rng(0)
    up = (rng.random(200) < 0.5).astype(float)
    before = 0.5 + (up - 0.5) * 0.1 + rng.normal(0, 0.02, 200)
    after = np.clip(0.5 + (up - 0.5) * 0.4, 0, 1)
    return [calibration_figures(3, before, after, up), calibration_figures(4, after, after, up)]


def test_the_table_shows_each_folds_brier_and_ece_before_and_after() -> None:
    folds = _folds()
    html = calibration_table({"calibration_by_fold": folds})
    first = folds[0]
    assert first["brier_after"] < first["brier_before"]  # type: ignore[operator]
    expected = "".join(
        f"<td>{first[k]:.4f}</td>"
        for k in ("brier_before", "brier_after", "ece_before", "ece_after")
    )
    assert f"<tr><td>3</td><td>200</td>{expected}</tr>" in html
    assert html.count("<tr><td>") == 2
    assert calibration_table({}) == ""


def test_the_reliability_diagram_draws_each_fold_before_and_after() -> None:
    folds = _folds()
    chart = reliability_chart({"calibration_by_fold": folds})
    assert chart is not None
    names = [trace["name"] for trace in chart.data]
    assert names == [
        "perfectly calibrated",
        "fold 3 before",
        "fold 3 after",
        "fold 4 before",
        "fold 4 after",
    ]
    bins = folds[0]["reliability_after"]
    assert chart.data[2]["x"] == bins["predicted"] and chart.data[2]["y"] == bins["observed"]  # type: ignore[index]
    assert sum(bins["count"]) == 200  # type: ignore[index]
    assert reliability_chart({"calibration_by_fold": []}) is None
