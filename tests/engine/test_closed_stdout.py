"""A reader of stdout that goes away (`| head`, a lost terminal) stops output, never work."""

from __future__ import annotations

import subprocess
import sys


def _run_with_stdout_closed(code: str, *args: str) -> tuple[int, str]:
    """Run ``code`` in a child whose stdout pipe has no reader by the time it writes."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the child is still importing: its first write finds no reader
    err = child.stderr.read()
    return child.wait(timeout=120), err


def test_the_per_bar_lines_stop_and_the_run_goes_on() -> None:
    code = (
        "import sys\n"
        "from tradeloom.cli.launch import _BarLines\n"
        "lines = _BarLines()\n"
        "for bar in range(2000):\n"
        "    lines(f'bar {bar} ' + 'x' * 200)\n"
        "assert lines.stopped\n"
        "print('traded every bar', file=sys.stderr)\n"
    )
    code_, err = _run_with_stdout_closed(code)
    assert code_ == 0, err
    assert "traded every bar" in err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_a_command_piped_into_a_closed_reader_exits_quietly() -> None:
    code = "from tradeloom.cli.main import main\nraise SystemExit(main(['plugins']))\n"
    code_, err = _run_with_stdout_closed(code)
    assert (code_, err) == (0, "")


def test_the_command_piped_into_a_closed_reader_exits_quietly_too() -> None:
    """The command's own exit (`tradeloom.cli.leave`) flushes into the closed pipe."""
    code = "import sys\nfrom tradeloom.cli.main import console\nconsole()\n"
    for args in (("plugins",), ("--help",), ("schema",)):
        assert _run_with_stdout_closed(code, *args) == (0, ""), args
