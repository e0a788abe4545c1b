"""Where a run's journal lives: a SQLite file in its directory, or a PostgreSQL database.

A run directory holds its journal as ``journal.sqlite`` (the default), or, when the
strategy file says ``journal: {url: ${NAME}}``, names it in ``journal.json``::

    {"store": "postgresql", "url": "${TRADELOOM_JOURNAL_URL}", "schema": "tradeloom",
     "run_id": "btc_rf-paper"}

The file holds the URL's ``${NAME}`` reference, never its value: whoever reads the run
(``tradeloom status``, ``tradeloom report``, `tradeloom.journal.read_events`) sets the
same environment variable. `journal_path` returns the one a run directory has; every
reader accepts either file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tradeloom.files.reading import UnreadableFile, read_json
from tradeloom.journal.errors import JournalDamaged, JournalError
from tradeloom.runtime.redaction import register_secret

__all__ = [
    "DEFAULT_SCHEMA",
    "POINTER_FILE",
    "SCHEMA_PATTERN",
    "SQLITE_FILE",
    "PgTarget",
    "journal_path",
    "read_pointer",
    "write_pointer",
]

SQLITE_FILE = "journal.sqlite"
"""A run directory's SQLite journal."""

POINTER_FILE = "journal.json"
"""A run directory's note of where its PostgreSQL journal lives."""

DEFAULT_SCHEMA = "tradeloom"
"""The PostgreSQL schema (namespace) of the journal's tables unless the file names one."""

SCHEMA_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
"""A schema name the journal accepts: lower-case letters, digits and _, at most 63."""

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class PgTarget:
    """A PostgreSQL journal database.

    Attributes:
        url: The connection URL (a secret: never printed).
        reference: How messages name it: the ``${NAME}`` it was read from.
        schema: The schema holding the journal's tables.
    """

    url: str
    reference: str
    schema: str = DEFAULT_SCHEMA

    def __repr__(self) -> str:
        return f"PgTarget({self.reference}, schema={self.schema!r})"

    @property
    def where(self) -> str:
        """Return the database and schema as messages name them (no secret)."""
        return f"PostgreSQL {self.reference} schema {self.schema}"


def journal_path(run_dir: Path) -> Path:
    """Return the journal file of ``run_dir``: ``journal.json`` if it has one, else
    ``journal.sqlite`` (which may not exist yet)."""
    pointer = run_dir / POINTER_FILE
    return pointer if pointer.is_file() else run_dir / SQLITE_FILE


def write_pointer(run_dir: Path, target: PgTarget, run_id: str) -> None:
    """Record in ``run_dir`` that its journal is run ``run_id`` of ``target``."""
    text = json.dumps(
        {"store": "postgresql", "url": target.reference, "schema": target.schema, "run_id": run_id},
        indent=2,
    )
    path = run_dir / POINTER_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(text + "\n", encoding="utf-8")
    temporary.replace(path)


def read_pointer(path: Path) -> tuple[PgTarget, str]:
    """Return the database and the run id that the ``journal.json`` at ``path`` names.

    The URL's environment variable is read now; its value becomes a secret (redacted).

    Raises:
        JournalError: Not a journal pointer, or its environment variable is not set.
    """
    try:
        data = read_json(path, "a journal pointer", limit=1 << 20)
    except UnreadableFile as exc:
        raise JournalDamaged(str(exc)) from None
    if not isinstance(data, dict) or data.get("store") != "postgresql":
        raise JournalDamaged(f'{path}: not a journal pointer (no "store": "postgresql")')
    reference, schema, run_id = data.get("url"), data.get("schema"), data.get("run_id")
    if not (isinstance(schema, str) and isinstance(run_id, str) and isinstance(reference, str)):
        raise JournalDamaged(f"{path}: not a journal pointer (url, schema and run_id are texts)")
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        raise JournalDamaged(f"{path}: url must be a ${{NAME}} reference, never the value")
    name = match.group(1)
    url = os.environ.get(name)
    if not url:
        raise JournalError(
            f"{path}: the journal is in PostgreSQL at {reference} (schema {schema}, run "
            f"{run_id}); set the environment variable {name} to read it"
        )
    register_secret(url)
    return PgTarget(url, reference, schema), run_id
