"""The line a run on a cold kernel cache adds to its stderr (`tradeloom.cli.run_command`):
a test of a command's exact stderr leaves it out, since whether kernels were cached
depends on what ran before it (the suite's warm-up, another test, a fresh clone)."""

from __future__ import annotations

import re

__all__ = ["COMPILED", "without_compile_line"]

COMPILED = re.compile(
    r"compiled \d+ kernels? in [\d.]+ s \([\d.]+ s CPU\), cached for the next runs"
)


def without_compile_line(stderr: str) -> str:
    """Return ``stderr`` without the cold cache's line."""
    return "".join(
        line for line in stderr.splitlines(keepends=True) if not COMPILED.fullmatch(line.strip())
    )
