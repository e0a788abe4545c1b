"""The public API for plugin authors: everything a third-party package imports.

Import this module, and only this one, as pytest users import ``pytest``::

    from tradeloom.plugin import BuildContext, Component, Params, hookimpl

It is tradeloom's stable surface: the names below change only with a deprecation (a
`TradeloomDeprecationWarning` for at least one minor release, raised through
`tradeloom._deprecated.deprecated`, and a note in CHANGELOG.md; tests/test_plugin_api.py
holds the list of names). Everything else under ``tradeloom`` may move between releases.

What is here:

- registering components: `hookimpl`, `Component`, `Params`, `ParamError` (and
  `ParamErrors`, several at once), `BuildContext`, `Layer`, `LAYERS`, `did_you_mean`;
- what each layer's component implements (`DataSource` and `Model`, over symbols: one
  market is a universe of one; `Feature`,
  `SignalRule`, `Allocator`, `Sizer`, `RiskRule`, `Venue`, `Monitor`; an allocator's
  `WeightConstraints`, `GroupCap` and `AllocationResult`), what a feature declares it
  reads of the bars (`ReadsColumns`, checked against the data at validation) and its
  helper types
  (`RiskContext`, `MonitorInput`, `MonitorMetrics`, `Retrainable`, `FeatureStep`,
  `SteppedFeature`, `StepContext`), and an execution component over several venues
  (`MultiVenue`, `VenueTerms`: the router); a data source that loads informative
  pairs beside its traded markets (`InformativeSource`, ``features[].symbol``);
- what trading live asks besides (`LiveFeed`, over symbols; `BarStream`, `LiveModel`,
  `LiveTrainer`, `LiveAnomalyGate`, `WindowedModel`, `LiveVenue`), checked by ``tradeloom validate
  FILE --mode paper|live``;
- the value objects components take and return (`Bar`, `Bars`, `Signal`,
  `OrderIntent`, `Order`, `Fill`, `Cancellation`, `Rejection`, `Refusal`, `Halt`, ...);
- the errors a component raises for a user's mistake (`ParamError`, `ParamErrors`,
  `DataError`, `UserError`) or an exchange that does not answer (`RetriesExhausted`);
- the warning a deprecated name of this module gives (`TradeloomDeprecationWarning`).

The hooks themselves are documented in ``tradeloom/plugins/hookspecs.py``.
"""

from __future__ import annotations

from tradeloom._deprecated import TradeloomDeprecationWarning
from tradeloom.domain import (
    OHLCV,
    Absence,
    Bar,
    Bars,
    Cancellation,
    DataIssue,
    FeatureReference,
    Fill,
    Halt,
    HealthAction,
    HealthActionKind,
    HealthChange,
    HealthStatus,
    ModelOutput,
    ModelTraining,
    Order,
    OrderIntent,
    PortfolioView,
    Refusal,
    Rejection,
    Retraining,
    RunInfo,
    Signal,
    Universe,
)
from tradeloom.errors import DataError, UserError
from tradeloom.plugins.component import (
    LAYERS,
    BuildContext,
    Component,
    Layer,
    ParamError,
    ParamErrors,
    Params,
)
from tradeloom.plugins.hookspecs import hookimpl
from tradeloom.plugins.protocols import (
    AuxiliaryData,
    BarStream,
    CrossSectionalFeature,
    DataSource,
    ExtraColumns,
    Feature,
    FoldFittedFeature,
    FoldTransform,
    InformativeSource,
    KnownLength,
    KnownSymbols,
    LabelHorizon,
    LiveAnomalyGate,
    LiveFeed,
    LiveModel,
    LiveTrainer,
    LiveVenue,
    Model,
    Monitor,
    MonitorInput,
    MonitorMetrics,
    MultiVenue,
    PerSymbolModels,
    ReadsBarsColumn,
    ReadsColumns,
    ReadsVolume,
    Retrainable,
    RiskContext,
    RiskRule,
    SignalRule,
    Sizer,
    SymbolIdModel,
    Venue,
    VenueTerms,
    VolumeAware,
    WalkForwardModel,
    WindowedModel,
)
from tradeloom.plugins.protocols_allocation import (
    AllocationResult,
    Allocator,
    GroupCap,
    WeightConstraints,
)
from tradeloom.plugins.protocols_books import LiveBookFeed
from tradeloom.plugins.protocols_chat import ChatMessage, ChatParams, ChatTransport
from tradeloom.plugins.protocols_events import EventMessage, EventSink
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext, SteppedFeature
from tradeloom.runtime.retrying import RetriesExhausted
from tradeloom.suggestions import did_you_mean

__all__ = [
    "LAYERS",
    "OHLCV",
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
    "WeightConstraints",
    "WindowedModel",
    "did_you_mean",
    "hookimpl",
]


_RENAMED = {"UniverseSource": "DataSource", "UniverseModel": "Model"}
"""The deprecated names (the protocols over symbols, named apart until one market was the
universe of one) and the public names they are now."""


def __getattr__(name: str) -> object:
    # the deprecated names, importable for at least one minor release (CHANGELOG.md)
    if name in _RENAMED:
        from tradeloom._deprecated import deprecated
        from tradeloom.plugins.protocols_symbols import DEPRECATED_SINCE, REMOVED_IN

        instead = _RENAMED[name]
        deprecated(f"tradeloom.plugin.{name}", DEPRECATED_SINCE, instead, removed_in=REMOVED_IN)
        return globals()[instead]
    raise AttributeError(f"module 'tradeloom.plugin' has no attribute {name!r}")
