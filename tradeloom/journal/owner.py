"""The strategy a journal was written under, bound into its chain's first record.

A journal's meta seeds its hash chain (`tradeloom.journal.sqlite.chain_seed`): the
run id, the strategy's name and the mode, and, in a journal written by this
tradeloom, ``strategy_sha256``, the SHA-256 of the resolved strategy document the
run wrote beside it as ``strategy.yaml`` (`strategy_digest`), and ``tail``, which
says the journal keeps a tail record (`tradeloom.journal.tail`). Changing either
breaks the chain at its first row.

`check_strategy` compares the journal's hash with the ``strategy.yaml`` of its
folder: another strategy's journal copied in (from a run of a different file), or a
``strategy.yaml`` replaced by another file, is refused in one line. A journal
without the key (written before it existed) and a folder without a readable file (none,
a FIFO, a device: the commands that read it say what is wrong with it) pass.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tradeloom.journal.errors import JournalDamaged
from tradeloom.safe_files import UnreadableFile, read_yaml

__all__ = ["STRATEGY_FILE", "check_strategy", "strategy_digest"]

STRATEGY_FILE = "strategy.yaml"
"""The resolved strategy file a run writes into its folder."""


def strategy_digest(document: Mapping[str, Any]) -> str:
    """Return the SHA-256 (hex) of a resolved strategy document, as JSON with sorted keys."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
        document = read_yaml(path, "a run's strategy file")
    except UnreadableFile:
        return  # not a file to compare with (a FIFO, a device, damaged): its readers say so
    found = strategy_digest(document) if isinstance(document, Mapping) else "(not a mapping)"
    if found != expected:
        raise JournalDamaged(
            f"{journal}: its first record names strategy sha256 {expected[:12]}, {path} is "
            f"sha256 {found[:12]}: another strategy's journal, or the run's strategy file was "
            "replaced; put the run's own journal and strategy.yaml back"
        )
