"""`tradeloom --version`, `--help` and argument errors answer before any heavy library loads.

Each command runs in a fresh interpreter (as a shell runs it) that prints, after
`main` returns, which of the heavy libraries ended up in ``sys.modules``. Shell
completion, an editor's validate-on-save and `status` in a watch loop all start the
command anew, so what it imports is what they wait for.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("sklearn", "numba", "pandas", "plotly", "ccxt", "dask", "distributed", "scipy")

_PROBE = """
import json, sys
from tradeloom.runner.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(HEAVY)))
print("IMPORTED " + json.dumps(heavy), file=sys.stderr)
"""


def _imported(*argv: str) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("json.loads(HEAVY)", repr(list(HEAVY))), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("IMPORTED "))
    return json.loads(line.removeprefix("IMPORTED ")), done


@pytest.mark.parametrize(
    "argv",
    [
        ("--version",),
        ("--help",),
        ("run", "--help"),
        ("sweep", "--help"),
        ("data", "fetch", "--help"),
        ("run",),  # an argument error: the file is missing
        ("run", "x.yaml", "--speed", "fast"),
        ("no-such-command",),
    ],
    ids=" ".join,
)
def test_the_answer_imports_no_heavy_library(argv: tuple[str, ...]) -> None:
    heavy, done = _imported(*argv)
    assert heavy == [], f"{' '.join(argv)} imported {heavy}"
    assert "Traceback" not in done.stderr


def test_version_and_help_still_say_what_they_said() -> None:
    _, done = _imported("--version")
    assert done.stdout.strip() == "tradeloom 0.1.0"
    _, done = _imported("--help")
    assert done.stdout.startswith("usage: tradeloom")
    for command in ("run", "validate", "sweep", "status", "journal", "data", "report"):
        assert command in done.stdout
    _, done = _imported("run", "x.yaml", "--speed", "fast")
    assert "argument --speed" in done.stderr
