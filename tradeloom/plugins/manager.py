"""Build the plugin manager: built-ins, entry-point packages, and a strategy's modules."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

from tradeloom.errors import UserError
from tradeloom.plugins import hookspecs
from tradeloom.plugins.component import Component
from tradeloom.plugins.registry import PluginInfo, Registry
from tradeloom.runtime import entry_point_groups
from tradeloom.suggestions import did_you_mean

if TYPE_CHECKING:
    from importlib import metadata

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginImportError",
    "Plugins",
    "load_plugins",
]

ENTRY_POINT_GROUP = "tradeloom"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "tradeloom.plugins.data",
    "tradeloom.plugins.features",
    "tradeloom.plugins.model",
    "tradeloom.plugins.signal",
    "tradeloom.plugins.allocation",
    "tradeloom.plugins.risk",
    "tradeloom.plugins.execution",
    "tradeloom.plugins.monitoring",
    "tradeloom.plugins.llm_client",
    "tradeloom.plugins.text_feed",
    "tradeloom.plugins.events",
    "tradeloom.plugins.chat",
)


class PluginImportError(UserError):
    """A module listed under ``plugins:`` could not be imported.

    Attributes:
        index: Its position in the ``plugins:`` list.
        module: The module path as written.
    """

    def __init__(self, index: int, module: str, reason: str) -> None:
        self.index = index
        self.module = module
        self.reason = reason
        super().__init__(f"cannot import plugin module '{module}': {reason}")


class Plugins:
    """The plugin manager and the registry of components built from it."""

    def __init__(self, manager: pluggy.PluginManager, registry: Registry) -> None:
        self.manager = manager
        self.registry = registry

    @property
    def hook(self) -> pluggy.HookRelay:
        """Return the hook relay, for broadcasting events."""
        return self.manager.hook


def load_plugins(modules: Sequence[str] = (), *, entry_points: bool = True) -> Plugins:
    """Build a plugin manager and its registry.

    Built-ins are registered first, then the packages of the entry-point group
    ``tradeloom``, then ``modules`` (a strategy's ``plugins:``), in that order.

    Args:
        modules: Module paths to import and register.
        entry_points: Whether to load third-party packages by entry point.

    Raises:
        PluginImportError: A module of ``modules`` cannot be imported.
        UserError: An entry point fails to load, or a plugin implements a hook that
            does not exist.
        RegistrationError: Duplicate or malformed components.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    sources: dict[str, str] = {}
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
        sources[name] = "built-in"
    if entry_points:
        _load_entry_points(pm, sources)
    for index, module_path in enumerate(modules):
        if pm.has_plugin(module_path):
            continue
        try:
            module = importlib.import_module(module_path)
        except (Exception, SystemExit) as exc:  # any import failure is the user's module
            raise PluginImportError(index, module_path, _import_failure(exc)) from None
        if pm.is_registered(module):  # installed by entry point and listed as well
            continue
        _register(pm, module, module_path)
        sources[module_path] = f"module {module_path}"
    _check_hooks(pm)
    infos = [
        PluginInfo(name=name, source=sources.get(name, "unknown"), components=_components(name, p))
        for name, p in pm.list_name_plugin()
    ]
    return Plugins(pm, Registry(infos))


def _import_failure(exc: BaseException) -> str:
    # a plugin that calls sys.exit() while imported would end the command with its
    # code and no word (exit 0: "valid"); it is the plugin's failure, named as such
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}) while being imported"
    return f"{type(exc).__name__}: {exc}"


def _components(name: str, plugin: object) -> tuple[Component, ...]:
    impl = getattr(plugin, "tradeloom_components", None)
    if impl is None:
        return ()
    returned = impl()
    if not isinstance(returned, list | tuple):
        raise UserError(
            f"plugin '{name}': tradeloom_components returned {type(returned).__name__}; "
            "expected a list of Component"
        )
    return tuple(returned)


_FOUND: dict[tuple[object, tuple[str, ...]], tuple[metadata.EntryPoint, ...]] = {}
"""The group's entry points by where they were looked for: finding them reads every
installed distribution's metadata (about 40 ms with a thousand), and a process that
validates many files (a sweep, an editor's loop in one process) asks each time."""


def _entry_points() -> tuple[metadata.EntryPoint, ...]:
    if not _group_declared():
        return ()  # and importlib.metadata, which costs more than the look, not imported
    from importlib import metadata

    where = (metadata.entry_points, tuple(sys.path))  # a new path may hold new packages
    found = _FOUND.get(where)
    if found is None:
        _FOUND.clear()
        found = _FOUND[where] = tuple(metadata.entry_points(group=ENTRY_POINT_GROUP))
    return found


def _group_declared() -> bool:
    """Return whether an installed distribution declares the group (``[tradeloom]``):
    where none does, `metadata.entry_points` finds none, and parsing every entry point of
    every distribution into objects is not needed (`tradeloom.runtime.entry_point_groups`)."""
    return ENTRY_POINT_GROUP in entry_point_groups.declared()


def _load_entry_points(pm: pluggy.PluginManager, sources: dict[str, str]) -> None:
    for ep in _entry_points():
        if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        dist = ep.dist
        where = f"distribution {dist.metadata['name']} {dist.version}" if dist else "unknown"
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:
            raise UserError(
                f"plugin entry point '{ep.name}' ({where}) failed to load: {_import_failure(exc)}"
            ) from None
        _register(pm, plugin, ep.name)
        sources[ep.name] = f"{where} (entry point {ep.name})"


def _check_hooks(pm: pluggy.PluginManager) -> None:
    known = [name for name in dir(hookspecs) if name.startswith("tradeloom_")]
    marker = f"{hookspecs.PROJECT}_impl"
    for name, plugin in pm.list_name_plugin():
        for attr in dir(plugin):
            function = getattr(plugin, attr, None)
            if not attr.startswith("tradeloom_") or not callable(function):
                continue
            if attr not in known:
                raise UserError(
                    f"plugin '{name}' implements unknown hook '{attr}'"
                    f"{_hook_hint(attr, known)}; hooks: {', '.join(known)}"
                )
            if not hasattr(function, marker):
                raise UserError(
                    f"plugin '{name}' defines '{attr}' without @hookimpl "
                    "(from tradeloom.plugin import hookimpl)"
                )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise UserError(f"plugin '{pm.get_name(exc.plugin)}': {exc}") from exc


def _hook_hint(attr: str, known: list[str]) -> str:
    # compare what follows the shared prefix, or every name looks close to every other
    prefix = f"{hookspecs.PROJECT}_"
    hint = did_you_mean(attr.removeprefix(prefix), [k.removeprefix(prefix) for k in known])
    return hint.replace("'", f"'{prefix}", 1) if hint else ""


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise UserError(f"plugin '{name}': {exc}") from exc
