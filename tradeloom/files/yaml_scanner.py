"""PyYAML's scanner with its possible simple keys kept in time linear in the text.

PyYAML remembers, per flow level, where a simple key (``a: 1``) may start, and at every
token looks at all of them: which are stale (another line, or more than 1,024 characters
back) and which comes first. Text nested many levels deep (``[[[[...``) keeps a key per
level, so a strategy file of 40 KB of brackets took about a second of CPU before its
depth was refused. The keys are saved in the order they occur (`save_possible_simple_key`
removes a level's key before saving its new one, so a dict's insertion order is the
text's order): the first is the nearest, and the stale ones are a prefix (a key that is
not stale is on this line, within 1,024 characters, and so is every later one). Here
both questions stop at the first key that answers them; what they answer, and the error
a stale required key raises, are PyYAML's own.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.scanner import ScannerError

__all__ = ["LinearSimpleKeys", "SafeLoader"]

_SIMPLE_KEY_LENGTH = 1024
"""How far back a simple key may start (PyYAML's, after the YAML specification)."""


class LinearSimpleKeys:
    """Mixed into a PyYAML loader before its scanner (``class L(LinearSimpleKeys,
    yaml.SafeLoader)``)."""

    possible_simple_keys: dict[int, Any]
    line: int
    index: int

    def next_possible_simple_key(self) -> int | None:
        """Return the token number of the nearest possible simple key (the first saved)."""
        for key in self.possible_simple_keys.values():
            return int(key.token_number)
        return None

    def stale_possible_simple_keys(self) -> None:
        """Remove the keys that can no longer be simple keys (a prefix of them).

        Raises:
            ScannerError: A required one is stale, as PyYAML raises it.
        """
        keys = self.possible_simple_keys
        stale: list[int] = []
        for level, key in keys.items():
            if key.line == self.line and self.index - key.index <= _SIMPLE_KEY_LENGTH:
                break
            if key.required:
                raise ScannerError(
                    "while scanning a simple key",
                    key.mark,
                    "could not find expected ':'",
                    self.get_mark(),  # type: ignore[attr-defined]
                )
            stale.append(level)
        for level in stale:
            del keys[level]


class SafeLoader(LinearSimpleKeys, yaml.SafeLoader):
    """PyYAML's ``SafeLoader`` with `LinearSimpleKeys`: what tradeloom reads YAML with."""
