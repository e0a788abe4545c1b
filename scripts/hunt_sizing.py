"""A long hunt for volatility_target and risk_per_trade against their documented formulas.

Runs the property tests of tests/core/test_sizing_formulas.py with many more examples than the
suite's 25 each (each example: generated bars through the compiled core, every sized
entry recomputed in plain Python), and prints pytest's summary and durations.

    PYTHONPATH=. python scripts/hunt_sizing.py [--examples 500]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500)
    args = parser.parse_args()
    os.environ["TRADELOOM_SIZING_EXAMPLES"] = str(args.examples)
    return pytest.main(
        [
            str(ROOT / "tests" / "core" / "test_sizing_formulas.py"),
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "-q",
            "-k",
            "documented_formula or tightest_stop",
            "--hypothesis-show-statistics",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
