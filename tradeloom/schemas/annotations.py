"""Find the declared type of a key path inside a params model.

Used to suggest the keys a model knows (for "did you mean") and to tell whether a key
is a secret field, without validating anything.
"""

from __future__ import annotations

import collections.abc
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

__all__ = ["annotations_at", "keys_at", "members"]


def annotations_at(model: type[BaseModel], parts: Sequence[str | int]) -> list[Any]:
    """Return the annotations that may declare the value at ``parts`` below ``model``.

    Args:
        model: The params model.
        parts: Key path below it (list indices as ints).

    Returns:
        Every candidate annotation (several when a union allows several shapes); empty if
        the path names a key the model does not declare. Below ``Any`` everything is ``Any``.
    """
    current: list[Any] = [model]
    for part in parts:
        following: list[Any] = []
        for annotation in current:
            for candidate in members(annotation):
                following.extend(_children(candidate, part))
        current = following
    return current


def keys_at(model: type[BaseModel], parts: Sequence[str | int]) -> list[str]:
    """Return the keys declared by the model(s) found at ``parts`` below ``model``."""
    names: list[str] = []
    for annotation in annotations_at(model, parts):
        for candidate in members(annotation):
            if _is_model(candidate):
                names.extend(field.alias or name for name, field in candidate.model_fields.items())
    return list(dict.fromkeys(names))


def members(annotation: Any) -> list[Any]:
    """Return the types ``annotation`` allows: union members, ``Annotated`` unwrapped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in members(arg)]
    return [] if annotation is type(None) else [annotation]


def _children(annotation: Any, part: str | int) -> list[Any]:
    if annotation is Any or annotation is object:
        return [Any]
    if _is_model(annotation):
        return [
            field.annotation
            for name, field in annotation.model_fields.items()
            if (field.alias or name) == part
        ]
    origin = get_origin(annotation) or annotation
    args = [arg for arg in get_args(annotation) if arg is not Ellipsis]
    if not isinstance(origin, type) or issubclass(origin, str | bytes):
        return []
    if issubclass(origin, collections.abc.Mapping):
        return [args[-1]] if args else [Any]
    if isinstance(part, int) and issubclass(origin, collections.abc.Iterable):
        return args or [Any]
    return []


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
