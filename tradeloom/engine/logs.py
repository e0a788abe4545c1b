"""structlog set-up: JSON lines by default, a readable renderer on a terminal."""

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

__all__ = ["configure_logging", "open_log_file"]


def configure_logging(
    level: str = "info", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Send structured logs to stderr (or to ``stream``).

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        json: JSON lines (True) or the console renderer (False); by default JSON
            unless stderr is a terminal.
        stream: Where to write instead of stderr (a log file: always JSON lines).

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
