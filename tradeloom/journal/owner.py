"""Whose journal it is: the strategy and the run folder, bound into its chain's first record.

A journal's meta seeds its hash chain (`tradeloom.journal.sqlite.chain_seed`): the
run id, the strategy's name and the mode, and, in a journal written by this
tradeloom, ``strategy_sha256``, the SHA-256 of the resolved strategy document the
run wrote beside it as ``strategy.yaml`` (`strategy_digest`), ``tail``, which says
the journal keeps a tail record (`tradeloom.journal.tail`), and ``folder_key``, the
key of the run folder it was created in (`FOLDER_KEY_FILE`). Changing any of them
breaks the chain at its first row.

Why a key of its own binds the folder to its run. The run id is the folder's name,
and the default folder, ``runs/<name>-<mode>``, has the same name for every run of a
strategy file in every working directory; the strategy's hash is the same for every
run of the same file; a folder's path, inode or device change when a run is moved,
copied to another disk or restored from a backup, which must keep working. What tells
one run's folder from another's is a random key written once, when the run's journal
is created: ``folder.key`` (128 random bits, hex). It never changes afterwards and
moves with the folder; a journal (and its tail record) copied from another run's
folder, even of the same strategy file under the same folder name, names another key.

`check_owner` compares the journal's meta with its folder: ``strategy.yaml`` against
``strategy_sha256`` (another strategy's journal copied in, or the file replaced), and
``folder.key`` against ``folder_key`` (another run's journal copied in, or the key
deleted). A journal without a key (written before it existed) skips that comparison;
a folder without a ``strategy.yaml`` file (none, a FIFO, a device) skips the other; a
``strategy.yaml`` that the safe reader refuses (too large, not UTF-8, an alias bomb)
is refused in one line (`tradeloom.files.reading.UnreadableFile`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tradeloom.files.reading import NotAFile, UnreadableFile, read_head, read_yaml_kept
from tradeloom.journal.durable import replace_durably
from tradeloom.journal.errors import JournalDamaged

__all__ = [
    "FOLDER_KEY_FILE",
    "STRATEGY_FILE",
    "check_owner",
    "check_strategy",
    "new_folder_key",
    "read_folder_key",
    "strategy_digest",
    "write_folder_key",
]

STRATEGY_FILE = "strategy.yaml"
"""The resolved strategy file a run writes into its folder."""

FOLDER_KEY_FILE = "folder.key"
"""The run folder's key: written once, when the run's journal is created."""

_KEY = re.compile(r"^[0-9a-f]{32}$")


def strategy_digest(document: Mapping[str, Any]) -> str:
    """Return the SHA-256 (hex) of a resolved strategy document, as JSON with sorted keys."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_folder_key() -> str:
    """Return a new run folder key (128 random bits, hex)."""
    return secrets.token_hex(16)


def write_folder_key(run_dir: Path, key: str) -> None:
    """Write ``key`` as ``run_dir``'s ``folder.key``, durably (once, at the run's creation)."""
    replace_durably(run_dir / FOLDER_KEY_FILE, (key + "\n").encode())


def read_folder_key(run_dir: Path) -> str | None:
    """Return the key ``run_dir`` holds (None: it holds no ``folder.key``).

    Raises:
        JournalDamaged: A ``folder.key`` that is not a regular file or not a key.
    """
    path = run_dir / FOLDER_KEY_FILE
    if not os.path.lexists(path):
        return None
    try:
        text = read_head(path, "a run folder's key", 64).decode("ascii").strip()
    except (UnreadableFile, UnicodeDecodeError):
        text = ""
    if not _KEY.fullmatch(text):
        raise JournalDamaged(f"{path}: the run folder's key is damaged (not 32 hex digits)")
    return text


def check_owner(journal: Path, meta: Mapping[str, str]) -> None:
    """Refuse a journal whose first record names another strategy or run folder.

    Args:
        journal: The journal (``journal.sqlite``, or a run directory's ``journal.json``);
            its folder holds ``strategy.yaml`` and ``folder.key``.
        meta: Its meta.

    Raises:
        JournalDamaged: One line naming both hashes, or both keys.
    """
    check_strategy(journal, meta)
    expected = meta.get("folder_key", "")
    if not expected:
        return  # a journal from before folder keys
    folder = journal.parent
    found = read_folder_key(folder)
    if found is None:
        raise JournalDamaged(
            f"{journal}: its run folder's key {folder / FOLDER_KEY_FILE} is missing (the "
            f"journal was created with key {expected[:12]}): put the run's own {FOLDER_KEY_FILE} "
            "back; a run folder is moved or copied whole, never its journal alone"
        )
    if found != expected:
        raise JournalDamaged(
            f"{journal}: another run's journal: its first record names run folder key "
            f"{expected[:12]}, {folder / FOLDER_KEY_FILE} is {found[:12]} (a journal and its "
            "tail record copied from another run's folder); put the run's own journal back"
        )


def check_strategy(journal: Path, meta: Mapping[str, str]) -> None:
    """Refuse a journal whose chain names another strategy than its folder's file.

    Args:
        journal: The journal (its folder holds ``strategy.yaml``).
        meta: Its meta.

    Raises:
        JournalDamaged: One line naming both hashes.
    """
    expected = meta.get("strategy_sha256", "")
    path = journal.parent / STRATEGY_FILE
    if not expected or not os.path.lexists(path):
        return
    try:
        document = read_yaml_kept(path, "a run's strategy file")
    except NotAFile:
        return  # not a file to compare with (a FIFO, a device): its readers do without it
    found = strategy_digest(document) if isinstance(document, Mapping) else "(not a mapping)"
    if found != expected:
        raise JournalDamaged(
            f"{journal}: its first record names strategy sha256 {expected[:12]}, {path} is "
            f"sha256 {found[:12]}: another strategy's journal, or the run's strategy file was "
            "replaced; put the run's own journal and strategy.yaml back"
        )
