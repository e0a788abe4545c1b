"""The command's dependencies log through its JSON lines: stdlib logging (ccxt, urllib3,
optuna, distributed) and Python's warnings, rendered by structlog's ``ProcessorFormatter``
on the root logger's handler (`tradeloom.engine.logs`)."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tradeloom.cli.main import main
from tradeloom.engine.logs import configure_logging, route_library_logs


@pytest.fixture
def bare_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """The root logger's handlers in a list of their own, restored afterwards with its
    level, structlog's configuration and Python's warnings; a test empties the list
    first (`_bare`), as the ``tradeloom`` command's process has it."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    saved = structlog.get_config()
    yield root
    structlog.configure(**saved)
    logging.captureWarnings(False)


def _bare(root: logging.Logger) -> None:
    root.handlers.clear()  # pytest's capture handlers join the list as the test starts


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line]


def test_a_dependencys_warning_is_a_json_line_and_its_debug_stays_off(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    _bare(bare_root)
    configure_logging("debug", json=True, stdlib=True)
    configure_logging("debug", json=True, stdlib=True)  # again: still one handler
    assert len(bare_root.handlers) == 1
    ccxt = logging.getLogger("ccxt.base.exchange")
    ccxt.warning("rate limited, retrying in %s s", 2)
    ccxt.debug("GET https://api.example/ticker")  # numba's compiler would write thousands
    logging.getLogger("urllib3.connectionpool").error("connection dropped")
    try:
        raise ConnectionError("reset by peer")
    except ConnectionError:
        ccxt.exception("request failed")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("Unverified HTTPS request", UserWarning, stacklevel=1)

    lines = _lines(capsys.readouterr().err)
    assert [(x["logger"], x["level"], x["event"]) for x in lines[:3]] == [
        ("ccxt.base.exchange", "warning", "rate limited, retrying in 2 s"),
        ("urllib3.connectionpool", "error", "connection dropped"),
        ("ccxt.base.exchange", "error", "request failed"),
    ]
    assert "ConnectionError: reset by peer" in str(lines[2]["exception"])
    assert (lines[3]["logger"], lines[3]["level"]) == ("py.warnings", "warning")
    assert "UserWarning: Unverified HTTPS request" in str(lines[3]["event"])
    assert all("timestamp" in x for x in lines) and len(lines) == 4


def test_optunas_own_handler_gives_way(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    _bare(bare_root)
    optuna = pytest.importorskip("optuna")
    library = logging.getLogger("optuna")
    handlers, propagate = list(library.handlers), library.propagate
    try:
        optuna.logging.get_logger("optuna.study")  # optuna adds its stderr handler here
        configure_logging("warning", json=True, stdlib=True)
        route_library_logs("optuna")
        optuna.logging.get_logger("optuna.study").warning("trial 3 failed")
        [line] = _lines(capsys.readouterr().err)
        assert (line["logger"], line["event"]) == ("optuna.study", "trial 3 failed")
    finally:
        library.handlers[:] = handlers
        library.propagate = propagate


def test_a_library_handler_on_an_earlier_stderr_gives_way_too(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    """A handler a library made on the stderr of its time (an earlier notebook cell's, an
    earlier test's, since closed) is removed too; one on stdout is the program's own."""
    import io

    _bare(bare_root)
    library = logging.getLogger("tradeloom_test_library")
    earlier = io.StringIO()
    earlier.close()
    stale, kept = logging.StreamHandler(earlier), logging.StreamHandler(sys.stdout)
    library.addHandler(stale)
    library.addHandler(kept)
    try:
        configure_logging("warning", json=True, stdlib=True)
        route_library_logs("tradeloom_test_library")
        assert library.handlers == [kept]
        library.removeHandler(kept)
        library.warning("still heard")
        [line] = _lines(capsys.readouterr().err)
        assert (line["logger"], line["event"]) == ("tradeloom_test_library", "still heard")
    finally:
        library.handlers.clear()
        library.propagate = True


def test_an_embedding_programs_logging_is_left_alone(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    _bare(bare_root)
    theirs = logging.StreamHandler(sys.stderr)
    theirs.setFormatter(logging.Formatter("theirs: %(message)s"))
    bare_root.addHandler(theirs)
    configure_logging("warning", json=True, stdlib=True)
    assert bare_root.handlers == [theirs]
    logging.getLogger("ccxt").warning("slow")
    assert capsys.readouterr().err == "theirs: slow\n"


def test_the_command_routes_a_plugin_modules_stdlib_warning(
    bare_root: logging.Logger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _bare(bare_root)
    (tmp_path / "noisy_plugin.py").write_text(
        "import logging\nlogging.getLogger('ccxt.base.exchange').warning('exchange is slow')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "noisy_plugin", raising=False)

    assert main(["plugins", "-m", "noisy_plugin"]) == 0

    [line] = _lines(capsys.readouterr().err)
    assert (line["logger"], line["level"], line["event"]) == (
        "ccxt.base.exchange",
        "warning",
        "exchange is slow",
    )
