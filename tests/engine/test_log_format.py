"""A command's logs on stderr: readable lines by default, in a pipe too; JSON lines when
asked (``--log-format json`` or ``TRADELOOM_LOG_FORMAT=json``), for a machine."""

from __future__ import annotations

import json

import pytest

from tradeloom.cli.main import main
from tradeloom.engine.logs import configure_logging


def _log_line(capsys: pytest.CaptureFixture[str], *options: str) -> str:
    # `plugins` loads no data; at info level the CLI logs what compiling cost, if anything:
    # a line of tradeloom's own logger is made here, with the command's configuration
    assert main([*options, "--log-level", "info", "plugins"]) == 0
    import structlog

    capsys.readouterr()
    structlog.get_logger("tradeloom.test").info("retrain", reason="health.0: auc 0.4 < 0.5")
    return capsys.readouterr().err.strip()


@pytest.fixture(autouse=True)
def _restored() -> object:
    yield
    configure_logging("warning", json=True)


def test_the_default_in_a_pipe_is_readable_and_json_is_asked_for(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRADELOOM_LOG_FORMAT", raising=False)
    line = _log_line(capsys)  # capsys' stderr is no terminal: a pipe's
    assert "\x1b[" not in line, "no colour codes in a pipe"
    assert "retrain" in line and "reason=" in line and not line.startswith("{")
    asked = json.loads(_log_line(capsys, "--log-format", "json"))
    assert (asked["event"], asked["reason"]) == ("retrain", "health.0: auc 0.4 < 0.5")
    monkeypatch.setenv("TRADELOOM_LOG_FORMAT", "json")
    assert json.loads(_log_line(capsys))["event"] == "retrain"
    assert not _log_line(capsys, "--log-format", "console").startswith("{")


def test_a_bad_log_format_in_the_environment_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADELOOM_LOG_FORMAT", "yaml")
    assert main(["plugins"]) == 2
    assert capsys.readouterr().err == (
        "TRADELOOM_LOG_FORMAT: must be console or json, was 'yaml'\n"
    )
