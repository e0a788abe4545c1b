"""Errors a user can cause, and how they are reported.

A user's mistake (bad YAML, an unknown plugin kind, a bad parameter, bad data,
a missing file) raises a `UserError`; the CLI prints its lines and exits 2.
Anything else is a bug or a run failure and exits 1; a `ServiceUnreachable` (the
machine is offline) is such a failure told in one line, without a traceback.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "DataError",
    "Problem",
    "ServiceUnreachable",
    "UserError",
    "folder_left",
    "leave_folder",
]

_FOLDER = "_tradeloom_run_folder"
"""The attribute a failed run sets on its error: the folder whose journal tells the failure
(an attribute, not a PEP 678 note: a note would change what the error matches)."""


def leave_folder(exc: BaseException, run_dir: str) -> None:
    """Mark ``exc`` as the error of a run that failed leaving ``run_dir`` (its journal)."""
    with contextlib.suppress(AttributeError):  # an error type without attributes: unnamed
        setattr(exc, _FOLDER, run_dir)


def folder_left(exc: BaseException) -> str | None:
    """Return the run folder a failed run marked on ``exc`` (`leave_folder`), or None."""
    folder = getattr(exc, _FOLDER, None)
    return folder if isinstance(folder, str) else None


@dataclass(frozen=True)
class Problem:
    """One problem in a strategy file, located by source position and key path.

    Attributes:
        location: ``FILE:LINE:COL`` (or ``--set`` for a command-line override).
        path: Dotted key path, e.g. ``risk.sizing.fraction``; empty for the whole file.
        message: What was expected and what was there.
    """

    location: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.location} {self.path}:" if self.path else f"{self.location}:"
        return f"{where} {self.message}"


class UserError(Exception):
    """A mistake in the user's input; reported as one line per problem, exit code 2."""

    def lines(self) -> list[str]:
        """Return the lines to print, one per problem."""
        return [str(self)]


class ConfigError(UserError):
    """One or more problems in a strategy file, all collected before raising."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=_problem_order)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        """Return one line per problem, in file order."""
        return [str(p) for p in self.problems]


class DataError(UserError):
    """Market data (a file, a column, a row) that cannot be used as it is."""


class ServiceUnreachable(Exception):
    """A service the command needs (an exchange) cannot be reached: not bad input.

    The CLI prints the message as one line and exits 1, as for any run failure; the
    same command may succeed once the machine is back online.
    """


def _problem_order(problem: Problem) -> tuple[str, int, int, str]:
    parts = problem.location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return (parts[0], int(parts[1]), int(parts[2]), problem.path)
    return (problem.location, 0, 0, problem.path)
