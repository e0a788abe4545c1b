"""The report's calibration of a model with ``model.calibration``: per fold, the Brier
score and ECE of its predicted bars before and after calibration, and a reliability
diagram (``metrics.json``'s ``calibration_by_fold``, written by the backtest)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeloom.reporting.charts import Chart, layout

__all__ = ["calibration_table", "reliability_chart"]

_BEFORE, _AFTER, _IDEAL = "#fd8d3c", "#2c7fb8", "#969696"


def calibration_table(m: Mapping[str, Any]) -> str:
    """Return the per-fold table of Brier score and ECE before and after ('' without)."""
    folds = m.get("calibration_by_fold") or []
    if not folds:
        return ""
    rows = "".join(
        f"<tr><td>{f['fold']}</td><td>{f['predictions']:,}</td>"
        + "".join(
            f"<td>{_figure(f.get(key))}</td>"
            for key in ("brier_before", "brier_after", "ece_before", "ece_after")
        )
        + "</tr>"
        for f in folds
    )
    return (
        "<section id='calibration'><h2>Calibration by fold</h2><p class='note'>Out of "
        "sample: each fold's predicted bars whose outcome is known, the model's "
        "probabilities before and after its calibrator.</p><div class='scroll'>"
        "<table class='calibration'><tr><th>fold</th><th>predictions</th>"
        "<th>Brier before</th><th>Brier after</th><th>ECE before</th><th>ECE after</th>"
        f"</tr>{rows}</table></div></section>"
    )


def reliability_chart(m: Mapping[str, Any]) -> Chart | None:
    """Return the reliability diagram of every fold before and after calibration (None
    without calibration): per bin, the mean probability against the share of up moves."""
    folds = m.get("calibration_by_fold") or []
    shown = [f for f in folds if "reliability_before" in f]
    if not shown:
        return None
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "perfectly calibrated",
            "x": [0, 1],
            "y": [0, 1],
            "line": {"color": _IDEAL, "dash": "dot"},
        }
    ]
    for f in shown:
        for when, color in (("before", _BEFORE), ("after", _AFTER)):
            bins = f[f"reliability_{when}"]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"fold {f['fold']} {when}",
                    "legendgroup": when,
                    "x": bins["predicted"],
                    "y": bins["observed"],
                    "text": [f"{n} predictions" for n in bins["count"]],
                    "line": {"color": color, "width": 1},
                    "opacity": 0.8,
                }
            )
    fig = layout(
        360,
        xaxis={"title": "mean predicted probability", "range": [0, 1], "gridcolor": "#e5e5e5"},
        yaxis={"title": "share of up moves", "range": [0, 1], "gridcolor": "#e5e5e5"},
    )
    return Chart("Reliability by fold, before and after calibration", data, fig)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
