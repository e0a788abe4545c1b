#!/usr/bin/env bash
# The long hunt: every property test at the examples it declares.
#
# The suite (`pytest`) caps each hypothesis property at 25 examples (tests/hunting.py)
# so that it stays under fifteen minutes on two cores; this runs them all with the counts
# their @settings declare (300, 400, 500...). Arguments go to pytest (default: the whole
# suite, its `slow` tests included, which a plain `pytest` leaves out), e.g.
# `scripts/hunt.sh tests/core -m "not slow"`. Quote its summary line in the
# notes of a change to a kernel, the sizing, the accounting or a restart. Tests too long
# for the suite's budget run here only (a first run's whole background compile:
# `scripts/hunt.sh tests/kernels/test_first_run.py`).
#
# `scripts/hunt.sh --faults [-k EXPR]` runs instead the kill -9 fault-schedule hunt of
# tests/live/test_fault_schedules.py (by default the operator's hand during a stage and a
# universe's promotion: -k 'hand or universes') at TRADELOOM_FAULT_EXAMPLES examples a
# test (default 60), seed SEED (default 81), one process, each example logged to
# TRADELOOM_FAULT_LOG (default fault-hunt.log) as it ends. About 10 s an example on a
# quiet core: 60 examples of two tests take some 20 minutes. The suite replays only the
# kill -9 properties' fixed examples (tests/live/test_fault_schedules.py and
# test_fault_shapes.py; a property with none draws one derandomized schedule): their
# drawn schedules run here (`--faults` draws test_fault_schedules.py's; the other shapes',
# `TRADELOOM_FAULT_EXAMPLES=N pytest -p no:xdist tests/live/test_fault_shapes.py`, as its
# docstring says) and in the plain hunt (TRADELOOM_HUNT=1: one derandomized each).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--faults" ]]; then
    shift
    if [[ $# -eq 0 ]]; then set -- -k "hand or universes"; fi
    TRADELOOM_FAULT_EXAMPLES="${TRADELOOM_FAULT_EXAMPLES:-60}" \
        TRADELOOM_FAULT_LOG="${TRADELOOM_FAULT_LOG:-fault-hunt.log}" \
        exec python -m pytest -p no:cacheprovider -p no:xdist \
        tests/live/test_fault_schedules.py --hypothesis-seed="${SEED:-81}" \
        --hypothesis-show-statistics "$@"
fi
TRADELOOM_HUNT=1 TRADELOOM_SLOW=1 exec python -m pytest -p no:cacheprovider "${@:-tests}"
