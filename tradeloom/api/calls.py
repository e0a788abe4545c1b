"""What every call of the Python API shares: a user's mistake raised as one `UserError`
without the engine's frames below it, the command's logs and progress bars, and an
argument read as a path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from tradeloom.errors import UserError

__all__ = ["as_path", "kind_of", "progress_and_logs", "user_errors"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def user_errors(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Raise a user's mistake from the API's call, without the engine's frames below it."""

    @wraps(function)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return function(*args, **kwargs)
        except UserError as exc:
            raise exc.with_traceback(None) from None

    return call


@contextmanager
def progress_and_logs(quiet: bool) -> Iterator[None]:
    """Show progress bars (on a terminal, in a notebook) unless ``quiet``; log warnings.

    The engine's warnings and errors go to stderr, its ``info`` lines nowhere: a
    notebook's cell shows a backtest's progress bar, not the ~30 lines ``tradeloom run``
    logs. A caller who configured structlog gets its own configuration instead (unless
    ``quiet``: warnings only). Either way it is as it was afterwards.
    """
    import structlog

    from tradeloom.engine.logs import configure_logging
    from tradeloom.runtime import progress

    progress.enable(quiet=quiet)
    configured = structlog.is_configured()
    if configured and not quiet:
        yield
        return
    saved = structlog.get_config()
    configure_logging("warning")
    try:
        yield
    finally:
        if configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


def kind_of(value: Any) -> str:
    """Return what ``value`` is, for a message: its type's name."""
    return type(value).__name__


def as_path(value: Any, argument: str, what: str) -> Path:
    """Return ``argument``'s ``value`` as a path (text, bytes or a path-like object).

    Raises:
        UserError: It is none of these, or empty.
    """
    try:
        text = os.fsdecode(value)
    except TypeError:
        raise UserError(f"{argument}: expected {what}'s path, was {kind_of(value)}") from None
    if not text.strip():
        raise UserError(f"{argument}: expected {what}'s path, was empty (use . for here)")
    if "\0" in text:
        raise UserError(f"{argument}: a path holds no NUL character, was {text!r}")
    return Path(text).expanduser()
