"""Turn pydantic validation errors into short messages a strategy author can act on.

Pydantic's own messages are long, name Python types and link to its website. Here each
error becomes a `FieldError`: the key path inside the validated data (union member tags
removed), and a message saying what was expected and what was there, e.g.
``must be <= 1, was 1.5`` or ``unknown key (did you mean 'n_estimators'?)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from tradeloom.schemas.annotations import annotations_at, keys_at
from tradeloom.suggestions import closest, did_you_mean

__all__ = ["SECRET_ONLY_MESSAGE", "FieldError", "describe_validation_error", "join_path", "show"]

SECRET_ONLY_MESSAGE = "secrets (${...}) are only accepted by secret fields"
"""The message for a ``${NAME}`` reference given to a field that is not a secret."""

_MAX_SHOWN = 60

Part = str | int


@dataclass(frozen=True)
class FieldError:
    """One problem found by a pydantic model, in words.

    Attributes:
        parts: Key path inside the validated data (list indices as ints).
        message: What was expected and what was there.
        at_key: Locate it at the key rather than the value (unknown keys).
        missing: The key is absent; locate it at the mapping that should hold it.
    """

    parts: tuple[Part, ...]
    message: str
    at_key: bool = False
    missing: bool = False


def join_path(prefix: str, *parts: object) -> str:
    """Return ``prefix`` and ``parts`` joined as a dotted key path (``features.3.window``)."""
    if len(parts) == 1:  # a value's path below its parent's: once per value of a file
        return f"{prefix}.{parts[0]}" if prefix else str(parts[0])
    pieces = [prefix] if prefix else []
    pieces.extend(str(part) for part in parts)
    return ".".join(pieces)


def show(value: Any) -> str:
    """Return ``value`` as it would read in a strategy file, short, never revealing a secret."""
    if isinstance(value, SecretStr):
        reference = getattr(value, "reference", None)
        return reference if isinstance(reference, str) else "'**********'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 3] + "..."
        return repr(text)
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple | set | frozenset):
        return "an empty list" if not value else "a list"
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def describe_validation_error(
    error: ValidationError, data: Any, model: type[BaseModel]
) -> list[FieldError]:
    """Translate ``error``, raised by ``model`` validating ``data``, into `FieldError` items.

    Errors at the same key path (a union's members each complaining) are merged into one.

    Args:
        error: The validation error.
        data: The input that was validated, used to tell key paths from union member tags.
        model: The model that raised it, used to suggest keys for an unknown one.

    Returns:
        One `FieldError` per key path, in the order pydantic reported them.
    """
    grouped: dict[tuple[tuple[Part, ...], bool, bool], list[dict[str, Any]]] = {}
    for err in error.errors(include_url=False):
        missing = err["type"] == "missing"
        loc = tuple(err["loc"])
        if err["type"] in _TAG_ERRORS:  # a tagged union: the tag's own key is at fault
            loc = (*loc, str((err.get("ctx") or {}).get("discriminator", "")).strip("'"))
            missing = err["type"] == "union_tag_not_found"
        parts, at_key = _data_parts(loc, data, missing)
        grouped.setdefault((parts, at_key, missing), []).append(dict(err))
    meant = _meant_keys(grouped, model)
    result = []
    for (parts, at_key, missing), errs in grouped.items():
        if _another_member_went_deeper(parts, errs, grouped):
            continue
        if missing and parts in meant:  # said by the misspelt key's line (`_meant_keys`)
            continue
        misspelt = _misspelt_beside(parts, data, model) if missing else None
        if misspelt is not None:  # an open mapping (a component's `kind:` and its keys)
            result.append(
                FieldError(
                    parts=(*parts[:-1], misspelt),
                    message=f"unknown key{did_you_mean(misspelt, [parts[-1]])}",
                    at_key=True,
                )
            )
            continue
        messages = [_message(err, parts, model) for err in errs]
        result.append(
            FieldError(
                parts=parts,
                message=_merge(messages),
                at_key=at_key or any(err["type"] == "extra_forbidden" for err in errs),
                missing=missing,
            )
        )
    return result


def _meant_keys(
    grouped: Mapping[tuple[tuple[Part, ...], bool, bool], list[dict[str, Any]]],
    model: type[BaseModel],
) -> set[tuple[Part, ...]]:
    """The key paths of required keys that an unknown key beside them misspells
    (``sizng:`` for ``sizing:``): one mistake, told once, by the unknown key's line
    and its "did you mean"."""
    missing = {parts for parts, _, is_missing in grouped if is_missing}
    meant = set()
    for (parts, _, _), errs in grouped.items():
        if not parts or not any(err["type"] == "extra_forbidden" for err in errs):
            continue
        near = closest(str(parts[-1]), keys_at(model, parts[:-1]))
        if near is not None and (*parts[:-1], near) in missing:
            meant.add((*parts[:-1], near))
    return meant


def _misspelt_beside(parts: tuple[Part, ...], data: Any, model: type[BaseModel]) -> Part | None:
    """The key beside the missing required key at ``parts`` that misspells it, in a mapping
    that takes keys of its own (``features: [{knd: rsi, window: 14}]``: ``knd``, which
    `_meant_keys` cannot see, as no unknown key is an error there) and whose value the
    missing key would take, or None."""
    if not parts:
        return None
    holder: Any = data
    for part in parts[:-1]:
        in_list = isinstance(holder, list | tuple) and isinstance(part, int) and part < len(holder)
        if not (in_list or (isinstance(holder, Mapping) and part in holder)):
            return None
        holder = holder[part]
    if not isinstance(holder, Mapping):
        return None
    declared = set(keys_at(model, parts[:-1]))
    wanted = annotations_at(model, parts)
    for key, value in holder.items():
        if key in declared or closest(key, [parts[-1]]) is None:
            continue
        if any(_takes(annotation, value) for annotation in wanted):  # `window: 14` is no `kind`
            return str(key)
    return None


def _takes(annotation: Any, value: Any) -> bool:
    try:
        TypeAdapter(annotation).validate_python(value)
    except (ValidationError, TypeError, ValueError):  # not a value of it, or no such type
        return False
    return True


def _another_member_went_deeper(
    parts: tuple[Part, ...],
    errs: list[dict[str, Any]],
    grouped: Mapping[tuple[tuple[Part, ...], bool, bool], list[dict[str, Any]]],
) -> bool:
    """Whether ``errs`` are a union member's complaints about the type of the value at
    ``parts`` while another member took that type and found fault below it (``estimator:
    {clas: ...}``: not "expected a string" but the mapping's own keys)."""
    if not all(err["type"].endswith("_type") for err in errs):
        return False
    n = len(parts)
    return any(len(other) > n and other[:n] == parts for other, _, _ in grouped)


def _data_parts(loc: tuple[Any, ...], data: Any, missing: bool) -> tuple[tuple[Part, ...], bool]:
    # Pydantic's loc mixes keys with union member tags ('int', 'function-after[...]');
    # keep only the parts that name something in the data, and a missing key.
    parts: list[Part] = []
    current = data
    at_key = False
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if part == "[key]":
            at_key = True
            continue
        in_mapping = isinstance(current, Mapping) and part in current
        in_list = (
            isinstance(current, list | tuple) and isinstance(part, int) and 0 <= part < len(current)
        )
        if in_mapping or in_list:
            parts.append(part)
            current = current[part]
        elif last and missing:
            parts.append(part)
            current = None
    return tuple(parts), at_key


_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "int_parsing_size": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "string_unicode": "a string",
    "bytes_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
    "iterable_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "none_required": "null",
    "datetime_type": "a date-time such as 2024-01-01T00:00:00Z",
    "datetime_parsing": "a date-time such as 2024-01-01T00:00:00Z",
    "datetime_from_date_parsing": "a date-time such as 2024-01-01T00:00:00Z",
    "datetime_object_invalid": "a date-time such as 2024-01-01T00:00:00Z",
    "date_type": "a date such as 2024-01-01",
    "date_parsing": "a date such as 2024-01-01",
    "date_from_datetime_parsing": "a date such as 2024-01-01",
    "date_from_datetime_inexact": "a date such as 2024-01-01",
    "time_type": "a time such as 12:00:00",
    "time_parsing": "a time such as 12:00:00",
    "time_delta_type": "a duration (seconds, or ISO 8601 such as PT1H)",
    "time_delta_parsing": "a duration (seconds, or ISO 8601 such as PT1H)",
    "url_type": "a URL",
    "url_parsing": "a URL",
    "uuid_type": "a UUID",
    "uuid_parsing": "a UUID",
    "path_type": "a file path",
    "callable_type": "a callable",
}

_TAG_ERRORS = ("union_tag_invalid", "union_tag_not_found")
"""Errors of a tagged union (``kind: ...``) about its tag."""

_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _message(err: Mapping[str, Any], parts: tuple[Part, ...], model: type[BaseModel]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    was = show(value)
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(parts, model)
    if kind in _EXPECTED:
        if isinstance(value, SecretStr):
            return f"{SECRET_ONLY_MESSAGE}, was {was}"
        return f"expected {_EXPECTED[kind]}, was {was}"
    if kind in _BOUNDS:
        name, sign = _BOUNDS[kind]
        return f"must be {sign} {_number(ctx.get(name))}, was {was}"
    if kind == "multiple_of":
        return f"must be a multiple of {_number(ctx.get('multiple_of'))}, was {was}"
    if kind == "finite_number":
        return f"must be a finite number, was {was}"
    if kind == "union_tag_invalid":
        return f"expected one of {ctx.get('expected_tags')}, was {show(ctx.get('tag'))}"
    if kind == "union_tag_not_found":
        return "required key is missing"
    if kind in ("literal_error", "enum"):
        return f"expected {ctx.get('expected', 'one of the allowed values')}, was {was}"
    if kind == "too_short":
        return f"must have at least {_items(ctx.get('min_length'))}, was {_length(value)}"
    if kind == "too_long":
        return f"must have at most {_items(ctx.get('max_length'))}, was {_length(value)}"
    if kind == "string_too_short":
        return f"must be at least {_chars(ctx.get('min_length'))} long, was {was}"
    if kind == "string_too_long":
        return f"must be at most {_chars(ctx.get('max_length'))} long, was {was}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}, was {was}"
    text = str(err.get("msg", kind))
    for prefix in ("Value error, ", "Assertion failed, "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        text = text.replace("Input should be ", "expected ", 1)
    if _is_scalar(value) and " was " not in text:
        text = f"{text}, was {was}"
    return text


def _merge(messages: list[str]) -> str:
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    expected = []
    shown = set()
    for message in unique:
        head, sep, tail = message.rpartition(", was ")
        if not sep or not head.startswith("expected "):
            return unique[0]
        expected.append(head.removeprefix("expected "))
        shown.add(tail)
    if len(shown) != 1:
        return unique[0]
    choices = list(dict.fromkeys(expected))
    listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
    return f"expected {listed}, was {shown.pop()}"


def _unknown_key(parts: tuple[Part, ...], model: type[BaseModel]) -> str:
    known = keys_at(model, parts[:-1])
    key = str(parts[-1]) if parts else ""
    hint = did_you_mean(key, known)
    if hint:
        return f"unknown key{hint}"
    if known:
        return f"unknown key; valid keys: {', '.join(known)}"
    return "unknown key; no keys are accepted here"


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | Sequence) or isinstance(value, str)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return show(value)


def _items(count: Any) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def _chars(count: Any) -> str:
    return f"{count} character" if count == 1 else f"{count} characters"


def _length(value: Any) -> str:
    if isinstance(value, Sequence | Mapping | set | frozenset) and not isinstance(value, str):
        return "empty" if not value else _items(len(value))
    return show(value)
