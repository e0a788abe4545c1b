"""Progress bars for long work: rich, on stderr, only on a terminal (or in a notebook).

Silent unless the command line or the Python API turned them on (`enable`) and stderr is
a terminal, or the process a Jupyter kernel (`in_jupyter`), not under CI (the ``CI``
environment variable) and not ``TERM=dumb``; ``--quiet`` (``quiet=True``) keeps them
off. Code that does long work wraps it in `task` and calls `Task.advance`; when bars
are off, that costs one attribute lookup. Nested tasks share one display (rich allows one
live display at a time), each on its own line, removed when it finishes.

The first run after an install compiles the numba kernels: numba announces each
compilation that its cache could not serve, and a spinner names the kernel and counts
the seconds while it lasts (`tradeloom warm` compiles them ahead, for an image).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Task", "active", "enable", "in_jupyter", "task"]

_progress: Any = None  # the shared rich Progress while a task is shown
_depth = 0
_enabled = False


class Task:
    """A line of the display: `advance` it as the work goes (no-op when bars are off)."""

    def __init__(self, progress: Any = None, task_id: Any = None) -> None:
        self._progress = progress
        self._id = task_id

    def advance(self, steps: float = 1.0) -> None:
        """Count ``steps`` more units of work done."""
        if self._progress is not None:
            self._progress.advance(self._id, steps)

    def describe(self, description: str) -> None:
        """Change the text of the line."""
        if self._progress is not None:
            self._progress.update(self._id, description=description)


_NULL = Task()


def wanted(quiet: bool = False) -> bool:
    """Return whether bars may be shown: not quiet, not CI, not dumb, and stderr a terminal
    or a Jupyter notebook that can draw them (`in_jupyter`)."""
    if quiet or os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stderr.isatty() or in_jupyter()


def in_jupyter() -> bool:
    """Return whether this process is a Jupyter kernel whose page rich can draw live bars in
    (with ipywidgets: without it, rich warns and draws nothing)."""
    ipython = sys.modules.get("IPython")  # a kernel has imported it; nothing to import here
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False  # the terminal IPython has a terminal; no shell: a plain script
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


def enable(quiet: bool = False) -> bool:
    """Turn the bars on when `wanted`; return whether they are on."""
    global _enabled
    _enabled = wanted(quiet)
    if _enabled:
        _watch_compilation()
    return _enabled


def active() -> bool:
    """Return whether bars are shown."""
    return _enabled


@contextmanager
def task(description: str, total: float | None = None) -> Iterator[Task]:
    """Show a line while the block runs: a bar with n of N and the time left when ``total``
    is known, a spinner otherwise."""
    global _progress, _depth
    if not _enabled:
        yield _NULL
        return
    if _progress is None:
        _progress = _new_progress()
        _progress.start()
    _depth += 1
    task_id = _progress.add_task(description, total=total)
    try:
        yield Task(_progress, task_id)
    finally:
        _progress.remove_task(task_id)
        _depth -= 1
        if _depth == 0:
            _progress.stop()
            _progress = None


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _new_progress() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console(),
        transient=True,
    )


_compiling: list[Any] = []


def _watch_compilation() -> None:
    from numba.core import event

    class _Compiling(event.Listener):
        # numba broadcasts "numba:compile" only when its cache cannot serve a kernel; a
        # kernel compiles the kernels it calls inside its own event
        def on_start(self, ev: event.Event) -> None:
            if not _compiling:
                name = getattr(ev.data.get("dispatcher"), "__name__", "")
                _compiling.append(task(f"compiling kernels, first run only: {name}"))
                _compiling[0].__enter__()
            else:
                _compiling.append(None)

        def on_end(self, ev: event.Event) -> None:
            if _compiling:
                entered = _compiling.pop()
                if entered is not None:
                    entered.__exit__(None, None, None)

    if not getattr(_watch_compilation, "installed", False):
        event.register("numba:compile", _Compiling())
        _watch_compilation.installed = True  # type: ignore[attr-defined]
