"""Secrets in strategy files: ``${NAME}`` references resolved from the environment.

A strategy file never holds a secret's value. A string value that is exactly ``${NAME}``
is replaced, before validation, by a `Secret` holding the value of the environment
variable ``NAME``. A `Secret` prints as its reference (``${NAME}``), never as its value,
and the resolved document written to a run directory keeps the reference.

Only component fields typed `pydantic.SecretStr` accept a secret, and such a field
accepts nothing else: a key written into the file is refused.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from tradeloom.errors import Problem
from tradeloom.redaction import register_secret
from tradeloom.schemas.annotations import annotations_at, members
from tradeloom.schemas.messages import SECRET_ONLY_MESSAGE, join_path, show

__all__ = [
    "SECRET_ONLY_MESSAGE",
    "Secret",
    "check_secret_fields",
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
    Making one registers the value with `tradeloom.redaction`, which keeps it out of
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
            if isinstance(value, Secret) and not accepts:
                found.append((join_path("", *parts), f"{SECRET_ONLY_MESSAGE}, was {show(value)}"))
            elif isinstance(value, str) and accepts and secret_reference(value) is None:
                # An unresolved reference is already reported as an unset variable.
                found.append((join_path("", *parts), _LITERAL_MESSAGE))

    check(data, ())
    return found


def _is_secret_type(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, SecretStr)
