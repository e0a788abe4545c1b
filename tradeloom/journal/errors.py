"""What goes wrong with a journal file, each said in one line (the CLI exits 2)."""

from __future__ import annotations

from tradeloom.errors import UserError

__all__ = [
    "ChainBroken",
    "JournalDamaged",
    "JournalError",
    "JournalOwnerError",
    "JournalUnavailable",
    "JournalVersionError",
]


class JournalError(UserError):
    """A journal that cannot be used as it is; the message names the file and the problem.

    The message is one line whatever it quotes (a damaged text, SQLite's words).
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).splitlines()))


class JournalDamaged(JournalError):
    """Not a journal, or a damaged one: missing, a directory, empty, not SQLite, malformed,
    its tables gone, or a row that does not decode."""


class JournalVersionError(JournalError):
    """A journal written in another format version."""


class JournalOwnerError(JournalError):
    """A journal of another strategy or mode than the run that opens it."""


class ChainBroken(JournalDamaged):
    """A row deleted, inserted or edited after it was written.

    Attributes:
        seq: The first sequence number that does not chain.
    """

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class JournalUnavailable(JournalError):
    """A journal database that cannot be reached (at start, or lost during a run)."""
