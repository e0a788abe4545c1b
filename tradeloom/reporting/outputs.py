"""The files a run writes into its directory (`tradeloom.engine.run_dir` makes it).

Every file is written atomically (`atomic_file`): a reader (``tradeloom report``, a
dashboard polling a paper run's ``metrics.json``) sees the old file or the new one,
never half of one, even when a paper or live run rewrites it at every bar.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml

from tradeloom.reporting.csv_table import ISO_SECONDS, csv_chunks
from tradeloom.reporting.json_values import json_safe

__all__ = [
    "DATE_FORMAT",
    "atomic_bytes",
    "atomic_file",
    "json_safe",
    "metrics_text",
    "write_frame",
    "write_metrics",
    "write_strategy",
]

DATE_FORMAT = ISO_SECONDS
"""How a CSV file of a run writes a timestamp (ISO 8601, UTC)."""


def _file_mode() -> int:
    """Return the mode a plain ``open`` gives a new file: 0666 less the process's umask.

    A temporary file is created 0600; each run file gets this mode instead, so that all
    of a run directory's files have one mode (0644 under the usual umask 022), the files
    written in place and those renamed into place alike.
    """
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _file_mode()


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[str]]:
    """Yield a text file that replaces ``path`` when the block ends without an error.

    The text goes to a temporary file in the same folder, then is renamed over
    ``path`` (`os.replace`, atomic on POSIX), so a reader sees the old file or the new
    one, never half of one; an error leaves ``path`` as it was and removes the
    temporary file. There is no ``fsync``: these files are views of the journal (which
    is synced before anything acts on it), and after a power cut ``tradeloom report``
    or the run's next bar writes them again. Syncing them cost a live tick ~15 ms.
    """
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, on every path
        "w",
        dir=path.parent,
        prefix=f".{path.name}.",
        suffix=".tmp",
        delete=False,
        encoding="utf-8",
        newline="",
    )
    temporary = Path(handle.name)
    try:
        with handle:
            yield handle
        os.chmod(temporary, _MODE)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_strategy(run_dir: Path, document: Mapping[str, Any], name: str = "strategy.yaml") -> None:
    """Write the resolved strategy file (overrides applied, secrets as references)."""
    text = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True)
    (run_dir / name).write_text(text, encoding="utf-8")


def write_metrics(run_dir: Path, metrics: Mapping[str, Any]) -> None:
    """Write ``metrics.json`` (`metrics_text`)."""
    with atomic_file(run_dir / "metrics.json") as file:
        file.write(metrics_text(metrics))


def metrics_text(metrics: Mapping[str, Any]) -> str:
    """Return ``metrics.json``'s text: keys sorted, NaN and infinities as null."""
    return json.dumps(json_safe(metrics), indent=2, sort_keys=True) + "\n"


def write_frame(run_dir: Path, name: str, frame: pd.DataFrame) -> None:
    """Write a frame as CSV with ISO-8601 UTC timestamps.

    Floats are written in their shortest form that reads back to the same number
    (``806.19``, not ``806.19000000000005``): pandas' default, Python's ``repr``.
    The text is pandas' ``to_csv``, written from the columns' arrays a piece at a time
    (`csv_chunks`); a frame that cannot be is written by pandas itself.
    """
    pieces = csv_chunks(frame, DATE_FORMAT)
    if pieces is not None:
        atomic_bytes(run_dir / name, pieces)
        return
    with atomic_file(run_dir / name) as file:
        frame.to_csv(file, index=False, date_format=DATE_FORMAT)


def atomic_bytes(
    path: Path, data: bytes | npt.NDArray[np.uint8] | Iterable[npt.NDArray[np.uint8]]
) -> None:
    """Write ``data`` (or each of its pieces, in order) to ``path`` as `atomic_file`
    writes text: all of it, or nothing."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    pieces = [data] if isinstance(data, bytes | np.ndarray) else data
    try:
        with os.fdopen(fd, "wb") as file:
            for piece in pieces:
                file.write(piece.data if isinstance(piece, np.ndarray) else piece)
        os.chmod(temporary, _MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
