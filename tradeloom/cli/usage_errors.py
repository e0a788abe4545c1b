"""A command-line mistake told in one line, with the one "did you mean" rule.

argparse answers a mistyped command, choice or flag with its usage block and then the
error; here it is the error alone (``tradeloom run: error: argument --mode: invalid
choice: 'Paper' (did you mean 'paper'?); choose from backtest, paper, live``), exit 2.
``--help`` still shows the usage.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from tradeloom.suggestions import did_you_mean

__all__ = ["OneLineParser"]

_EXTRAS_OF = "_tradeloom_extras_of"
"""The namespace attribute naming the innermost parser that left words it did not know."""


class OneLineParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose usage errors are one line each (its subcommands too)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` on stderr and exit 2 (no usage block)."""
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        listed = ", ".join(str(c) for c in choices)
        raise argparse.ArgumentError(
            action, f"invalid choice: {value!r}{did_you_mean(value, choices)}; choose from {listed}"
        )

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse as argparse does, noting which (sub)command left unknown words."""
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and not hasattr(parsed, _EXTRAS_OF):
            setattr(parsed, _EXTRAS_OF, self)
        return parsed, extras

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """Parse, refusing unknown words in the command that was given them."""
        parsed, extras = self.parse_known_args(args, namespace)
        owner = getattr(parsed, _EXTRAS_OF, self)
        if extras:
            flags = [s[2:] for s in owner._option_string_actions if s.startswith("--")]
            first = next((w for w in extras if w.startswith("-")), None)
            typed = "" if first is None else first.split("=", 1)[0].lstrip("-")
            near = did_you_mean(typed, flags) if typed else ""
            hint = near.replace(" (did you mean '", " (did you mean '--")
            owner.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        if hasattr(parsed, _EXTRAS_OF):
            delattr(parsed, _EXTRAS_OF)
        return parsed
