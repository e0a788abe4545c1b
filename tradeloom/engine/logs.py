"""structlog set-up: JSON lines by default, a readable renderer on a terminal.

The ``tradeloom`` command routes its dependencies' stdlib logging (ccxt, urllib3, optuna,
Dask's distributed) and Python's warnings through the same renderer (``stdlib=True``):
structlog's ``ProcessorFormatter`` on a handler of the root logger, so that a ccxt
warning is a JSON line like tradeloom's own, with its ``logger`` name. Their records
at ``warning`` and above: their debug lines (numba's compiler writes thousands per
kernel) stay off whatever ``--log-level`` says. A process whose root logger already
has a handler (a program that embeds tradeloom and set up its logging) is left alone.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

import structlog

from tradeloom.errors import UserError
from tradeloom.redaction import (
    install_excepthook,
    install_record_redaction,
    redact_processor,
)

__all__ = ["configure_logging", "open_log_file", "route_library_logs"]


def configure_logging(
    level: str = "info",
    *,
    json: bool | None = None,
    stream: TextIO | None = None,
    stdlib: bool = False,
) -> None:
    """Send structured logs to stderr (or to ``stream``).

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        json: JSON lines (True) or the console renderer (False); by default JSON
            unless stderr is a terminal.
        stream: Where to write instead of stderr (a log file: always JSON lines).
        stdlib: Route stdlib logging's warnings and errors, and Python's warnings,
            through the same renderer to the same place (the command's own process;
            not where the root logger has another handler).

    Secrets are redacted (`tradeloom.redaction`) from these logs, from stdlib logging
    (ccxt's and urllib3's debug lines) and from uncaught exceptions' tracebacks.
    """
    install_record_redaction()
    install_excepthook()
    use_json = not sys.stderr.isatty() if json is None else json
    if stream is not None:
        use_json = True
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            # Last before rendering: every field, the traceback text included.
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # The stderr of the moment, not the one at configuration: a caller (a test, an
        # embedding program) may swap sys.stderr and close the old one.
        logger_factory=_current_stderr if stream is None else structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    if stdlib:
        _route_stdlib(renderer, level, stream)


class _RootHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler that renders stdlib records as structlog's events."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__()
        self._fixed = stream

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        # the stderr of the moment, as structlog's logger factory (a test swaps it)
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # StreamHandler.__init__ sets it; the property decides


def _route_stdlib(renderer: structlog.types.Processor, level: str, stream: TextIO | None) -> None:
    root = logging.getLogger()
    if any(not isinstance(h, _RootHandler) for h in root.handlers):
        return  # an embedding program's own logging set-up wins
    handler = _RootHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_processor,
                renderer,
            ],
        )
    )
    for old in [h for h in root.handlers if isinstance(h, _RootHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    wanted = logging.getLevelNamesMapping()[level.upper()]
    root.setLevel(max(wanted, logging.WARNING))
    logging.captureWarnings(True)
    route_library_logs(*_LIBRARIES)


_LIBRARIES = ("optuna", "distributed")
"""Libraries that give their logger a stderr handler of their own and stop propagation."""


def route_library_logs(*names: str) -> None:
    """Let the loggers ``names`` reach the root logger's handler, when the command routes
    stdlib logging (`configure_logging` with ``stdlib``): their own stderr handlers are
    removed (plain stream handlers on any stream but stdout: the stderr a library bound
    may be an earlier one) and their records propagate. Call it after importing such a
    library (optuna adds its handler at its first logger, distributed at import)."""
    if not any(isinstance(h, _RootHandler) for h in logging.getLogger().handlers):
        return
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            # the library's console handler: a plain stream handler on the stderr it saw
            # when it was made (in a notebook or a test, an earlier, maybe closed one)
            if type(handler) is logging.StreamHandler and handler.stream not in (
                sys.stdout,
                sys.__stdout__,
            ):
                logger.removeHandler(handler)
        logger.propagate = True


def _current_stderr(*args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def open_log_file(path: Path) -> TextIO:
    """Open ``path`` to append log lines (``--log-file``), line-buffered.

    Raises:
        UserError: It cannot be opened (a folder, a missing parent, no permission).
    """
    try:
        return path.open("a", encoding="utf-8", buffering=1)
    except OSError as exc:
        raise UserError(f"--log-file {path}: cannot open it: {exc.strerror or exc}") from None
