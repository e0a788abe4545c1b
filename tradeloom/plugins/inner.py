"""Build a component named inside another one's keys (``client: {kind: ...}``,
``feed: {kind: ...}``): looked up by layer and kind, its keys checked by its params model,
each problem named under the key that holds it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from tradeloom.plugins.component import BuildContext, ParamError, raise_collected
from tradeloom.suggestions import did_you_mean

__all__ = ["build_inner", "inner_params"]


def build_inner(layer: str, section: dict[str, Any], ctx: BuildContext, key: str) -> Any:
    """Return the component of ``layer`` that ``section`` names by its ``kind``, built.

    Args:
        layer: The component's layer (``llm_client``, ``text_feed``).
        section: Its keys, ``kind`` among them.
        ctx: The build context.
        key: The key holding ``section``, for messages (``client``).

    Raises:
        ParamError: An unknown or ambiguous kind (``<key>.kind``), or bad keys
            (``<key>.<name>``, an unknown one with a near miss).
    """
    factory, validated = inner_params(layer, section, key)
    return factory(validated, ctx)


def inner_params(
    layer: str, section: dict[str, Any], key: str
) -> tuple[Callable[[Any, BuildContext], Any], BaseModel]:
    """Return the factory of the component of ``layer`` that ``section`` names and its
    keys checked by its params model (defaults filled in), as `build_inner` builds it.

    Raises:
        ParamError: As `build_inner`.
    """
    from tradeloom.plugins.manager import load_plugins

    registry = load_plugins().registry
    kind = section["kind"]
    found = registry.matches(layer, kind)
    if len(found) != 1:
        message = (
            registry.ambiguous_kind_message(layer, kind)
            if found
            else registry.unknown_kind_message(layer, kind)
        )
        raise ParamError(f"{key}.kind", message)
    component = found[0].component
    keys = {name: value for name, value in section.items() if name != "kind"}
    try:
        validated = component.params.model_validate(keys)
    except ValidationError as exc:
        raise_collected([_problem(error, component.params, key) for error in exc.errors()])
        raise AssertionError("unreachable") from None
    return component.factory, validated


def _problem(error: Any, model: type[BaseModel], key: str) -> ParamError:
    """A key's error as the loader words a component's (an unknown key: a near miss)."""
    loc = [str(part) for part in error["loc"]]
    where = ".".join([key, *loc])
    if error["type"] == "extra_forbidden":
        return ParamError(where, f"unknown key{did_you_mean(loc[-1], model.model_fields)}")
    return ParamError(where, str(error["msg"]).removeprefix("Value error, "))
