"""The ``tradeloom`` command catches SIGTERM before it imports anything heavy.

A paper or live run's process installs its stop-signal handler as it imports the CLI
module, before that module's own imports: a signal in the first fraction of a second
of start-up stops the run with a journaled ``stopped`` row instead of killing it (exit
143). What runs before is the interpreter's own start-up.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import signal, sys
sys.argv = [{argv0!r}, "run", "s.yaml", *{mode!r}]
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "argparse":  # the CLI module's first import after the handler
            print(signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL)
            sys.meta_path.remove(self)
        return None
sys.meta_path.insert(0, Watch())
import tradeloom.runner.cli
"""


@pytest.mark.parametrize(
    ("argv0", "mode", "caught"),
    [
        ("/usr/bin/tradeloom", ["--mode", "paper"], "True"),
        ("/x/tradeloom/runner/cli.py", ["--mode=live"], "True"),  # python -m
        ("/usr/bin/tradeloom", [], "False"),  # a backtest: signals as Python has them
        ("/usr/bin/pytest", ["--mode", "paper"], "False"),  # another program importing it
    ],
)
def test_the_stop_signal_is_caught_before_the_cli_imports_anything(
    argv0: str, mode: list[str], caught: str
) -> None:
    code = _PROBE.format(argv0=argv0, mode=mode)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == caught, done.stderr
