"""The registry of components, built from every plugin's ``tradeloom_components``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel

from tradeloom.errors import UserError
from tradeloom.plugins.component import LAYERS, Component

__all__ = ["PluginInfo", "RegisteredComponent", "RegistrationError", "Registry", "did_you_mean"]


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
    """Look up components by layer and kind; refuse duplicates and malformed entries.

    Args:
        plugins: The loaded plugins, built-ins first.

    Raises:
        RegistrationError: A duplicate (layer, kind), naming both plugins, or a
            component that is not well formed.
    """

    def __init__(self, plugins: Iterable[PluginInfo]) -> None:
        self.plugins: tuple[PluginInfo, ...] = tuple(plugins)
        self._by_key: dict[tuple[str, str], RegisteredComponent] = {}
        for plugin in self.plugins:
            for component in plugin.components:
                _check_component(component, plugin)
                key = (component.layer, component.kind)
                if key in self._by_key:
                    first = self._by_key[key].plugin
                    raise RegistrationError(
                        f"component {component.layer} kind '{component.kind}' is registered "
                        f"twice: by plugin '{first.name}' ({first.source}) and by plugin "
                        f"'{plugin.name}' ({plugin.source})"
                    )
                self._by_key[key] = RegisteredComponent(component, plugin)

    def get(self, layer: str, kind: str) -> RegisteredComponent | None:
        """Return the component registered for ``layer`` and ``kind``, or None."""
        return self._by_key.get((layer, kind))

    def kinds(self, layer: str) -> list[str]:
        """Return the installed kinds of ``layer``, sorted."""
        return sorted(kind for (lay, kind) in self._by_key if lay == layer)

    def components(self, layer: str) -> list[RegisteredComponent]:
        """Return the components of ``layer``, sorted by kind."""
        return [self._by_key[(layer, kind)] for kind in self.kinds(layer)]

    def unknown_kind_message(self, layer: str, kind: str) -> str:
        """Return the message for an unknown kind: the installed kinds and a near miss."""
        installed = self.kinds(layer)
        hint = did_you_mean(kind, installed)
        listed = ", ".join(installed) if installed else "none"
        return f"unknown {layer} kind '{kind}'{hint}; installed kinds: {listed}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


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
