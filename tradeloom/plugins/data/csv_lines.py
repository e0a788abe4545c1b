"""Number a CSV file's rows by their lines in the file, as a user finds them in an editor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["csv_line_numbers"]


def csv_line_numbers(path: Path, rows: int) -> np.ndarray:
    """Return the line of each of the ``rows`` data rows pandas read from ``path``.

    pandas skips blank lines; they are counted too. A quoted field spanning lines
    would break the count; then rows are numbered plainly from line 2.
    """
    with path.open("rb") as fh:
        lines = [number for number, line in enumerate(fh, start=1) if line.strip()]
    if len(lines) == rows + 1:
        return np.asarray(lines[1:], dtype=np.int64)
    return np.arange(2, rows + 2, dtype=np.int64)
