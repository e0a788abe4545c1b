"""The JSON Schema of each kind of file tradeloom reads: strategy, portfolio and sweep.

``tradeloom schema --kind KIND`` prints one; the docs publish the three built from the
built-in plugins (docs/schemas/, `published_schemas`), which the shipped files name in their
first line (``# yaml-language-server: $schema=...``, `modeline`) so that an editor speaking
yaml-language-server completes and checks every file of the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from tradeloom.plugins.registry import Registry

__all__ = [
    "FILE_KINDS",
    "FileKind",
    "file_json_schema",
    "file_kind",
    "modeline",
    "published_schemas",
    "schema_file",
]

FileKind = Literal["strategy", "portfolio", "sweep"]

FILE_KINDS: tuple[FileKind, ...] = ("strategy", "portfolio", "sweep")


def file_kind(document: Any) -> FileKind:
    """Return the kind of a loaded YAML document, as ``run`` and ``validate`` tell it
    (`tradeloom.schemas.file_kind`)."""
    from tradeloom.schemas.file_kind import is_portfolio_document, is_sweep_document

    if is_sweep_document(document):
        return "sweep"
    return "portfolio" if is_portfolio_document(document) else "strategy"


def schema_file(kind: FileKind) -> str:
    """Return the name the docs publish `kind`'s schema under: ``strategy.schema.json``."""
    return f"{kind}.schema.json"


def modeline(kind: FileKind, folder: str) -> str:
    """Return the first line that points an editor at `kind`'s published schema, from a
    file whose folder reaches the docs' schemas at ``folder`` (``../docs/schemas``)."""
    return f"# yaml-language-server: $schema={folder}/{schema_file(kind)}"


def file_json_schema(kind: FileKind, registry: Registry) -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of `kind`'s files.

    Args:
        kind: strategy, portfolio or sweep.
        registry: The installed components (a strategy file's sections accept exactly
            those; a portfolio file's allocation names an allocator kind, its keys beside).
    """
    from tradeloom.schemas.json_schema import JSON_SCHEMA_DIALECT, strategy_json_schema

    if kind == "strategy":
        return strategy_json_schema(registry)
    if kind == "portfolio":
        from tradeloom.schemas.portfolio_file import PortfolioFile

        model: Any = PortfolioFile
        title = "tradeloom portfolio"
    else:
        from tradeloom.sweep.sweep_file import SweepFile

        model = SweepFile
        title = "tradeloom sweep"
    body = model.model_json_schema()
    body["title"] = title
    return {"$schema": JSON_SCHEMA_DIALECT, **body}


def published_schemas(registry: Registry) -> Mapping[str, str]:
    """Return the text of each published schema by its file name: JSON Schema draft 7
    (yaml-language-server's), the schemas ``tradeloom schema --kind KIND`` prints."""
    import json

    from tradeloom.schemas.json_schema import to_draft7

    return {
        schema_file(kind): json.dumps(to_draft7(file_json_schema(kind, registry)), indent=1) + "\n"
        for kind in FILE_KINDS
    }
