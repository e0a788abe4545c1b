#!/usr/bin/env bash
# The long hunt: every property test at the examples it declares.
#
# The suite (`pytest`) caps each hypothesis property at 50 examples (tests/hunting.py)
# so that it stays under ten minutes on two cores; this runs them all with the counts
# their @settings declare (300, 400, 500...). Arguments go to pytest (default: the whole
# suite), e.g. `scripts/hunt.sh tests/core -m "not slow"`. Quote its summary line in the
# notes of a change to a kernel, the sizing, the accounting or a restart. Tests too long
# for the suite's budget run here only (a first run's whole background compile:
# `scripts/hunt.sh tests/kernels/test_first_run.py`).
set -euo pipefail
cd "$(dirname "$0")/.."
TRADELOOM_HUNT=1 exec python -m pytest -p no:cacheprovider "${@:-tests}"
