"""The user's prompt file, with each document's text, title, source and time put in.

A placeholder is a name in double braces: ``{{text}}``, ``{{title}}``, ``{{source}}``,
``{{time}}`` (the document's own time, ISO 8601 UTC), ``{{symbols}}`` (comma-separated,
empty for a document about the whole market), ``{{id}}`` and ``{{fields}}`` (the declared
fields with their ranges, one per line). Single braces are left as written, so a prompt
may show the model a JSON example. An unknown placeholder is refused when the file is
read, naming its line: a typo never reaches the model as literal text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradeloom.errors import UserError
from tradeloom.files.reading import read_text
from tradeloom.suggestions import did_you_mean

if TYPE_CHECKING:
    from tradeloom.text.documents import Documents
    from tradeloom.text.llm_fields import FieldRange

__all__ = ["PLACEHOLDERS", "PromptTemplate"]

PLACEHOLDERS = ("text", "title", "source", "time", "symbols", "id", "fields")
"""The names a prompt may put in double braces."""

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

_MAX_PROMPT_BYTES = 1_000_000


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt with placeholders, checked once, rendered per document.

    Attributes:
        text: The template as written.
        name: Where it came from (the file), for messages.
    """

    text: str
    name: str

    def __post_init__(self) -> None:
        for match in _PLACEHOLDER.finditer(self.text):
            if match.group(1) not in PLACEHOLDERS:
                line = self.text.count("\n", 0, match.start()) + 1
                raise UserError(
                    f"{self.name}:{line}: unknown placeholder {{{{{match.group(1)}}}}}"
                    f"{did_you_mean(match.group(1), PLACEHOLDERS)}; placeholders: "
                    f"{', '.join('{{' + p + '}}' for p in PLACEHOLDERS)}"
                )
        if not any(m.group(1) in ("text", "title") for m in _PLACEHOLDER.finditer(self.text)):
            raise UserError(
                f"{self.name}: the prompt never shows the document; put {{{{text}}}} "
                "(or {{title}}) where it goes"
            )

    @classmethod
    def read(cls, path: Path) -> PromptTemplate:
        """Read a prompt file (UTF-8).

        Raises:
            UserError: The file cannot be read, or has an unknown placeholder.
        """
        return cls(read_text(path, "prompt file", limit=_MAX_PROMPT_BYTES), str(path))

    @property
    def digest(self) -> str:
        """Return the SHA-256 of the template (hex), for a scorer's identity."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def render(self, documents: Documents, row: int, fields: Mapping[str, FieldRange]) -> str:
        """Return the prompt for document ``row`` of ``documents``."""
        from tradeloom.runtime.lazy import pandas as pd

        values = {
            "text": documents.texts[row],
            "title": documents.titles[row],
            "source": documents.sources[row],
            "time": pd.Timestamp(int(documents.stamped_ns[row]), tz="UTC").isoformat(),
            "symbols": ", ".join(documents.symbols[row]),
            "id": documents.ids[row],
            "fields": "\n".join(
                f"{name}: a number from {spec.min:g} to {spec.max:g}"
                + (f" ({spec.description})" if spec.description else "")
                for name, spec in fields.items()
            ),
        }
        # one pass: a document whose text holds "{{title}}" is not substituted again
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.text)
