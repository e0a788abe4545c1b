"""Hatch build hook: the ready-to-run strategies, the examples and portable kernels in a wheel.

``strategies/`` and ``examples/`` stay at the top of the repository; a wheel carries them
as ``tradeloom/_starter/`` (where ``tradeloom init`` finds them, tradeloom/cli/init.py).
Not for an editable install, which reads them in the clone: hatchling's ``force-include``
setting would copy them into site-packages as a stray ``tradeloom/_starter`` folder.

With ``TRADELOOM_WHEEL_KERNELS`` naming a kernel cache that ``tradeloom warm --portable``
filled from these sources, the wheel also carries those compiled kernels, as
``tradeloom/_kernels/<stamp>/`` (`tradeloom.kernels.manifest.SHIPPED`): a first run after
``pip install`` loads them instead of compiling (docs/installing.md). numba's cache is
per Python version and platform, so such a wheel is tagged for this interpreter and
platform (``cp311-cp311-linux_x86_64``); without the variable it stays pure Python. A
folder built from other sources or by another Python fails the build.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

STARTER = {"strategies": "tradeloom/_starter/strategies", "examples": "tradeloom/_starter/examples"}
KERNELS = "TRADELOOM_WHEEL_KERNELS"


class StarterFiles(BuildHookInterface):
    """Force-include `STARTER`, and the portable kernels, into a standard (not editable) wheel."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Add the folders to the wheel's forced inclusions."""
        if version == "editable":
            return
        build_data["force_include"].update(STARTER)
        kernels = os.environ.get(KERNELS)
        if kernels:
            package = Path(self.root) / "tradeloom"
            sources = _module(package / "kernels" / "jit.py").sources_digest(package)
            manifest = _module(package / "kernels" / "manifest.py")
            try:
                folder, _ = manifest.find_shipped(Path(kernels), sources)
            except ValueError as exc:
                raise SystemExit(f"{KERNELS}: {exc}") from None
            shipped = f"tradeloom/{manifest.SHIPPED}/{folder.name}"
            build_data["force_include"][str(folder)] = shipped
            build_data["pure_python"] = False
            build_data["infer_tag"] = True


def _module(path: Path) -> ModuleType:
    """Load one of the package's standard-library-only modules by its path: the build
    environment may lack the package's dependencies."""
    spec = importlib.util.spec_from_file_location(f"_tradeloom_build_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
