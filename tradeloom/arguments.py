"""Value types of command-line options that more than one command takes (argparse)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["given_path", "non_negative_int", "positive_int"]


def non_negative_int(text: str) -> int:
    """Return ``text`` as an integer >= 0.

    Raises:
        argparse.ArgumentTypeError: It is not an integer, or is negative.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, was '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, was {value}")
    return value


def positive_int(text: str) -> int:
    """Return ``text`` as an integer >= 1.

    Raises:
        argparse.ArgumentTypeError: It is not an integer, or is below 1.
    """
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, was {value}")
    return value


def given_path(text: str) -> Path:
    """Return ``text`` as a path, refusing an empty one (``Path("")`` is this folder).

    Raises:
        argparse.ArgumentTypeError: It is empty or only spaces.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, was empty")
    return Path(text)
