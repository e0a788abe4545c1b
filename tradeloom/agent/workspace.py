"""The agent's workspace: one declared folder, every path an agent gives resolved inside it.

A path is relative to the workspace and stays inside it: no absolute path, no ``..``, no
link that leads out, nothing under the server's own folder (`PRIVATE`: the audit log, the
requests, the strategies' versions, the evidence the gate reads). A strategy's own paths
(``data.path``, a cache folder...) and its ``plugins:`` are held to the same rules before
anything reads it. Sizes, run lengths and concurrent runs are bounded (`Limits`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tradeloom.errors import UserError
from tradeloom.journal.agent_audit import PRIVATE

__all__ = ["PRIVATE", "Limits", "Workspace"]

_PATH_KEYS = ("path", "file", "dir", "folder", "directory")
_CLASS_KEYS = ("estimator", "class", "network")
"""Keys whose value may be a class's import path: importing it runs its module's code."""
_CLASS_PACKAGES = frozenset({"sklearn", "lightgbm", "xgboost", "catboost", "torch", "tradeloom"})
"""The packages a strategy of any workspace may import a class from."""
"""A strategy's key whose name ends with one of these holds a path (``data.path``,
``cache_dir``, ``models_dir``)."""


@dataclass(frozen=True)
class Limits:
    """The bounds of what an agent may ask.

    Attributes:
        max_file_bytes: The largest strategy file an agent may write or run.
        max_bars: The most bars a strategy's ``data.bars`` may ask for.
        max_variants: The most variants of one sweep.
        max_runs: Backtests, sweeps and checks running at once.
        paper_bars: The bars a paper run trades before it stops (``--max-bars``).
        max_rows: The most rows of a table's page.
    """

    max_file_bytes: int = 256_000
    max_bars: int = 100_000
    max_variants: int = 100
    max_runs: int = 2
    paper_bars: int = 200
    max_rows: int = 500


class Workspace:
    """One folder an agent works in; every path it gives is resolved inside it."""

    def __init__(
        self, root: Path, limits: Limits | None = None, plugins: frozenset[str] = frozenset()
    ) -> None:
        if not root.is_dir():
            raise UserError(f"{root}: no such folder (the workspace must exist)")
        self.root = root.resolve()
        self.limits = limits = limits or Limits()
        self.plugins = plugins
        """The ``plugins:`` modules a strategy of this workspace may name."""
        self.private = self.root / PRIVATE
        self.private.mkdir(exist_ok=True)
        self._running = threading.BoundedSemaphore(limits.max_runs)

    # --- paths -----------------------------------------------------------------------------

    def resolve(self, text: object, argument: str) -> Path:
        """Return the workspace path ``text`` names (it need not exist).

        Raises:
            UserError: Not a relative path inside the workspace (one line naming
                ``argument``).
        """
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{argument}: expected a path inside the workspace, was {text!r}")
        if "\x00" in text:
            raise UserError(f"{argument}: a path holds no NUL character")
        pure = PurePosixPath(text.replace("\\", "/"))
        if pure.is_absolute() or (len(text) > 1 and text[1] == ":"):
            raise UserError(
                f"{argument}: {text!r} is an absolute path; give a path relative to the workspace"
            )
        if ".." in pure.parts:
            raise UserError(f"{argument}: {text!r} climbs out with '..'; stay in the workspace")
        if pure.parts and pure.parts[0] == PRIVATE:
            raise UserError(f"{argument}: {text!r} is the server's own folder, not the agent's")
        path = self.root.joinpath(*pure.parts)
        real = path.resolve()
        if real != self.root and not real.is_relative_to(self.root):
            raise UserError(f"{argument}: {text!r} leads out of the workspace through a link")
        if real.is_relative_to(self.private):
            raise UserError(f"{argument}: {text!r} is the server's own folder, not the agent's")
        return path

    def relative(self, path: Path) -> str:
        """Return ``path`` as the agent names it (relative to the workspace)."""
        return path.resolve().relative_to(self.root).as_posix()

    def strategy_file(self, text: object, argument: str = "path") -> Path:
        """Return an existing strategy file of the workspace, its size checked."""
        path = self.resolve(text, argument)
        if path.suffix not in (".yaml", ".yml"):
            raise UserError(f"{argument}: {text!r} is not a strategy file (.yaml or .yml)")
        if not path.is_file():
            raise UserError(f"{argument}: no strategy file {text!r} in the workspace")
        size = path.stat().st_size
        if size > self.limits.max_file_bytes:
            raise UserError(
                f"{argument}: {text!r} is {size} bytes, over the limit of "
                f"{self.limits.max_file_bytes}"
            )
        return path

    def run_dir(self, text: object, argument: str = "run") -> Path:
        """Return an existing run folder of the workspace."""
        path = self.resolve(text, argument)
        if not path.is_dir():
            raise UserError(f"{argument}: no run folder {text!r} in the workspace")
        return path

    def check_document(self, document: Mapping[str, Any], file: Path) -> None:
        """Refuse a strategy whose paths leave the workspace, whose ``plugins:`` are not
        allowed, or whose ``data.bars`` is over the limit.

        Raises:
            UserError: The first such key, named by its dotted path.
        """
        plugins = document.get("plugins") or []
        for module in plugins if isinstance(plugins, list) else [plugins]:
            if module not in self.plugins:
                allowed = ", ".join(sorted(self.plugins)) or "none"
                raise UserError(
                    f"plugins: {module!r} is not a plugin this workspace allows ({allowed}); "
                    "the operator allows one with --allow-plugin"
                )
        packages = _CLASS_PACKAGES | {module.partition(".")[0] for module in self.plugins}
        for where, path in _class_paths(document, ""):
            package = path.partition(".")[0]
            if package not in packages:
                raise UserError(
                    f"{where}: {path!r} is a class of package {package!r}, which this "
                    f"workspace does not import from ({', '.join(sorted(packages))}); the "
                    "operator allows a plugin's package with --allow-plugin"
                )
        data = document.get("data")
        bars = data.get("bars") if isinstance(data, Mapping) else None
        if isinstance(bars, int) and bars > self.limits.max_bars:
            raise UserError(f"data.bars: {bars} is over the limit of {self.limits.max_bars} bars")
        base = file.parent
        for where, value in _paths(document, ""):
            if PurePosixPath(value).is_absolute():
                raise UserError(f"{where}: {value!r} is an absolute path; strategies stay inside")
            self.resolve(os.path.relpath(base.joinpath(value), self.root), where)

    # --- bounds ----------------------------------------------------------------------------

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `Limits.max_runs` slots for a run, or refuse at once."""
        if not self._running.acquire(blocking=False):
            raise UserError(
                f"busy: {self.limits.max_runs} runs in progress (the limit); try again when "
                "one finishes"
            )
        try:
            yield
        finally:
            self._running.release()

    # --- versions --------------------------------------------------------------------------

    def keep_version(self, path: Path, text: str) -> int:
        """Keep ``text`` as the next version of the strategy at ``path``; return its number."""
        folder = self.private / "versions" / self.relative(path)
        folder.mkdir(parents=True, exist_ok=True)
        number = len(list(folder.glob("*.yaml"))) + 1
        (folder / f"{number:04d}.yaml").write_text(text, encoding="utf-8")
        return number

    def versions(self, path: Path) -> int:
        """Return how many versions of the strategy at ``path`` were kept."""
        folder = self.private / "versions" / self.relative(path)
        return len(list(folder.glob("*.yaml"))) if folder.is_dir() else 0


def content_hash(text: str) -> str:
    """Return the SHA-256 of a strategy's text: the key of its evidence."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _paths(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if isinstance(item, str) and str(key).lower().endswith(_PATH_KEYS):
                yield inner, item
            else:
                yield from _paths(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, f"{where}[{index}]")


def _class_paths(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Yield (dotted key, value) of every import path a class key holds (``model.estimator``,
    a declared estimator's ``class``, a torch ``network``), at any depth."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if isinstance(item, str) and str(key) in _CLASS_KEYS and "." in item:
                yield inner, item
            else:
                yield from _class_paths(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _class_paths(item, f"{where}[{index}]")
