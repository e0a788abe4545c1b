"""Hatch build hook: the ready-to-run strategies and the examples inside the wheel.

``strategies/`` and ``examples/`` stay at the top of the repository; a wheel carries them
as ``tradeloom/_starter/`` (where ``tradeloom init`` finds them, tradeloom/cli/init.py).
Not for an editable install, which reads them in the clone: hatchling's ``force-include``
setting would copy them into site-packages as a stray ``tradeloom/_starter`` folder.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

STARTER = {"strategies": "tradeloom/_starter/strategies", "examples": "tradeloom/_starter/examples"}


class StarterFiles(BuildHookInterface):
    """Force-include `STARTER` into a standard (not editable) wheel."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Add the folders to the wheel's forced inclusions."""
        if version == "editable":
            return
        build_data["force_include"].update(STARTER)
