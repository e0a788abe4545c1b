"""structlog is imported at the first line that logs and configured as it is imported
(`tradeloom.runtime.lazy.logger`, `tradeloom.engine.logs.configure_logging`).

Each case runs in a fresh interpreter: the test process has structlog imported already,
and configuring it then is the eager path. What a case prints on stdout is what it
checks; the log lines go to stderr as the command writes them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _probe(code: str) -> tuple[list[str], list[dict[str, object]]]:
    """Run ``code`` in a fresh interpreter; return its stdout lines and its JSON log lines."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    return done.stdout.splitlines(), lines


def test_a_line_below_the_level_imports_nothing_and_a_line_above_logs_it_bound() -> None:
    out, logged = _probe(
        """
        import sys
        from tradeloom.engine.logs import configure_logging, writes_debug
        from tradeloom.runtime.lazy import logger

        configure_logging("warning", json=True, stdlib=True)
        log = logger("tradeloom.run").bind(run_id="r1")
        log.info("run_started", bars=3)
        log.debug("detail")
        print("after info", "structlog" in sys.modules, writes_debug())
        log.warning("slow", seconds=2)
        print("after warning", "structlog" in sys.modules, writes_debug())
        """
    )
    assert out == ["after info False False", "after warning True False"]
    assert [{k: v for k, v in line.items() if k != "timestamp"} for line in logged] == [
        {"run_id": "r1", "seconds": 2, "event": "slow", "level": "warning"}
    ]
    assert str(logged[0]["timestamp"]).endswith("Z")


def test_a_plugin_that_imports_structlog_itself_logs_through_the_configuration() -> None:
    """A third-party module's own ``import structlog`` after the command configured
    logging: its lines are the command's JSON lines at the command's level."""
    out, logged = _probe(
        """
        import sys
        from tradeloom.engine.logs import configure_logging

        configure_logging("info", json=True, stdlib=True)
        print("configured", "structlog" in sys.modules)
        import structlog

        structlog.get_logger("tradeloom_example").info("hello", answer=42)
        structlog.get_logger("tradeloom_example").debug("not shown")
        """
    )
    assert out == ["configured False"]
    assert [(line["event"], line["level"], line.get("answer")) for line in logged] == [
        ("hello", "info", 42)
    ]


def test_a_stdlib_warning_before_structlog_is_imported_is_a_json_line() -> None:
    out, logged = _probe(
        """
        import logging, sys, warnings
        from tradeloom.engine.logs import configure_logging

        configure_logging("warning", json=True, stdlib=True)
        logging.getLogger("ccxt.base.exchange").info("not shown")
        print("quiet", "structlog" in sys.modules)
        warnings.warn("Unverified HTTPS request", UserWarning, stacklevel=1)
        logging.getLogger("ccxt.base.exchange").warning("rate limited, retrying in %s s", 2)
        """
    )
    assert out == ["quiet False"]
    assert [(line["event"], line["level"], line["logger"]) for line in logged[1:]] == [
        ("rate limited, retrying in 2 s", "warning", "ccxt.base.exchange")
    ]
    assert "Unverified HTTPS request" in str(logged[0]["event"])
    assert logged[0]["logger"] == "py.warnings"


def test_debug_is_known_without_importing_structlog() -> None:
    out, _ = _probe(
        """
        import sys
        from tradeloom.engine.logs import configure_logging, writes_debug

        configure_logging("debug", json=True)
        print(writes_debug(), "structlog" in sys.modules)
        """
    )
    assert out == ["True False"]
