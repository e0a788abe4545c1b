"""The console's credentials: a read token, a write token, browser sessions and CSRF.

Two tokens, generated at the first start and kept in
``$XDG_CONFIG_HOME/tradeloom/console-token`` (``~/.config/...`` without it), a JSON file
created 0600 and refused when anyone else may read it; or taken from the environment
(`READ_TOKEN_ENV`, `WRITE_TOKEN_ENV`, both or neither). The read token reads; the write
token also acts (kill, resume, flatten).

A browser gets in once: the console prints one login URL per scope with a one-time code;
opening it sets an HttpOnly, SameSite=Strict session cookie and forgets the code. A
session has its own CSRF token, which every action sent with the cookie must carry in
the ``X-CSRF-Token`` header (a client with an ``Authorization: Bearer`` token sends no
cookie, so it needs none).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tradeloom.errors import UserError
from tradeloom.runtime.redaction import register_secret

__all__ = [
    "READ_TOKEN_ENV",
    "WRITE_TOKEN_ENV",
    "Scope",
    "Session",
    "Sessions",
    "Tokens",
    "load_tokens",
    "token_path",
]

READ_TOKEN_ENV = "TRADELOOM_CONSOLE_TOKEN"
WRITE_TOKEN_ENV = "TRADELOOM_CONSOLE_WRITE_TOKEN"
Scope = Literal["read", "write"]
_MAX_SESSIONS = 1000


@dataclass(frozen=True)
class Tokens:
    """The read and write tokens, and where they came from (a path or the environment)."""

    read: str
    write: str
    source: str

    def scope_of(self, token: str) -> Scope | None:
        """Return the scope ``token`` grants (None: neither token)."""
        if hmac.compare_digest(token.encode(), self.write.encode()):
            return "write"
        if hmac.compare_digest(token.encode(), self.read.encode()):
            return "read"
        return None


def token_path(env: Mapping[str, str] | None = None) -> Path:
    """Return the token file: ``$XDG_CONFIG_HOME/tradeloom/console-token``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tradeloom" / "console-token"


def load_tokens(env: Mapping[str, str] | None = None) -> Tokens:
    """Return the tokens: from the environment, else the token file (made when missing).

    Raises:
        UserError: One token variable set without the other, a token shorter than 16
            characters, or a token file others may read or that is not the console's.
    """
    env = os.environ if env is None else env
    read, write = env.get(READ_TOKEN_ENV), env.get(WRITE_TOKEN_ENV)
    if read or write:
        if not (read and write):
            raise UserError(
                f"console: set both {READ_TOKEN_ENV} and {WRITE_TOKEN_ENV}, or neither "
                "(the tokens are then kept in the user's config folder)"
            )
        tokens = Tokens(read, write, "the environment")
    else:
        tokens = _from_file(token_path(env))
    for token in (tokens.read, tokens.write):
        if len(token) < 16:
            raise UserError(f"console: a token from {tokens.source} is shorter than 16 characters")
        register_secret(token)
    if tokens.read == tokens.write:
        raise UserError(f"console: the read and write tokens from {tokens.source} are the same")
    return tokens


def _from_file(path: Path) -> Tokens:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"read": secrets.token_urlsafe(32), "write": secrets.token_urlsafe(32)}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another console made it meanwhile
            return _from_file(path)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
    mode = path.lstat().st_mode
    if not stat.S_ISREG(mode):
        raise UserError(f"console: {path} is not a regular file")
    if mode & 0o077:
        raise UserError(
            f"console: {path} may be read by others (mode {oct(mode & 0o777)}); "
            f"run: chmod 600 {path}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Tokens(str(data["read"]), str(data["write"]), str(path))
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"console: {path} is not a console token file (JSON with read and write); "
            "delete it and start again to make a new one"
        ) from None


@dataclass(frozen=True)
class Session:
    """A browser's session: its scope and CSRF token."""

    scope: Scope
    csrf: str


class Sessions:
    """One-time login codes and the sessions they open (in memory: a restart logs out)."""

    def __init__(self) -> None:
        self._codes: dict[str, Scope] = {}
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def login_code(self, scope: Scope) -> str:
        """Return a new one-time code opening a session of ``scope``."""
        code = secrets.token_urlsafe(24)
        register_secret(code)
        with self._lock:
            self._codes[code] = scope
        return code

    def redeem(self, code: str) -> tuple[str, Session] | None:
        """Open a session with ``code`` (once); return its id and the session."""
        with self._lock:
            scope = None
            for known in list(self._codes):
                if hmac.compare_digest(known.encode(), code.encode()):
                    scope = self._codes.pop(known)
            if scope is None:
                return None
            if len(self._sessions) >= _MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            sid = secrets.token_urlsafe(32)
            register_secret(sid)
            session = Session(scope, secrets.token_urlsafe(24))
            self._sessions[sid] = session
            return sid, session

    def get(self, sid: str) -> Session | None:
        """Return the session ``sid`` (None: unknown)."""
        with self._lock:
            return self._sessions.get(sid)
