"""Keep secrets out of every line tradeloom writes: logs, tracebacks, the journal.

Every `tradeloom.schemas.secrets.Secret` registers its value here when it is made, so
the registry holds the live secrets of the process. `redact_text` replaces each
registered value, and the forms it takes on the wire (URL-encoded, JSON-escaped), with
``***``; it also cuts the value out of a request signature (``signature=...``, an HMAC
of the secret) and of an API key header (``X-MBX-APIKEY``) whatever the key is.

The value is redacted at each way out:

- structlog: `redact_processor`, in the chain `tradeloom.engine.logs.configure_logging`
  sets up, after exceptions are formatted: every field, nested dicts and lists, and
  the traceback text.
- stdlib logging (ccxt logs every request and response at DEBUG on
  ``ccxt.base.exchange``, urllib3 every URL): `install_record_redaction` wraps the
  log record factory, so each record is redacted when it is made, whatever logger
  made it and whichever handler (the user's, ``logging.lastResort``) writes it.
- ccxt's ``verbose`` mode, which ``print``s requests and responses to stdout through
  ``Exchange.log``: `guard_client` routes that through the structlog logger
  ``tradeloom.ccxt`` instead, redacted.
- uncaught exceptions: `install_excepthook` redacts the traceback printed.
- the journal redacts every text it writes (`tradeloom.journal.sqlite`).

A value shorter than `MIN_SECRET_LENGTH` characters is not registered: replacing
every ``a`` of every log line would destroy the logs and hide nothing.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from structlog.typing import EventDict

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "guard_client",
    "install_excepthook",
    "install_record_redaction",
    "redact",
    "redact_processor",
    "redact_record",
    "redact_recurring",
    "redact_text",
    "register_secret",
]

REDACTED = "***"
"""What a secret is replaced with."""

MIN_SECRET_LENGTH = 4
"""Shorter values are not registered (see the module docstring)."""

_SENSITIVE_KEYS = frozenset(
    {"apikey", "api_key", "secret", "password", "signature", "x-mbx-apikey", "privatekey"}
)
"""Field names (lower case) whose string value is replaced whatever it is."""

# A signature parameter or an API key header, in a URL, a header dict's repr or JSON:
# ``signature=ab12``, ``'X-MBX-APIKEY': 'k'``, ``"signature": "ab12"``.
_WIRE = re.compile(
    r"(?i)\b(signature|x-mbx-apikey)(['\"]?\s*[:=]\s*['\"]?)((?:\\.|[^'\"\s&,;}\]\\])+)"
)
"""A value runs to a quote, a space or a separator; a backslash escape (``\\"`` in JSON)
is part of it, or its redaction ends inside the escape and breaks the text."""

_lock = threading.Lock()
_forms: set[str] = set()
_pattern: re.Pattern[str] | None = None
_log = logger("tradeloom.ccxt")

_recurring: dict[str, str] = {}
"""Short texts `redact_recurring` redacted, under the pattern `_recurring_under`."""
_recurring_under: re.Pattern[str] | None = None
_RECURRING_LENGTH = 128
"""Longer texts are not remembered (a journal's recurring ones are symbols and codes)."""
_RECURRING_ENTRIES = 4096
"""Remembered at most; emptied when full."""


def register_secret(value: str) -> None:
    """Redact ``value`` (and its URL-encoded and JSON-escaped forms) from now on."""
    if len(value) < MIN_SECRET_LENGTH:
        return
    global _pattern
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    with _lock:
        if forms <= _forms:
            return
        _forms.update(forms)
        # Longest first, so a form containing another is replaced whole.
        ordered = sorted(_forms, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(form) for form in ordered))


def redact_text(text: str) -> str:
    """Return ``text`` with every registered secret and signature replaced by ``***``."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    lowered = text.lower()
    if "signature" not in lowered and "x-mbx-apikey" not in lowered:
        return text  # _WIRE cannot match: skip its (slow, case-blind) scan
    return _WIRE.sub(_wire_value, text)


_LITERALS = frozenset({"null", "true", "false", "None", "True", "False"})
"""Values after a wire word that hold no secret (JSON's and Python's literals)."""


def redact_recurring(text: str) -> str:
    """Return `redact_text` of ``text``, remembered for a short text while no secret is
    registered: a journal writes the same symbol, code and reason at every bar.

    A text is remembered under the registry's pattern in force when it was redacted
    (under `_lock`, which a registration holds); a registration since, or a pattern put
    back (the tests'), empties what was remembered at the next call.
    """
    global _recurring_under
    pattern = _pattern
    known = _recurring
    if _recurring_under is pattern:
        done = known.get(text)
        if done is not None:
            return done
    done = redact_text(text)
    if len(text) <= _RECURRING_LENGTH:
        with _lock:
            if _pattern is pattern:  # else: a secret was registered meanwhile
                if _recurring_under is not pattern or len(known) >= _RECURRING_ENTRIES:
                    known.clear()
                    _recurring_under = pattern
                known[text] = done
    return done


def _wire_value(match: re.Match[str]) -> str:
    """Redact the value after a wire word so that the text stays what it was: a value
    after a colon with no quote of its own (a number in JSON, ``{"signature":12}``)
    becomes a quoted ``"***"``; a literal (``{"signature":null}``) is no secret and
    stays, and so does the opening of a list or mapping (its texts are redacted as texts).
    A bare ``***`` there made a journaled JSON document that could not be read back."""
    word, separator, value = match.groups()
    if value in _LITERALS or value[0] in "[{(":  # a literal, or a structure opening
        return match.group(0)
    if ":" in separator and not separator.rstrip().endswith(("'", '"')):
        return f'{word}{separator}"{REDACTED}"'
    return f"{word}{separator}{REDACTED}"


def redact(value: Any) -> Any:
    """Return ``value`` with secrets redacted, through dicts, lists, tuples and sets.

    A string of a sensitive key (``apiKey``, ``secret``, ``signature``...) is replaced
    whole. Any other object whose ``repr`` holds a secret becomes its redacted repr.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: _redact_item(key, item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(redact(item) for item in value)
    if value is None or isinstance(value, bool | int | float):
        return value
    shown = repr(value)
    cleaned = redact_text(shown)
    return value if cleaned == shown else cleaned


def redact_processor(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Redact every field of a structlog event (put it after ``format_exc_info``)."""
    return {key: _redact_item(key, item) for key, item in event_dict.items()}


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a stdlib log record in place: its message, traceback and stack; return it."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not fit the format: keep both, redacted
        message = f"{record.msg} {redact(record.args)!r}"
    record.msg, record.args = redact_text(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


def install_record_redaction() -> None:
    """Make every stdlib log record redacted when it is made (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_tradeloom_redacts", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(factory(*args, **kwargs))

    make_record._tradeloom_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)


def install_excepthook() -> None:
    """Print uncaught exceptions, of the main thread and others, redacted (idempotent)."""
    if not getattr(sys.excepthook, "_tradeloom_redacts", False):
        sys.excepthook = _excepthook
    if not getattr(threading.excepthook, "_tradeloom_redacts", False):
        threading.excepthook = _thread_excepthook


def guard_client(client: Any) -> Any:
    """Route a ccxt client's ``verbose`` output through redacted logs; return the client.

    ccxt prints each request (URL with its signature, headers with the API key) and
    response with ``print`` when ``client.verbose`` is set, through ``client.log``,
    which its websocket clients share. That output becomes ``ccxt_verbose`` debug
    events of the ``tradeloom.ccxt`` logger, redacted.
    """
    exchange_id = str(getattr(client, "id", ""))

    def log(*args: object) -> None:
        text = " ".join(str(arg) for arg in args).strip()
        _log.debug("ccxt_verbose", exchange=exchange_id, message=redact_text(text))

    client.log = log
    return client


def _redact_item(key: object, item: Any) -> Any:
    if isinstance(key, str) and key.lower() in _SENSITIVE_KEYS and isinstance(item, str) and item:
        return REDACTED
    return redact(item)


def _write_exception(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None, where: str
) -> None:
    text = "".join(traceback.format_exception(kind, error, tb))
    stream = sys.stderr
    if stream is not None:
        stream.write(where + redact_text(text))
        stream.flush()


def _excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    _write_exception(kind, error, tb, "")


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "unknown"
    error = args.exc_value if args.exc_value is not None else args.exc_type()
    _write_exception(args.exc_type, error, args.exc_traceback, f"Exception in thread {name}:\n")


_excepthook._tradeloom_redacts = True  # type: ignore[attr-defined]
_thread_excepthook._tradeloom_redacts = True  # type: ignore[attr-defined]
