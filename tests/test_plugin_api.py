"""`tradeloom.plugin` is the public face: its names change only with a deprecation and a note.

`PUBLIC` is the list of names as released. A name removed from ``tradeloom.plugin.__all__``
breaks every plugin that imports it: it must first warn for a minor release
(`tradeloom._deprecated.deprecated`) and CHANGELOG.md must say so. A name added is a promise
kept from then on: CHANGELOG.md's "Added" says so. Either way this list changes in the same
commit as the changelog.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import warnings
from pathlib import Path

import pytest

import tradeloom.plugin
from tradeloom._deprecated import TradeloomDeprecationWarning, deprecated

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = [
    "Absence",
    "AllocationResult",
    "Allocator",
    "AuxiliaryData",
    "Bar",
    "BarStream",
    "Bars",
    "BuildContext",
    "Cancellation",
    "ChatMessage",
    "ChatParams",
    "ChatTransport",
    "Component",
    "CrossSectionalFeature",
    "DataError",
    "DataIssue",
    "DataSource",
    "EventMessage",
    "EventSink",
    "ExtraColumns",
    "Feature",
    "FeatureReference",
    "FeatureStep",
    "Fill",
    "FoldFittedFeature",
    "FoldTransform",
    "GroupCap",
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
    "ParamErrors",
    "Params",
    "PerSymbolModels",
    "PortfolioView",
    "ReadsBarsColumn",
    "ReadsColumns",
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
    "UserError",
    "Venue",
    "VenueTerms",
    "VolumeAware",
    "WalkForwardModel",
    "WindowedModel",
    "WeightConstraints",
    "did_you_mean",
    "hookimpl",
]


DEPRECATED = {"UniverseModel": "Model", "UniverseSource": "DataSource"}
"""Names deprecated (CHANGELOG.md's Deprecated) and still importable, each with what
replaces it; not in ``__all__``."""


@pytest.mark.parametrize(("name", "instead"), sorted(DEPRECATED.items()))
def test_a_deprecated_name_still_imports_and_warns(name: str, instead: str) -> None:
    with pytest.warns(TradeloomDeprecationWarning) as caught:
        value = getattr(tradeloom.plugin, name)

    assert value is getattr(tradeloom.plugin, instead)
    assert name not in tradeloom.plugin.__all__
    assert [str(w.message) for w in caught] == [
        f"tradeloom.plugin.{name} is deprecated since tradeloom 0.1 and will be removed in "
        f"tradeloom 0.2; use {instead}"
    ]
    assert f"`tradeloom.plugin.{name}`" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


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


def test_the_allocators_constraints_keep_their_released_fields() -> None:
    """A public value object's fields are a promise too: a field is added last, with a
    default (``names``, issue 81: an allocator is told its symbols), never renamed."""
    fields = [f.name for f in dataclasses.fields(tradeloom.plugin.WeightConstraints)]
    assert fields == [
        "min_weight",
        "max_weight",
        "net_exposure",
        "gross_exposure",
        "groups",
        "max_turnover",
        "transaction_cost",
        "names",
    ]
    assert tradeloom.plugin.WeightConstraints((0.0,), (1.0,)).names == ()


def test_the_changelog_keeps_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "\n## [Unreleased]\n" in text


def test_a_deprecated_name_warns_where_it_is_used() -> None:
    def old_name() -> None:
        deprecated("tradeloom.plugin.OldName", since="0.3", use_instead="NewName", removed_in="0.4")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old_name()  # the line blamed
    [warning] = caught
    assert warning.category is TradeloomDeprecationWarning
    assert issubclass(TradeloomDeprecationWarning, DeprecationWarning)
    assert str(warning.message) == (
        "tradeloom.plugin.OldName is deprecated since tradeloom 0.3 and will be removed in "
        "tradeloom 0.4; use NewName"
    )
    assert (warning.filename, warning.lineno) == (__file__, _line_of("old_name()  # the line"))


@pytest.mark.parametrize(
    ("since", "removed_in"), [("0.3", "0.3"), ("0.3", "0.2"), ("1.2", "1.2.5")]
)
def test_a_deprecation_is_removed_in_a_later_minor_release(since: str, removed_in: str) -> None:
    with pytest.raises(ValueError, match=rf"^x: removed in {removed_in}, not a later minor "):
        deprecated("x", since=since, use_instead="y", removed_in=removed_in)


def test_every_deprecation_names_its_release_in_the_changelog() -> None:
    """CHANGELOG.md's Deprecated entries say the release that removes each (the warnings'
    own), never a later release unnamed."""
    from tradeloom.plugins.protocols_symbols import REMOVED_IN

    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    deprecated_part = re.split(r"\n##+ ", text.split("\n### Deprecated\n", 1)[1], maxsplit=1)[0]
    entries = [e for e in deprecated_part.split("\n- ") if e.strip()]
    assert entries
    assert [
        e[:60] for e in entries if f"removed in {REMOVED_IN}" not in e.replace("\n  ", " ")
    ] == []


def _line_of(text: str) -> int:
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line and "_line_of" not in line)


def test_a_plugin_author_can_filter_the_warning_by_its_public_name() -> None:
    assert tradeloom.plugin.TradeloomDeprecationWarning is TradeloomDeprecationWarning


_WHERE_PLUGIN = """
import pandas as pd

from tradeloom.plugin import Bars, Component, Params, hookimpl

SEEN = []


class Close:
    def columns(self) -> list[str]:
        return ["close_copy"]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"close_copy": bars.frame["close"]}, index=bars.frame.index)


def build(params, ctx):
    SEEN.append((ctx.path, ctx.location))
    return Close()


@hookimpl
def tradeloom_components() -> list[Component]:
    return [Component("features", "close_copy_where", Params, build)]
"""


def test_the_build_context_keeps_its_released_fields_and_tells_a_factory_where_it_is(
    tmp_path: Path,
) -> None:
    """``path`` and ``location`` (added last, with defaults): where the file declares the
    component, for what it says when it fails at run time (a text_llm's server down)."""
    from tradeloom.cli.main import main

    fields = [f.name for f in dataclasses.fields(tradeloom.plugin.BuildContext)]
    assert fields[-2:] == ["path", "location"]
    assert tradeloom.plugin.BuildContext("s", tmp_path, 0).path == ""
    (tmp_path / "where_plugin_65.py").write_text(_WHERE_PLUGIN)
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: where\n"
        "plugins: [where_plugin_65]\n"
        "data: {kind: synthetic, bars: 300}\n"
        "features:\n"
        "  - {kind: log_return, period: 1}\n"
        "  - {kind: close_copy_where}\n"
        "model: {kind: precomputed, column: close}\n"
        "signal: {kind: threshold, threshold: 0.5}\n"
        "risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}\n"
        "execution: {kind: simulated, initial_cash: 1000}\n"
    )
    assert main(["validate", str(path)]) == 0
    assert sys.modules["where_plugin_65"].SEEN[-1] == ("features.1", f"{path}:6:5")


_DECLARING_PLUGIN = """
import pandas as pd

from tradeloom.plugin import Bars, BuildContext, Component, Params, hookimpl


class SpreadParams(Params):
    pass


class Spread:
    def columns(self) -> list[str]:
        return ["open_interest_change"]

    def input_columns(self) -> tuple[str, ...]:
        return ("close", "open_interest")

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        change = bars.frame["open_interest"].diff()
        return pd.DataFrame({"open_interest_change": change}, index=bars.frame.index)


@hookimpl
def tradeloom_components() -> list[Component]:
    return [Component("features", "oi_change", SpreadParams, lambda p, ctx: Spread())]
"""


def test_a_plugins_feature_declares_the_columns_it_reads_and_validation_checks_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tradeloom.plugin.ReadsColumns`: a third-party feature says what it reads of the
    bars, and a file whose data lacks it is refused as a built-in's would be."""
    from tradeloom.cli.main import main

    (tmp_path / "oi_plugin_65.py").write_text(_DECLARING_PLUGIN)
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"2024-01-{d:02d}T00:00:00Z,100,101,99,100,5" for d in range(1, 29)]
    (tmp_path / "bars.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: oi\n"
        "plugins: [oi_plugin_65]\n"
        "data: {kind: csv, path: bars.csv, timeframe: 1d}\n"
        "features:\n"
        "  - {kind: oi_change}\n"
        "model: {kind: precomputed, column: close}\n"
        "signal: {kind: threshold, threshold: 0.5}\n"
        "risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}\n"
        "execution: {kind: simulated, initial_cash: 1000}\n"
    )
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"{path}:5:5 features.0: the bars have no column 'open_interest' (their columns "
        "beside OHLCV: none); declare it under data.auxiliary\n"
    )
    assert isinstance(sys.modules["oi_plugin_65"].Spread(), tradeloom.plugin.ReadsColumns)


_SEVERAL_PLUGIN = """
from tradeloom.plugin import Component, ParamError, ParamErrors, Params, hookimpl


class TwoKeys(Params):
    low: float = 0.0
    high: float = 1.0


def build(params, ctx):
    raise ParamErrors(
        [ParamError("low", "must be below high, was 2.0"), ParamError("high", "must be set")]
    )


@hookimpl
def tradeloom_components() -> list[Component]:
    return [Component("signal", "two_keys_65", TwoKeys, build)]
"""


def test_a_plugins_factory_reports_several_problems_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tradeloom.plugin.ParamErrors`: each problem at its own key, as the built-ins'."""
    from tradeloom.cli.main import main

    (tmp_path / "several_plugin_65.py").write_text(_SEVERAL_PLUGIN)
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: several\n"
        "plugins: [several_plugin_65]\n"
        "data: {kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 200}\n"
        "features: [{kind: log_return}]\n"
        "model: {kind: precomputed, column: close}\n"
        "signal: {kind: two_keys_65, low: 2.0}\n"
        "risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}\n"
        "execution: {kind: simulated, initial_cash: 1000}\n"
    )
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:6:9 signal.high: must be set",  # not in the file: at its section
        f"{path}:6:34 signal.low: must be below high, was 2.0",
    ]
