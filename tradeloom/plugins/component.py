"""What a plugin registers: a component of a layer, its YAML keys and its factory."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from tradeloom.bounds import MAX_WINDOW

__all__ = [
    "LAYERS",
    "BuildContext",
    "Component",
    "Layer",
    "LazyComponent",
    "ParamError",
    "ParamErrors",
    "Params",
    "bars_key",
    "param_errors",
    "raise_collected",
]

Layer = Literal[
    "data",
    "features",
    "model",
    "signal",
    "allocation",
    "sizing",
    "risk",
    "execution",
    "monitoring",
    "llm_client",
    "text_feed",
    "events",
    "chat",
]
"""The layers a component can belong to. ``sizing`` and ``risk`` (rules) form the risk
layer; ``allocation`` is optional in a strategy (target weights of the universe).
``llm_client`` is no section of its own: a text feature that asks a model names one
inside it (``client: {kind: openai_compatible, ...}``); nor is ``text_feed``: a text source
that a paper or live run receives as it runs names one (``feed: {kind: nats, ...}``).
``events`` components are a paper or live run's brokers, listed under ``live.events``;
``chat`` components are the transports of ``tradeloom chat KIND RUN_DIR``, in no file."""

LAYERS: tuple[str, ...] = get_args(Layer)
"""Every `Layer`, in the order of a strategy file."""


class Params(BaseModel):
    """Base of every component's params model: unknown keys are an error, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def bars_key(default: Any, minimum: int, what: str, *, strict: bool = True) -> Any:
    """Return the ``Field`` of a key counting bars (or rows, or observations): an int in
    ``minimum .. MAX_WINDOW``, its description ending with that range.

    Args:
        default: The key's default (``...``: the key is required).
        minimum: Its least value.
        what: What it counts; the description adds the range, "(2 .. 1,000,000)".
        strict: Refuse a float or a numeric string (a feature's period: ``14.5`` is a typo,
            not 14).
    """
    return Field(
        default=default,
        ge=minimum,
        le=MAX_WINDOW,
        strict=strict,
        description=f"{what} ({minimum} .. {MAX_WINDOW:,}).",
    )


class ParamError(Exception):
    """Raised by a factory for a value that is valid alone but not in context.

    The runner locates it at ``FILE:LINE:COL`` of ``<component path>.<key>``.

    Args:
        key: The params key at fault (dotted below the component, e.g. ``of`` or
            ``params.max_depth``); empty for the component as a whole.
        message: What was expected and what was there.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class ParamErrors(ParamError):
    """Raised by a factory that found several problems at once: each is reported (a
    `ParamError` handler that knows only the one sees the first).

    Args:
        errors: The problems, in the order found; at least one.
    """

    def __init__(self, errors: Sequence[ParamError]) -> None:
        if not errors:
            raise ValueError("ParamErrors needs at least one ParamError")
        self.errors = tuple(e for error in errors for e in param_errors(error))
        first = self.errors[0]
        super().__init__(first.key, first.message)


def param_errors(error: ParamError) -> tuple[ParamError, ...]:
    """Return every problem ``error`` holds: its `ParamErrors`'s, or itself."""
    return error.errors if isinstance(error, ParamErrors) else (error,)


def raise_collected(errors: Sequence[ParamError]) -> None:
    """Raise the problems found (`ParamErrors`; one: itself), or nothing when none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ParamErrors(errors)


@dataclass(frozen=True)
class BuildContext:
    """What a factory may know about the strategy it is built for.

    Attributes:
        strategy_name: The strategy's ``name``.
        strategy_dir: Folder of the strategy file; relative paths resolve against it.
        seed: The strategy's seed; every random source derives from it.
        feature_columns: Feature columns defined before this component (for a feature),
            or all of them (for the other layers).
        horizon: The model's label horizon in bars (0 before the model is built).
        feature_spec: For the layers after the features, the features section as
            `StrategyConfig.feature_spec` gives it (a saved model compares it with the
            one it was trained with).
        fold_transforms: For the model, the transforms that features ask it to fit inside
            each walk-forward fold (`tradeloom.plugins.protocols.FoldTransform`), in
            feature order.
        features_known: False where ``tradeloom validate`` goes on past mistakes in the
            features section to report every other one: ``feature_columns`` and
            ``feature_spec`` may then lack some, and a factory should refuse nothing for
            a name missing from them (the file is refused anyway).
        mode: What the components are built for: ``backtest`` (also a sweep's variants,
            check-lookahead, a replay), ``paper`` or ``live``. A component that calls a
            service decides by it what an outage does: stop a backtest, which can be run
            again, or let a paper or live run go on trading.
        path: The component's dotted key path in the strategy file (``features.4``), for
            what it says when it fails later, at run time; '' where it was built from no
            file's entry.
        location: ``FILE:LINE:COL`` of that entry (``--set`` where an override gave it
            whole); '' as ``path``.
    """

    strategy_name: str
    strategy_dir: Path
    seed: int
    feature_columns: tuple[str, ...] = ()
    horizon: int = 0
    feature_spec: tuple[Mapping[str, Any], ...] = ()
    features_known: bool = True
    fold_transforms: tuple[Any, ...] = ()
    mode: Literal["backtest", "paper", "live"] = "backtest"
    path: str = ""
    location: str = ""

    def resolve_path(self, path: str | Path) -> Path:
        """Return ``path`` made absolute against the strategy file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.strategy_dir / p).resolve()


@dataclass(frozen=True)
class Component:
    """A component a plugin provides.

    Attributes:
        layer: The layer it implements.
        kind: The name used as ``kind:`` in a strategy file.
        params: Pydantic model of its YAML keys (subclass `Params`; no ``kind`` field).
        factory: Called with the validated params and a `BuildContext`; returns an
            object implementing the layer's protocol (see `tradeloom.plugins.protocols`).
            It may raise `ParamError`.
        summary: One line for ``tradeloom plugins``.
        plot: For a feature, where ``report.html`` draws its columns: ``price`` on the
            price panel (a moving average, a band: values in the price's units),
            ``panel`` in a panel of its own below the price (an oscillator), or None
            (not drawn: returns, lags, z-scores).
    """

    layer: Layer
    kind: str
    params: type[BaseModel]
    factory: Callable[[Any, BuildContext], Any]
    summary: str = ""
    plot: Literal["price", "panel"] | None = None


class LazyComponent(Component):
    """A `Component` whose params model and factory are imported from ``module`` at
    their first use: registering it imports nothing of its implementation.

    The built-in plugins register theirs this way, so that a command imports the
    modules of the kinds its file names, not every built-in's (their kernels, numpy,
    the exchange clients). ``params`` and ``factory`` read as a `Component`'s; the
    registry checks a lazy component's params model where it is first read, not at
    registration (tests/plugins/test_lazy_components.py checks every built-in's).

    Args:
        layer: As a `Component`'s.
        kind: As a `Component`'s.
        module: The module that defines its params model and factory.
        params: The params model's name in ``module``.
        factory: The factory's name in ``module``.
        summary: As a `Component`'s.
        plot: As a `Component`'s.
    """

    module: str
    _names: tuple[str, str]

    def __init__(
        self,
        layer: Layer,
        kind: str,
        module: str,
        params: str,
        factory: str,
        summary: str = "",
        plot: Literal["price", "panel"] | None = None,
    ) -> None:
        # a frozen dataclass's fields are set as its own __init__ sets them
        for name, value in (
            ("layer", layer),
            ("kind", kind),
            ("summary", summary),
            ("plot", plot),
            ("module", module),
            ("_names", (params, factory)),
        ):
            object.__setattr__(self, name, value)

    @property
    def params(self) -> type[BaseModel]:
        """The params model, imported at the first read."""
        return getattr(importlib.import_module(self.module), self._names[0])  # type: ignore[no-any-return]

    @property
    def factory(self) -> Callable[[Any, BuildContext], Any]:
        """The factory, imported at the first read."""
        return getattr(importlib.import_module(self.module), self._names[1])  # type: ignore[no-any-return]
