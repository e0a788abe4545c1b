"""The journal's kinds declared once: who reads each, and the one dispatch each reader
takes its kinds from (`tradeloom.journal.events.base`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tradeloom.journal.events import (
    KINDS,
    READERS,
    CanaryPassed,
    FillEvent,
    RunFailed,
    dispatch,
    kinds_read_by,
)


def test_every_kind_is_read_by_known_readers_only() -> None:
    unknown = {name: cls.READ_BY - set(READERS) for name, cls in KINDS.items()}

    assert {name: left for name, left in unknown.items() if left} == {}


def test_kinds_read_by_keeps_the_declarations_order_and_takes_any_reader() -> None:
    order = list(KINDS)
    errors = kinds_read_by("status_error")
    either = kinds_read_by("status_error", "lifecycle")

    assert list(errors) == sorted(errors, key=order.index)
    assert "run_failed" in errors and "canary_passed" not in errors
    assert set(either) == set(errors) | set(kinds_read_by("lifecycle"))


def test_a_dispatch_names_the_kinds_it_leaves_unhandled_and_those_it_should_not_handle() -> None:
    handlers = {cls: cls.KIND for cls in KINDS.values() if "status_error" in cls.READ_BY}
    del handlers[RunFailed]
    handlers[FillEvent] = "fill"

    with pytest.raises(ValueError, match=r"^a dispatch over the journal's kinds read by "):
        dispatch(handlers, "status_error")
    with pytest.raises(ValueError) as raised:
        dispatch(handlers, "status_error")
    assert "run_failed unhandled, fill handled but not declared read by it" in str(raised.value)


def test_a_complete_dispatch_is_by_kind_name_in_the_declarations_order() -> None:
    handlers = {cls: cls.__name__ for cls in KINDS.values() if "lifecycle" in cls.READ_BY}

    table = dispatch(handlers, "lifecycle")

    assert list(table) == list(kinds_read_by("lifecycle"))
    assert table["canary_passed"] == CanaryPassed.__name__


def test_a_family_imported_first_registers_every_kind_in_the_tables_order() -> None:
    # the journal's tables are made in `KINDS`' order: it may not depend on which module
    # of the events a process imports first
    code = (
        "import tradeloom.journal.events.lifecycle\n"
        "from tradeloom.journal.events import KINDS\n"
        "print(' '.join(KINDS))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.split() == list(KINDS)
    assert list(KINDS)[:2] == ["run_started", "run_finished"]
    assert list(KINDS)[-3:] == ["document_unscored", "document_refused", "control_refused"]
