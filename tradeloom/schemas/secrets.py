"""Secrets in strategy files: ``${NAME}`` references resolved from the environment.

A strategy file never holds a secret's value. A string value that is exactly ``${NAME}``
is replaced, before validation, by a `Secret` holding the value of the environment
variable ``NAME``. A `Secret` prints as its reference (``${NAME}``), never as its value,
and the resolved document written to a run directory keeps the reference.

Only component fields typed `pydantic.SecretStr`, and credential keys inside a free-form
mapping (ccxt's ``headers``), accept a secret. Every key that names a credential
(`is_credential_key`: keys, secrets, passwords, one-time codes, auth headers), wherever it
is in the file, accepts nothing else: a value written out is refused at validation, and
the message never shows it. A secret that cannot be sent in an HTTP header (not
Latin-1) is refused at its key.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from tradeloom.errors import Problem
from tradeloom.runtime.redaction import register_secret
from tradeloom.schemas.annotations import annotations_at, members
from tradeloom.schemas.messages import SECRET_ONLY_MESSAGE, join_path, show

__all__ = [
    "CREDENTIAL_NAMES",
    "SECRET_ONLY_MESSAGE",
    "SECRET_PATHS",
    "Secret",
    "check_secret_fields",
    "credential_problems",
    "is_credential_key",
    "resolve_secrets",
    "secret_reference",
    "to_document",
]

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

_LITERAL_MESSAGE = (
    "a secret must be an environment variable reference such as ${API_KEY}, never the value itself"
)


class Secret(SecretStr):
    """A secret value read from the environment variable it was referenced by.

    ``str`` and ``repr`` show ``${NAME}``, a JSON dump ``**********``; the value is only
    available from `get_secret_value`.
    Making one registers the value with `tradeloom.runtime.redaction`, which keeps it out of
    every log line, traceback and journal row from then on.

    Args:
        value: The secret's value.
        name: The environment variable it came from.
    """

    def __init__(self, value: str, name: str) -> None:
        super().__init__(value)
        self._name = name
        register_secret(value)

    @property
    def name(self) -> str:
        """Return the environment variable's name."""
        return self._name

    @property
    def reference(self) -> str:
        """Return the reference as written in the strategy file, ``${NAME}``."""
        return f"${{{self._name}}}"

    def _display(self) -> str:
        return self.reference

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Secret)
            and other.name == self.name
            and other.get_secret_value() == self.get_secret_value()
        )

    def __hash__(self) -> int:
        return hash((self._name, self.get_secret_value()))


def secret_reference(value: object) -> str | None:
    """Return the variable name if ``value`` is exactly a ``${NAME}`` reference, else None."""
    if isinstance(value, str):
        match = _REFERENCE.fullmatch(value)
        if match:
            return match.group(1)
    return None


def resolve_secrets(
    data: Any,
    locate: Callable[[str], str],
    environ: Mapping[str, str] | None = None,
) -> tuple[Any, list[Problem]]:
    """Replace every ``${NAME}`` string value of ``data`` by a `Secret`.

    Args:
        data: Plain data (mappings, lists, scalars); not modified.
        locate: Map a dotted key path to its location, for problems.
        environ: Where to look the variables up (default: ``os.environ``).

    Returns:
        The data with secrets resolved, and a problem for each variable that is not set
        (its value left as the reference).
    """
    env = os.environ if environ is None else environ
    problems: list[Problem] = []

    def resolve(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {key: resolve(item, join_path(path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item, join_path(path, i)) for i, item in enumerate(value)]
        name = secret_reference(value)
        if name is None:
            return value
        if name not in env:
            problems.append(Problem(locate(path), path, f"environment variable {name} is not set"))
            return value
        try:
            env[name].encode("latin-1")
        except UnicodeEncodeError:
            problems.append(
                Problem(
                    locate(path),
                    path,
                    f"environment variable {name} holds a character that cannot be sent in "
                    "an HTTP header (only Latin-1 can); check that it holds the right value",
                )
            )
            return value
        return Secret(env[name], name)

    return resolve(data, ""), problems


def to_document(data: Any) -> Any:
    """Return a deep copy of ``data`` as plain data, each `Secret` as its ``${NAME}``."""
    if isinstance(data, Secret):
        return data.reference
    if isinstance(data, dict):
        return {key: to_document(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [to_document(value) for value in data]
    return copy.deepcopy(data)


CREDENTIAL_NAMES = frozenset(
    {
        "apikey",
        "apisecret",
        "secret",
        "secretkey",
        "password",
        "passphrase",
        "passwd",
        "twofa",
        "2fa",
        "otp",
        "totp",
        "token",
        "accesstoken",
        "authtoken",
        "privatekey",
        "authorization",
        "proxyauthorization",
        "cookie",
        "uid",
        "login",
        "walletaddress",
    }
)
"""Key names (lower case, without ``-`` and ``_``) that hold a credential anywhere in a
strategy file: ccxt's credential settings, auth headers and the usual names of keys,
secrets, passwords and one-time codes."""

_CREDENTIAL_SUFFIXES = ("apikey", "secret", "secretkey", "password", "passphrase", "token")
"""A key ending in one of these is a credential too (``X-MBX-APIKEY``, ``OK-ACCESS-KEY``
is matched by its ``key`` below)."""

_CREDENTIAL_HEADERS = frozenset({"okaccesskey", "okaccesspassphrase", "cbaccesskey", "xapikey"})

_CREDENTIAL_MESSAGE = (
    "a secret must be an environment variable reference such as ${{{name}}}, never the value itself"
)


SECRET_PATHS: tuple[re.Pattern[str], ...] = (re.compile(r"^live\.alerts\.targets\.\d+\.url$"),)
"""Key paths that hold a secret wherever the key's name would not say so (a webhook's URL
carries its token)."""

_SECRET_PATH_MESSAGE = (
    "a webhook URL carries its token: give an environment variable reference such as "
    "${ALERT_WEBHOOK_URL}, never the value itself"
)

_CONFIG_MESSAGE = (
    "credentials never go in config; use api_key, secret or password with an ${ENV_VAR} reference"
)


def is_credential_key(key: object) -> bool:
    """Return whether a mapping key names a credential (see `CREDENTIAL_NAMES`)."""
    if not isinstance(key, str):
        return False
    folded = key.lower().replace("-", "").replace("_", "")
    return (
        folded in CREDENTIAL_NAMES
        or folded in _CREDENTIAL_HEADERS
        or folded.endswith(_CREDENTIAL_SUFFIXES)
    )


def credential_problems(data: Any, locate: Callable[[str], str]) -> list[Problem]:
    """Return a problem for each credential key of ``data`` whose value is written out.

    A credential key (`is_credential_key`) anywhere in the document accepts only a
    ``${NAME}`` reference (or null); text, a number or a list given instead is refused
    without showing it, so that the message cannot leak it.

    Args:
        data: The document, secrets not yet resolved.
        locate: Map a dotted key path to its location.
    """
    problems: list[Problem] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                child = join_path(path, key)
                secret_path = any(p.match(child) for p in SECRET_PATHS)
                if (is_credential_key(key) or secret_path) and not _is_reference_or_null(item):
                    if secret_path:
                        message = _SECRET_PATH_MESSAGE
                    elif path.rpartition(".")[2] == "config":
                        message = _CONFIG_MESSAGE  # ccxt's client settings: use the keys' fields
                    else:
                        suggested = re.sub(r"[^A-Za-z0-9]+", "_", str(key)).strip("_").upper()
                        message = _CREDENTIAL_MESSAGE.format(name=suggested or "SECRET")
                    problems.append(Problem(locate(child), child, message))
                else:
                    walk(item, child)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, join_path(path, index))

    walk(data, "")
    return problems


def _is_reference_or_null(value: Any) -> bool:
    return value is None or secret_reference(value) is not None


def check_secret_fields(model: type[BaseModel], data: Any) -> list[tuple[str, str]]:
    """Find secrets given to keys of ``model`` that are not secret fields, and the reverse.

    Pydantic already refuses a `Secret` for a typed field (``str``, ``int``), with the
    same message; this also finds one given to an untyped field (``Any``,
    ``dict[str, Any]``), and a secret field given a value written out instead of a
    ``${NAME}`` reference. Keys the model does not declare are left to validation.

    Args:
        model: A component's params model.
        data: The keys given for it (secrets resolved).

    Returns:
        ``(dotted key path below the model, message)`` for each problem.
    """
    found: list[tuple[str, str]] = []

    def check(value: Any, parts: tuple[str | int, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                check(item, (*parts, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                check(item, (*parts, index))
        elif isinstance(value, str | Secret):
            declared = annotations_at(model, parts)
            if not declared:
                return
            accepts = any(_is_secret_type(t) for a in declared for t in members(a))
            # an untyped mapping (ccxt's headers) takes a secret at a credential key
            untyped = bool(parts) and is_credential_key(parts[-1])
            if isinstance(value, Secret) and not accepts and not untyped:
                found.append((join_path("", *parts), f"{SECRET_ONLY_MESSAGE}, was {show(value)}"))
            elif isinstance(value, str) and accepts and secret_reference(value) is None:
                # An unresolved reference is already reported as an unset variable.
                found.append((join_path("", *parts), _LITERAL_MESSAGE))

    check(data, ())
    return found


def _is_secret_type(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, SecretStr)
