"""The registry of components, built from every plugin's ``tradeloom_components``.

A strategy names a component by its layer's section and ``kind``: the bare kind
(``rsi``) when one plugin provides it, ``PLUGIN:KIND`` (``example:range_position``)
to choose between two plugins that both do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel

from tradeloom.errors import UserError
from tradeloom.plugins.component import LAYERS, Component, LazyComponent
from tradeloom.suggestions import did_you_mean

__all__ = [
    "PluginInfo",
    "RegisteredComponent",
    "RegistrationError",
    "Registry",
    "qualified_kind",
]


class RegistrationError(UserError):
    """A plugin registered something the registry refuses."""


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name, where it came from and what it provides.

    Attributes:
        name: The plugin's name in the plugin manager.
        source: ``built-in``, ``distribution NAME VERSION (entry point E)`` or ``module M``.
        components: The components it registered.
    """

    name: str
    source: str
    components: tuple[Component, ...]


@dataclass(frozen=True)
class RegisteredComponent:
    """A component and the plugin that registered it."""

    component: Component
    plugin: PluginInfo


class Registry:
    """Look up components by layer and kind; refuse malformed entries.

    Two plugins may provide the same layer and kind: the registry keeps both, and a
    strategy names the one it means as ``PLUGIN:KIND`` (``example:range_position``, the
    plugin's name as ``tradeloom plugins`` shows it). Only the bare kind is ambiguous;
    it is refused where a strategy uses it (`ambiguous_kind_message`).

    Args:
        plugins: The loaded plugins, built-ins first.

    Raises:
        RegistrationError: A component that is not well formed.
    """

    def __init__(self, plugins: Iterable[PluginInfo]) -> None:
        self.plugins: tuple[PluginInfo, ...] = tuple(plugins)
        self._by_key: dict[tuple[str, str], list[RegisteredComponent]] = {}
        for plugin in self.plugins:
            for component in plugin.components:
                _check_component(component, plugin)
                key = (component.layer, component.kind)
                self._by_key.setdefault(key, []).append(RegisteredComponent(component, plugin))

    def matches(self, layer: str, kind: str) -> list[RegisteredComponent]:
        """Return every component ``kind`` may mean in ``layer``, in registration order.

        ``kind`` is a bare kind (``range_position``: every plugin's) or a qualified one
        (``example:range_position``: that plugin's only).
        """
        plugin, qualified, bare = str(kind).rpartition(":")
        found = self._by_key.get((layer, bare), [])
        if qualified:
            return [entry for entry in found if entry.plugin.name == plugin]
        return list(found)

    def get(self, layer: str, kind: str) -> RegisteredComponent | None:
        """Return the one component ``kind`` names in ``layer``; None if none or several."""
        found = self.matches(layer, kind)
        return found[0] if len(found) == 1 else None

    def kinds(self, layer: str) -> list[str]:
        """Return the installed kinds of ``layer``, sorted (a clashing kind once)."""
        return sorted(kind for (lay, kind) in self._by_key if lay == layer)

    def components(self, layer: str) -> list[RegisteredComponent]:
        """Return the components of ``layer``, sorted by kind, then in registration order."""
        return [entry for kind in self.kinds(layer) for entry in self._by_key[(layer, kind)]]

    def clashes(self) -> list[list[RegisteredComponent]]:
        """Return each (layer, kind) that several plugins provide, with their components."""
        return [
            entries
            for (_, _), entries in sorted(self._by_key.items())
            if len({entry.plugin.name for entry in entries}) > 1
        ]

    def is_clash(self, entry: RegisteredComponent) -> bool:
        """Return whether another plugin provides the same layer and kind as ``entry``."""
        return len(self._by_key[(entry.component.layer, entry.component.kind)]) > 1

    def unknown_kind_message(self, layer: str, kind: str) -> str:
        """Return the message for an unknown kind: the installed kinds and a near miss."""
        plugin, qualified, bare = str(kind).rpartition(":")
        providers = [entry.plugin.name for entry in self._by_key.get((layer, bare), [])]
        if qualified and providers:
            return (
                f"unknown {layer} kind '{kind}': no plugin '{plugin}' provides '{bare}'"
                f"{did_you_mean(plugin, providers)}; it is provided by "
                f"{_listed(f'{name}:{bare}' for name in providers)}"
            )
        installed = self.kinds(layer)
        hint = did_you_mean(bare, installed)
        listed = ", ".join(installed) if installed else "none"
        return f"unknown {layer} kind '{kind}'{hint}; installed kinds: {listed}"

    def ambiguous_kind_message(self, layer: str, kind: str) -> str:
        """Return the message for a kind several plugins provide: who, and how to choose."""
        entries = self.matches(layer, kind)
        named = _listed(f"'{e.plugin.name}' ({e.plugin.source})" for e in entries)
        spellings = " or ".join(f"kind: {e.plugin.name}:{e.component.kind}" for e in entries)
        return (
            f"{layer} kind '{kind}' is provided by {len(entries)} plugins, {named}; "
            f"name one: {spellings}"
        )


def qualified_kind(entry: RegisteredComponent) -> str:
    """Return ``PLUGIN:KIND``, the spelling that names ``entry`` whatever else is installed."""
    return f"{entry.plugin.name}:{entry.component.kind}"


def _listed(items: Iterable[str]) -> str:
    names = list(items)
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def _check_component(component: object, plugin: PluginInfo) -> None:
    if not isinstance(component, Component):
        raise RegistrationError(
            f"plugin '{plugin.name}' returned {type(component).__name__} from "
            "tradeloom_components; expected tradeloom.plugin.Component"
        )
    if component.layer not in LAYERS:
        raise RegistrationError(
            f"plugin '{plugin.name}' registered kind '{component.kind}' for unknown layer "
            f"'{component.layer}'; layers: {', '.join(LAYERS)}"
        )
    if isinstance(component, LazyComponent):
        return  # its params model is read where it is used (a built-in's: tested)
    if not (isinstance(component.params, type) and issubclass(component.params, BaseModel)):
        raise RegistrationError(
            f"plugin '{plugin.name}' {component.layer} kind '{component.kind}': params must "
            "be a pydantic model class"
        )
    if "kind" in component.params.model_fields:
        raise RegistrationError(
            f"plugin '{plugin.name}' {component.layer} kind '{component.kind}': params must "
            "not declare 'kind' (it selects the component)"
        )
