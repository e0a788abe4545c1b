"""structlog set-up: JSON lines by default, a readable renderer on a terminal.

The ``tradeloom`` command routes its dependencies' stdlib logging (ccxt, urllib3, optuna,
Dask's distributed) and Python's warnings through the same renderer (``stdlib=True``):
structlog's ``ProcessorFormatter`` on a handler of the root logger, so that a ccxt
warning is a JSON line like tradeloom's own, with its ``logger`` name. Their records
at ``warning`` and above: their debug lines (numba's compiler writes thousands per
kernel) stay off whatever ``--log-level`` says. A process whose root logger already
has a handler (a program that embeds tradeloom and set up its logging) is left alone.

structlog is configured when it is imported, not before: most commands log nothing at
``--log-level warning``, and importing structlog (with the rich tracebacks and asyncio
it imports) took 80 ms of CPU of each (`tradeloom.runtime.lazy.logger`). `configure_logging`
configures it at once where it is imported already; otherwise it is configured as it
is imported, by whatever imports it first (a module's first log line, a third-party
plugin's ``import structlog``), before any of its code can log; the root logger's
handler makes its formatter at its first record.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TextIO

from tradeloom.errors import UserError
from tradeloom.runtime.lazy import wait_for_structlog
from tradeloom.runtime.redaction import (
    install_excepthook,
    install_record_redaction,
    redact_processor,
)

if TYPE_CHECKING:
    import structlog

__all__ = ["configure_logging", "open_log_file", "route_library_logs", "writes_debug"]


@dataclass(frozen=True)
class _Settings:
    """What `configure_logging` was asked for: the level, the renderer, the stream."""

    level: str
    json: bool
    stream: TextIO | None


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

    Secrets are redacted (`tradeloom.runtime.redaction`) from these logs, from stdlib logging
    (ccxt's and urllib3's debug lines) and from uncaught exceptions' tracebacks.
    structlog is configured now if it is imported, or else as it is imported.
    """
    install_record_redaction()
    install_excepthook()
    use_json = not sys.stderr.isatty() if json is None else json
    settings = _Settings(level, use_json or stream is not None, stream)
    _ON_IMPORT.configure(settings)
    if stdlib:
        _route_stdlib(settings)


def writes_debug() -> bool:
    """Return whether structlog, as configured now, writes debug lines: as the
    configuration waiting for structlog's import says, without importing it."""
    waiting = _ON_IMPORT.waiting()
    if waiting is not None:
        return logging.getLevelNamesMapping()[waiting.level.upper()] <= logging.DEBUG
    if "structlog" not in sys.modules:
        return True  # structlog unconfigured writes every level
    import structlog

    try:
        return bool(structlog.get_logger("tradeloom.run").is_enabled_for(logging.DEBUG))
    except AttributeError:  # a wrapper class without levels
        return True


def _renderer(settings: _Settings) -> structlog.types.Processor:
    import structlog

    if settings.json:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer()


def _configure_structlog(settings: _Settings) -> None:
    import structlog

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            # Last before rendering: every field, the traceback text included.
            redact_processor,
            _renderer(settings),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[settings.level.upper()]
        ),
        # The stderr of the moment, not the one at configuration: a caller (a test, an
        # embedding program) may swap sys.stderr and close the old one.
        logger_factory=(
            _current_stderr
            if settings.stream is None
            else structlog.PrintLoggerFactory(settings.stream)
        ),
        cache_logger_on_first_use=False,
    )


class _ConfigureOnImport(importlib.abc.MetaPathFinder):
    """Configures structlog with the settings last asked for, as structlog is imported.

    It sits first in ``sys.meta_path`` while a configuration waits: when ``structlog``
    is imported, it finds the module's spec through the finders after it and has the
    loader configure structlog once the module has run, before the import returns to
    the code that asked for it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: _Settings | None = None

    def configure(self, settings: _Settings) -> None:
        """Configure structlog with ``settings`` now, or as it is imported."""
        with self._lock:
            if "structlog" not in sys.modules:
                self._pending = settings
                wait_for_structlog(logging.getLevelNamesMapping()[settings.level.upper()])
                if self not in sys.meta_path:
                    sys.meta_path.insert(0, self)
                return
            self._pending = None
            wait_for_structlog(None)
        _configure_structlog(settings)

    def waiting(self) -> _Settings | None:
        """Return the settings that wait for structlog's import (None: none wait)."""
        return self._pending

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "structlog" or self._pending is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            self._imported()

        # the loader is this spec's own (a finder makes one per spec)
        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def _imported(self) -> None:
        with self._lock:
            settings, self._pending = self._pending, None
            wait_for_structlog(None)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
        if settings is not None:
            _configure_structlog(settings)


_ON_IMPORT = _ConfigureOnImport()


class _RootHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler that renders stdlib records as structlog's events.

    Its formatter (structlog's ``ProcessorFormatter``) is made at its first record:
    a command that routes stdlib logging but is told nothing imports no structlog.
    """

    def __init__(self, stream: TextIO | None, formatter: Callable[[], logging.Formatter]) -> None:
        super().__init__()
        self._fixed = stream
        self._make_formatter = formatter

    def format(self, record: logging.LogRecord) -> str:
        if self.formatter is None:
            self.setFormatter(self._make_formatter())
        return super().format(record)

    @property
    def stream(self) -> TextIO:
        # the stderr of the moment, as structlog's logger factory (a test swaps it)
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # StreamHandler.__init__ sets it; the property decides


def _route_stdlib(settings: _Settings) -> None:
    root = logging.getLogger()
    if any(not isinstance(h, _RootHandler) for h in root.handlers):
        return  # an embedding program's own logging set-up wins
    handler = _RootHandler(settings.stream, lambda: _processor_formatter(settings))
    for old in [h for h in root.handlers if isinstance(h, _RootHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    wanted = logging.getLevelNamesMapping()[settings.level.upper()]
    root.setLevel(max(wanted, logging.WARNING))
    logging.captureWarnings(True)
    route_library_logs(*_LIBRARIES)


def _processor_formatter(settings: _Settings) -> logging.Formatter:
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_processor,
            _renderer(settings),
        ],
    )


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
    import structlog

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
