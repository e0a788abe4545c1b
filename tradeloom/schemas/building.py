"""Build one component from its validated section, its factory's refusals located.

The one place a factory is called: `tradeloom.engine.wiring.build_pipeline` builds every
component with it, and `tradeloom.schemas.loader` the components whose keys validated in
a file with other mistakes, so that ``tradeloom validate`` reports every mistake at once
(a misspelt estimator beside a bad threshold), each at its ``file:line:column``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tradeloom.errors import Problem
from tradeloom.plugins import protocols, protocols_allocation
from tradeloom.plugins.component import BuildContext, ParamError, param_errors
from tradeloom.plugins.protocols_symbols import data_source, model_over_symbols
from tradeloom.schemas.config import ComponentConfig

__all__ = ["LAYER_PROTOCOLS", "build_component"]

LAYER_PROTOCOLS: dict[str, type] = {  # a cross-sectional feature is a Feature too
    "data": protocols.DataSource,
    "features": protocols.Feature,
    "model": protocols.Model,
    "signal": protocols.SignalRule,
    "allocation": protocols_allocation.Allocator,
    "sizing": protocols.Sizer,
    "risk": protocols.RiskRule,
    "execution": protocols.Venue,
    "monitoring": protocols.Monitor,
}
"""What each layer's component implements."""


def build_component(
    item: ComponentConfig,
    ctx: BuildContext,
    locate: Callable[[str], str],
    *,
    implements: bool = True,
) -> tuple[object | None, list[Problem]]:
    """Call ``item``'s factory with its params.

    Args:
        item: The validated section.
        ctx: What the factory may know of the strategy.
        locate: ``file:line:column`` of a key path.
        implements: Check that what it built implements its layer (a plugin's mistake,
            not the file's: a file with other mistakes leaves it to its whole build).

    Returns:
        What it built (None: it refused, or built what does not implement its layer) and
        the problems: one per `ParamError` it raised (every one of a `ParamErrors`), at
        the section's path and the error's key.
    """
    component = item.registered.component
    try:
        built = component.factory(
            item.params, replace(ctx, path=item.path, location=locate(item.path))
        )
    except ParamError as exc:
        problems = []
        for error in param_errors(exc):
            path = f"{item.path}.{error.key}" if error.key else item.path
            problems.append(Problem(locate(path), path, error.message))
        return None, problems
    what = f"{component.layer} kind '{item.kind}' of plugin '{item.registered.plugin.name}'"
    if component.layer == "data":
        built = data_source(built, what)
    elif component.layer == "model":
        built = model_over_symbols(built, what)
    expected = LAYER_PROTOCOLS[component.layer]
    if implements and not isinstance(built, expected):
        missing = protocols.missing_members(built, expected)
        message = (
            f"{component.layer} kind '{item.kind}' of plugin '{item.registered.plugin.name}' "
            f"built a {type(built).__name__}, which does not implement {expected.__name__} "
            f"(missing: {', '.join(missing)})"
        )
        return None, [Problem(locate(item.path), item.path, message)]
    return built, []
