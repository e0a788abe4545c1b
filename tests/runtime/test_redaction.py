"""The redaction layer: registered secrets and signatures never reach logs or tracebacks."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.engine.logs import configure_logging
from tradeloom.runtime.redaction import (
    guard_client,
    install_record_redaction,
    redact,
    redact_processor,
    redact_recurring,
    redact_text,
    register_secret,
)
from tradeloom.schemas.secrets import Secret

KEY = "unitKEY0canary/+=9Zq"
SECRET = "unitSECRET1canary&x"


@pytest.fixture(autouse=True)
def _registered() -> None:
    register_secret(KEY)
    register_secret(SECRET)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    factory = logging.getLogRecordFactory()
    hooks = (sys.excepthook, threading.excepthook)
    yield
    structlog.configure(**saved)
    logging.setLogRecordFactory(factory)
    sys.excepthook, threading.excepthook = hooks


def test_text_loses_the_value_and_its_wire_forms() -> None:
    text = f"key={KEY} quoted={quote(KEY, safe='')} json={json.dumps(SECRET)}"
    assert redact_text(text) == 'key=*** quoted=*** json="***"'


def test_signatures_and_key_headers_are_cut_whatever_their_value() -> None:
    url = "GET http://x/api/v3/account?timestamp=1&recvWindow=5000&signature=ab12cd34 H"
    headers = "{'X-MBX-APIKEY': 'someotherkey', 'Accept': 'json'}"
    assert (
        redact_text(url)
        == "GET http://x/api/v3/account?timestamp=1&recvWindow=5000&signature=*** H"
    )
    assert redact_text(headers) == "{'X-MBX-APIKEY': '***', 'Accept': 'json'}"
    assert redact_text('{"signature": "ff00"}') == '{"signature": "***"}'
    # Prose about signatures is not a value.
    assert redact_text("Signature for this request is not valid.") == (
        "Signature for this request is not valid."
    )


def test_nested_structures_sensitive_keys_and_objects() -> None:
    class Holder:
        def __repr__(self) -> str:
            return f"Holder({KEY})"

    event = {
        "event": "sent",
        "request": {"headers": {"X-MBX-APIKEY": "k-unregistered"}, "args": [KEY, (SECRET, 3)]},
        "apiKey": "anything",
        "count": 2,
        "holder": Holder(),
        "ok": None,
    }
    assert redact(event) == {
        "event": "sent",
        "request": {"headers": {"X-MBX-APIKEY": "***"}, "args": ["***", ("***", 3)]},
        "apiKey": "***",
        "count": 2,
        "holder": "Holder(***)",
        "ok": None,
    }


def test_a_secret_registers_itself_when_made() -> None:
    value = "madeBySecret-9f8e7d"
    assert redact_text(value) == value
    Secret(value, "SOME_KEY")
    assert redact_text(f"x {value} y") == "x *** y"


def test_a_recurring_text_is_redacted_under_the_secrets_registered_since() -> None:
    # the journal's texts are remembered once redacted; a secret registered later (a
    # hot reload's) is cut from a text remembered before it, and so is one whose
    # registry is put back as it was (tests/conftest.py's fixture)
    value = "registeredLater-7a6b"
    text = f"reason {value}"
    assert redact_recurring(text) == redact_recurring(text) == text
    Secret(value, "SOME_KEY")
    assert redact_recurring(text) == "reason ***"
    assert redact_recurring(f"key={KEY}") == "key=***"
    assert redact_recurring("x" * 200 + KEY) == "x" * 200 + "***"  # too long to keep


def test_short_values_are_not_registered() -> None:
    register_secret("ab")
    assert redact_text("a bab") == "a bab"


def test_processor_redacts_exception_text_rendered_by_structlog(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("debug", json=True)
    log = structlog.get_logger("t")
    try:
        raise RuntimeError(f"refused key {KEY} at ?a=1&signature=deadbeef")
    except RuntimeError:
        log.exception("failed", detail={"nested": [SECRET]})
    line = json.loads(capsys.readouterr().err)
    assert KEY not in line["exception"] and "deadbeef" not in line["exception"]
    assert "RuntimeError: refused key *** at ?a=1&signature=***" in line["exception"]
    assert line["detail"] == {"nested": ["***"]}


def test_without_the_processor_the_secret_would_leak(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same chain as configure_logging's, minus redaction: proves the processor is
    # what keeps the value out, not the renderer.
    configure_logging("debug", json=True)
    processors = [p for p in structlog.get_config()["processors"] if p is not redact_processor]
    assert len(processors) == len(structlog.get_config()["processors"]) - 1
    structlog.configure(processors=processors)
    structlog.get_logger("t").info("sent", key=KEY)
    assert KEY in capsys.readouterr().err


def test_stdlib_records_are_redacted_when_made(restore_logging: None) -> None:
    install_record_redaction()
    install_record_redaction()  # idempotent: one wrapper
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("ccxt.base.exchange")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug(
            "%s %s, Request: %s %s", "GET", "http://x?signature=99aa", {"X-MBX-APIKEY": KEY}, None
        )
        try:
            raise ValueError(SECRET)
        except ValueError:
            logger.exception("boom %s", SECRET)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    text = stream.getvalue()
    assert KEY not in text and SECRET not in text and "99aa" not in text
    assert (
        "ccxt.base.exchange GET http://x?signature=***, Request: {'X-MBX-APIKEY': '***'} None"
        in text
    )
    assert "ValueError: ***" in text


def test_uncaught_exceptions_print_redacted(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("debug", json=True)
    try:
        raise KeyError(KEY)
    except KeyError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    err = capsys.readouterr().err
    assert KEY not in err
    assert "KeyError: '***'" in err


def test_guarded_client_logs_verbose_output_instead_of_printing(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    class Client:
        id = "binance"

        def log(self, *args: object) -> None:
            print(*args)

    configure_logging("debug", json=True)
    client = guard_client(Client())
    client.log("\nfetch Request:", "binance", "GET", "http://x?signature=1f", {"X-MBX-APIKEY": KEY})
    out, err = capsys.readouterr()
    assert out == ""
    assert json.loads(err)["message"] == (
        "fetch Request: binance GET http://x?signature=*** {'X-MBX-APIKEY': '***'}"
    )


_WIRE_KEYS = st.sampled_from(["signature", "SIGNATURE", "Signature", "x-mbx-apikey", "other"])
_DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_WIRE_KEYS, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=examples(100))
@given(document=_DOCUMENTS)
def test_a_redacted_json_document_is_still_json(document: object) -> None:
    """The journal stores JSON columns as redacted text: a wire word's value is replaced
    and the text stays JSON (``{"signature": null}`` became ``***``, which no reader
    could decode)."""
    text = json.dumps(document, separators=(",", ":"))
    redacted = redact_text(text)
    json.loads(redacted)
    json.loads(redact_text(json.dumps(document)))  # with spaces after the colons
