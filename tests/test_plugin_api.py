"""`tradeloom.plugin` is the public face: its names change only with a deprecation and a note.

`PUBLIC` is the list of names as released. A name removed from ``tradeloom.plugin.__all__``
breaks every plugin that imports it: it must first warn for a minor release
(`tradeloom._deprecated.deprecated`) and CHANGELOG.md must say so. A name added is a promise
kept from then on: CHANGELOG.md's "Added" says so. Either way this list changes in the same
commit as the changelog.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import tradeloom.plugin
from tradeloom._deprecated import TradeloomDeprecationWarning, deprecated

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = [
    "Absence",
    "AuxiliaryData",
    "Bar",
    "BarStream",
    "Bars",
    "BuildContext",
    "Cancellation",
    "Component",
    "CrossSectionalFeature",
    "DataError",
    "DataIssue",
    "DataSource",
    "ExtraColumns",
    "Feature",
    "FeatureReference",
    "FeatureStep",
    "Fill",
    "Halt",
    "HealthAction",
    "HealthActionKind",
    "HealthChange",
    "HealthStatus",
    "InformativeSource",
    "KnownLength",
    "KnownSymbols",
    "LAYERS",
    "LabelHorizon",
    "Layer",
    "LiveAnomalyGate",
    "LiveBookFeed",
    "LiveFeed",
    "LiveModel",
    "LiveTrainer",
    "LiveVenue",
    "Model",
    "ModelOutput",
    "ModelTraining",
    "Monitor",
    "MonitorInput",
    "MonitorMetrics",
    "MultiVenue",
    "OHLCV",
    "Order",
    "OrderIntent",
    "ParamError",
    "Params",
    "PerSymbolModels",
    "PortfolioView",
    "ReadsBarsColumn",
    "ReadsVolume",
    "Refusal",
    "Rejection",
    "Retrainable",
    "Retraining",
    "RetriesExhausted",
    "RiskContext",
    "RiskRule",
    "RunInfo",
    "Signal",
    "SignalRule",
    "Sizer",
    "StepContext",
    "SteppedFeature",
    "SymbolIdModel",
    "TradeloomDeprecationWarning",
    "Universe",
    "UniverseModel",
    "UniverseSource",
    "UserError",
    "Venue",
    "VenueTerms",
    "VolumeAware",
    "WalkForwardModel",
    "did_you_mean",
    "hookimpl",
]


def test_the_public_names_are_the_released_ones() -> None:
    now = set(tradeloom.plugin.__all__)
    removed = sorted(set(PUBLIC) - now)
    added = sorted(now - set(PUBLIC))
    assert not removed, (
        f"tradeloom.plugin no longer exports {', '.join(removed)}: a public name is removed "
        "only after a deprecation (tradeloom/_deprecated.py) of at least one minor release; "
        "say so under CHANGELOG.md's Deprecated or Removed, then update PUBLIC in this test"
    )
    assert not added, (
        f"tradeloom.plugin exports {', '.join(added)} too: a public name is a promise; add "
        "it under CHANGELOG.md's Unreleased / Added, then to PUBLIC in this test"
    )


def test_the_changelog_keeps_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "\n## [Unreleased]\n" in text


def test_a_deprecated_name_warns_where_it_is_used() -> None:
    def old_name() -> None:
        deprecated("tradeloom.plugin.OldName", since="0.3", use_instead="NewName")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old_name()  # the line blamed
    [warning] = caught
    assert warning.category is TradeloomDeprecationWarning
    assert issubclass(TradeloomDeprecationWarning, DeprecationWarning)
    assert str(warning.message) == (
        "tradeloom.plugin.OldName is deprecated since tradeloom 0.3 and will be removed in a "
        "later release; use NewName"
    )
    assert (warning.filename, warning.lineno) == (__file__, _line_of("old_name()  # the line"))


def _line_of(text: str) -> int:
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line and "_line_of" not in line)


def test_a_plugin_author_can_filter_the_warning_by_its_public_name() -> None:
    assert tradeloom.plugin.TradeloomDeprecationWarning is TradeloomDeprecationWarning
