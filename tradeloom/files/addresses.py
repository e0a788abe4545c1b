"""Paths as addresses: where a file's path, or a run's id, becomes part of a URI or a URL.

A folder a user can make may be named with anything but ``/`` and NUL: ``#``, ``?``,
``%``, spaces, quotes, letters of any script, bytes that are not UTF-8, a leading
dash. In an address ``#`` starts a fragment, ``?`` a query and ``%`` an escape, so a
path put into one as it is names another file: SQLite read ``runs/r#1/journal.sqlite``
as the file ``runs/r`` (and created it), and a browser read ``/run/0/paper1#x`` as the
page of ``0/paper1``. `quote_path` is the one escape every such address goes through:
`sqlite_uri` (the journal), `url_path` (the console's URLs), `file_url` (a page opened in
a browser) and the relative URL of the plotly.js a report shares
(`tradeloom.reporting.shared_plotly`) are built from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import quote

__all__ = ["SqliteMode", "file_url", "quote_path", "sqlite_uri", "url_path"]

SqliteMode = Literal["ro", "rw", "rwc"]
"""How SQLite opens a file: read-only, read-write, or read-write creating it."""


def quote_path(path: str | os.PathLike[str]) -> str:
    """Return ``path`` with every byte percent-encoded but ``/`` and RFC 3986's unreserved
    characters (letters, digits, ``-._~``).

    The bytes are the file system's (`os.fsencode`): a name that is not UTF-8 is
    escaped byte for byte, and decoding the result gives back exactly those bytes.
    """
    return quote(os.fsencode(path), safe="/")


def sqlite_uri(path: Path, mode: SqliteMode) -> str:
    """Return the URI by which SQLite opens exactly the file ``path``, in ``mode``.

    The path is made absolute first: a relative ``file:x`` would be an URI of its own.
    The authority is written empty (``file:///...``), so a path beginning with ``//``
    is still a path.
    """
    return f"file://{quote_path(path.absolute())}?mode={mode}"


def file_url(path: Path) -> str:
    """Return the ``file://`` URL of ``path`` (made absolute), for a browser."""
    return f"file://{quote_path(path.absolute())}"


def url_path(*parts: str) -> str:
    """Return the URL path of ``parts`` joined by ``/``, each escaped (`quote_path`).

    A run id's own ``/`` separates its folders, as in the console's routes
    (``url_path("/run", "0/paper1#x")`` is ``/run/0/paper1%23x``).
    """
    return "/".join(quote_path(part) for part in parts)
