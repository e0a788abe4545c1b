"""The start of a paper or live run: stop signals caught at once, a failed first start.

The ``tradeloom`` command catches SIGTERM before it imports anything heavy.

A paper or live run's process installs its stop-signal handler as it imports the CLI
module, before that module's own imports: a signal in the first fraction of a second
of start-up stops the run with a journaled ``stopped`` row instead of killing it (exit
143). What runs before is the interpreter's own start-up.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

STRATEGY = Path(__file__).parents[2] / "strategies" / "btc_rf.yaml"

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
import tradeloom.cli.main
"""


@pytest.mark.parametrize(
    ("argv0", "mode", "caught"),
    [
        ("/usr/bin/tradeloom", ["--mode", "paper"], "True"),
        ("/x/tradeloom/cli/main.py", ["--mode=live"], "True"),  # python -m
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


def test_a_run_whose_first_start_failed_is_not_started_again_under_another_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its journal's first record binds the file: strategy.yaml must not be rewritten."""
    from tradeloom.cli.main import main
    from tradeloom.journal import RunIdentity, open_journal

    run = tmp_path / "r"
    run.mkdir()
    other = "0" * 64  # the first start's file, whose start failed before it traded
    open_journal(run / "journal.sqlite", RunIdentity("btc_rf", "r", "paper", other)).close()
    capsys.readouterr()
    args = ["run", str(STRATEGY), "--mode", "paper", "--clock", "simulated", "--out", str(run)]
    assert main([*args, "--max-bars", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"{run / 'journal.sqlite'}: its first start, which failed before it traded, was under "
        "another strategy file (sha256 000000000000, the file now is "
    )
    assert err.endswith("put the file back, or start in another folder (--out); nothing was sent\n")
    assert not (run / "strategy.yaml").exists()
