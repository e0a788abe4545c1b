"""The ``torch`` model's networks: the built-in ones' keys, a user's module by import path.

``model.network`` names a built-in network (``mlp``, ``lstm``, ``gru``, ``tcn``,
``transformer``) or a ``torch.nn.Module`` subclass by import path
(``mypackage.nets.MyNet``); ``model.params`` are its parameters. A built-in's are
declared here as a params model (checked without importing torch, so ``tradeloom
validate`` stays fast); a user's module is imported and its constructor's signature
read: every key must be one of its parameters (with a "did you mean"), every parameter
without a default must be given, and the module is then built once and run on a window
of zeros, so that a module that cannot be built or answers in the wrong shape is
refused before anything runs. Every module is built as
``Network(n_features, window, outputs, **params)`` (`tradeloom.plugins.model.torch_modules`).

A `NetworkSpec` is the architecture as JSON types: what a saved fold records beside its
weights, and all an exporter needs to build the module again (`build_network`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, model_validator

from tradeloom.plugins.component import ParamError, Params, raise_collected
from tradeloom.suggestions import did_you_mean

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "BUILT_IN",
    "SHAPE_ARGUMENTS",
    "NetworkSpec",
    "build_network",
    "check_network",
    "network_class_path",
]

SHAPE_ARGUMENTS = ("n_features", "window", "outputs")
"""The arguments every network's constructor takes first: the shape of its input and output."""

_MODULES = "tradeloom.plugins.model.torch_modules"


class _Dropout(Params):
    dropout: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Dropout while training (0 .. < 1)."
    )


class MLPParams(_Dropout):
    """``network: mlp``: a multilayer perceptron over the flattened window."""

    hidden: int = Field(
        default=64, ge=1, le=4096, description="Units per hidden layer (1 .. 4096)."
    )
    layers: int = Field(default=2, ge=0, le=16, description="Hidden layers (0 .. 16).")
    activation: Literal["relu", "gelu", "tanh"] = Field(
        default="relu", description="The hidden layers' activation."
    )


class RecurrentParams(_Dropout):
    """``network: lstm`` or ``gru``: a recurrent network, its head on the last step."""

    hidden: int = Field(
        default=32, ge=1, le=1024, description="Units of the hidden state (1 .. 1024)."
    )
    layers: int = Field(default=1, ge=1, le=8, description="Stacked layers (1 .. 8).")


class TCNParams(_Dropout):
    """``network: tcn``: causal convolutions dilated 1, 2, 4, ... per level."""

    channels: int = Field(default=32, ge=1, le=1024, description="Channels per level (1 .. 1024).")
    kernel_size: int = Field(default=3, ge=2, le=64, description="Taps per convolution (2 .. 64).")
    levels: int = Field(default=3, ge=1, le=12, description="Levels (1 .. 12).")


class TransformerParams(_Dropout):
    """``network: transformer``: a small Transformer encoder, a learnt position per row."""

    d_model: int = Field(
        default=32, ge=1, le=1024, description="Width of a row's encoding (1 .. 1024)."
    )
    heads: int = Field(default=4, ge=1, le=64, description="Attention heads (1 .. 64).")
    layers: int = Field(default=2, ge=1, le=12, description="Encoder layers (1 .. 12).")
    feedforward: int = Field(
        default=64,
        ge=1,
        le=8192,
        description="Width of each layer's feed-forward part (1 .. 8192).",
    )

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerParams:
        if self.d_model % self.heads:
            raise ValueError(
                f"d_model must be a multiple of heads ({self.heads}), was {self.d_model}"
            )
        return self


BUILT_IN: dict[str, tuple[str, type[Params]]] = {
    "mlp": ("MLPNetwork", MLPParams),
    "lstm": ("LSTMNetwork", RecurrentParams),
    "gru": ("GRUNetwork", RecurrentParams),
    "tcn": ("TCNNetwork", TCNParams),
    "transformer": ("TransformerNetwork", TransformerParams),
}
"""Built-in network name -> its class in `tradeloom.plugins.model.torch_modules` and its
params model."""


@dataclass(frozen=True)
class NetworkSpec:
    """A network's architecture as JSON types: what builds it again (`build_network`).

    Attributes:
        network: A built-in network's name, or the import path of a user's module.
        params: Its parameters, every default filled in for a built-in.
        n_features: Values per row (the feature columns).
        window: Rows per window.
        outputs: 1 (a logit, or a scaled return) or 3 (the logits of down, flat, up).
    """

    network: str
    params: Mapping[str, Any] = field(default_factory=dict)
    n_features: int = 1
    window: int = 1
    outputs: int = 1

    @property
    def class_path(self) -> str:
        """The import path of the module's class."""
        return network_class_path(self.network)

    @property
    def class_name(self) -> str:
        """The module class's name (``LSTMNetwork``), as a fold's training journals it."""
        return self.class_path.rpartition(".")[2]

    def record(self) -> dict[str, Any]:
        """Return the spec as a saved fold records it."""
        return {
            "network": self.network,
            "class": self.class_path,
            "params": dict(self.params),
            "n_features": self.n_features,
            "window": self.window,
            "outputs": self.outputs,
        }

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> NetworkSpec:
        """Return the spec a saved fold's record gives (`record`).

        Raises:
            ValueError: The record is not one `record` writes.
        """
        keys = {"network", "class", "params", "n_features", "window", "outputs"}
        if not isinstance(record, Mapping) or set(record) != keys:
            raise ValueError(f"its network record must have the keys {', '.join(sorted(keys))}")
        sizes = [record[k] for k in SHAPE_ARGUMENTS]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes):
            raise ValueError("its network's n_features, window and outputs must be integers >= 1")
        if not isinstance(record["params"], Mapping) or not isinstance(record["network"], str):
            raise ValueError("its network record's params must be a mapping, network a name")
        spec = cls(str(record["network"]), dict(record["params"]), *sizes)
        if spec.class_path != record["class"]:
            raise ValueError(f"its network {spec.network} is not of class {record['class']}")
        return spec


def network_class_path(network: str) -> str:
    """Return the import path of ``network``'s class (a built-in's, or ``network`` itself)."""
    if network in BUILT_IN:
        return f"{_MODULES}.{BUILT_IN[network][0]}"
    return network


def check_network(
    network: str, params: Mapping[str, Any], *, window: int, outputs: int, n_features: int | None
) -> NetworkSpec:
    """Return the checked spec of ``network`` with ``params``; build nothing of a built-in.

    A user's module is imported, its parameters read off its constructor, and it is built
    and run once on a window of zeros (when ``n_features`` is known).

    Args:
        network: A built-in name, or an import path.
        params: ``model.params``.
        window: ``model.window``.
        outputs: The outputs the label needs.
        n_features: The feature columns (None: not known, validation past a mistake in
            the features; a user's module is then not built).

    Raises:
        ParamError: At ``network`` (unknown name, cannot import, not a module class, it
            fails to build or answers in another shape) or ``params.KEY``.
    """
    width = n_features if n_features is not None else 1
    if network in BUILT_IN:
        _, model = BUILT_IN[network]
        try:
            checked = model.model_validate(dict(params))
        except ValidationError as exc:
            raise_collected(_param_errors(exc, model, network))
            raise  # pragma: no cover - raise_collected raised
        return NetworkSpec(network, checked.model_dump(mode="json"), width, window, outputs)
    if "." not in network:
        raise ParamError(
            "network",
            f"unknown network '{network}'{did_you_mean(network, BUILT_IN)}; built in are "
            f"{', '.join(BUILT_IN)}, or give a torch.nn.Module subclass by import path",
        )
    cls = _import_module_class(network)
    _check_signature(cls, params)
    spec = NetworkSpec(network, dict(params), width, window, outputs)
    if n_features is not None:
        _try_module(spec)
    return spec


def build_network(spec: NetworkSpec) -> nn.Module:
    """Return a new module of ``spec`` (its weights initialised by torch's generator).

    Raises:
        ParamError: At ``network``: a user's module cannot be imported or built.
    """
    if spec.network in BUILT_IN:
        module = importlib.import_module(_MODULES)
        cls = getattr(module, BUILT_IN[spec.network][0])
    else:
        cls = _import_module_class(spec.network)
    try:
        built = cls(spec.n_features, spec.window, spec.outputs, **dict(spec.params))
    except Exception as exc:  # a user's module may raise anything
        raise ParamError(
            "network", f"cannot build {spec.network}: {type(exc).__name__}: {exc}"
        ) from exc
    return built  # type: ignore[no-any-return]


def _param_errors(exc: ValidationError, model: type[Params], network: str) -> list[ParamError]:
    errors = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        key = f"params.{where}" if where else "params"
        if error["type"] == "extra_forbidden":
            known = list(model.model_fields)
            message = f"unknown parameter of network {network}{did_you_mean(where, known)}"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] != "value_error":
                message = f"{message}, was {error['input']!r}"
        errors.append(ParamError(key, message))
    return errors


def _import_module_class(path: str) -> type:
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ParamError("network", f"cannot import '{path}': {exc}") from exc
    except Exception as exc:  # the module itself fails to import: report why
        raise ParamError("network", f"cannot import '{path}': {type(exc).__name__}: {exc}") from exc
    found = getattr(module, attr, None)
    if found is None:
        names = [name for name in dir(module) if not name.startswith("_")]
        raise ParamError(
            "network",
            f"cannot import '{path}': module '{module_name}' has no attribute '{attr}'"
            f"{did_you_mean(attr, names)}",
        )
    from torch import nn

    if not isinstance(found, type) or not issubclass(found, nn.Module):
        raise ParamError(
            "network", f"'{path}' is not a torch.nn.Module subclass; expected one by import path"
        )
    return found


def _check_signature(cls: type, params: Mapping[str, Any]) -> None:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError) as exc:  # pragma: no cover - a class always has one
        raise ParamError("network", f"cannot read the parameters of {cls.__name__}: {exc}") from exc
    arguments = list(signature.parameters.values())
    names = [p.name for p in arguments]
    if names[:3] != list(SHAPE_ARGUMENTS):
        raise ParamError(
            "network",
            f"{cls.__name__}'s constructor must take (n_features, window, outputs, ...) first, "
            f"takes ({', '.join(names)})",
        )
    own = {p.name: p for p in arguments[3:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    problems = [
        ParamError(f"params.{key}", f"unknown parameter of {cls.__name__}{did_you_mean(key, own)}")
        for key in params
        if key not in own
    ]
    problems += [
        ParamError("params", f"{cls.__name__} needs {name} (it has no default)")
        for name, p in own.items()
        if p.default is p.empty and name not in params
    ]
    problems += [
        ParamError(
            f"params.{key}",
            f"must be a number, a string, a boolean or a list of them, was {value!r}",
        )
        for key, value in params.items()
        if not _plain(value)
    ]
    raise_collected(problems)


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def _try_module(spec: NetworkSpec) -> None:
    import torch

    module = build_network(spec)
    zeros = torch.zeros(2, spec.window, spec.n_features)
    try:
        with torch.no_grad():
            out = module.eval()(zeros)
    except Exception as exc:  # a user's module may raise anything
        raise ParamError(
            "network",
            f"{spec.class_name} failed on a window of zeros of shape (2, {spec.window}, "
            f"{spec.n_features}): {type(exc).__name__}: {exc}",
        ) from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, spec.outputs):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ParamError(
            "network",
            f"{spec.class_name} must answer (batch, {spec.outputs}) for (batch, window, "
            f"features); it answered {shape} for (2, {spec.window}, {spec.n_features})",
        )
