"""How many examples a property test draws: fewer in the suite, every one in a hunt.

The suite must run on two cores in under fifteen minutes, so a property written for
hundreds of examples draws at most `SUITE_EXAMPLES` there (25 since the suite passed
1,100 s on CI with 50); a hunt draws them all:

    TRADELOOM_HUNT=1 python -m pytest -p no:cacheprovider   # scripts/hunt.sh

A property's examples are written where it is declared, ``@settings(max_examples=
examples(500))``: the figure a hunt runs and the notes quote.
"""

from __future__ import annotations

import os

from hypothesis import Phase

SUITE_EXAMPLES = 25
"""Most examples a property draws in the suite."""

HUNT = os.environ.get("TRADELOOM_HUNT", "") not in ("", "0")
"""Set: every property draws the examples it declares."""


def examples(declared: int, *, suite: int = SUITE_EXAMPLES) -> int:
    """Return ``declared`` in a hunt, at most ``suite`` in the suite (a property whose
    every example is a whole run in three drivers names a smaller share of its own)."""
    return declared if HUNT else min(declared, suite)


FAULT_HUNT = HUNT or "TRADELOOM_FAULT_EXAMPLES" in os.environ
"""Set: the kill -9 properties (tests/live/test_fault_schedules.py, test_fault_shapes.py)
draw their schedules (``scripts/hunt.sh --faults``, or a hunt of every property)."""


def fixed_then_drawn(*, fixed: bool = True) -> tuple[Phase, ...]:
    """Return the phases of a kill -9 property: in the suite its fixed examples alone
    (the schedules that once broke a restart, each a whole live run killed and restarted:
    5-10 s of CPU each), in a hunt (`FAULT_HUNT`) the drawn ones after them. A property
    with no fixed example (``fixed=False``) draws its one derandomized schedule in the
    suite too."""
    if FAULT_HUNT or not fixed:
        return tuple(Phase)
    return (Phase.explicit,)
