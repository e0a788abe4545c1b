"""A strategy given to the Python API as a mapping, and keyword overrides: the mapping
as the YAML file a run reads (its relative paths made absolute), each override as the
``--set`` text of the command.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tradeloom.errors import UserError

__all__ = ["DICT_SOURCE", "absolute_paths", "override_text", "plain_value", "yaml_text"]

DICT_SOURCE = "<dict>"
"""What a strategy given as a mapping is named in messages."""


def override_text(key: str, value: Any) -> str:
    """Return ``--set``'s text for a keyword override (``risk__sizing__fraction=0.5``)."""
    path = key.replace("__", ".")
    return f"{path}={json.dumps(value, default=plain_value)}"


def plain_value(value: Any) -> Any:
    """Return a numpy scalar as the Python number it holds (a notebook's values often are);
    anything else as its text."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return str(value)


def yaml_text(document: Any) -> str:
    """Return a document (a notebook's dict) as YAML text.

    Raises:
        UserError: It holds a value YAML cannot (a numpy array, an object).
    """
    import yaml

    try:
        return str(yaml.safe_dump(document, sort_keys=False))
    except yaml.YAMLError as exc:  # a value YAML cannot hold (a numpy number, an object)
        value = exc.args[-1] if exc.args else exc
        raise UserError(
            f"{DICT_SOURCE}: {value!r} cannot be written as YAML; give plain numbers, "
            "strings, booleans, lists and dicts"
        ) from None


def absolute_paths(document: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Return ``document`` with each component's relative ``path`` made absolute and numpy
    scalars as Python numbers.

    Raises:
        UserError: A dict or list holds itself (a document is a tree).
    """
    inside: list[int] = []  # the containers around the value being walked

    def walk(value: Any, where: str) -> Any:
        if type(value).__module__ == "numpy" and hasattr(value, "item"):
            return value.item()  # np.float64(0.3) from a notebook's arithmetic: 0.3
        if not isinstance(value, Mapping | list):
            return value
        if id(value) in inside:
            raise UserError(
                f"{DICT_SOURCE}: {where or 'the document'}: a dict or list inside itself; "
                "give plain dicts, lists and values"
            )
        inside.append(id(value))
        try:
            if isinstance(value, list):
                return [walk(v, f"{where}.{i}".lstrip(".")) for i, v in enumerate(value)]
            out = {k: walk(v, f"{where}.{k}".lstrip(".")) for k, v in value.items()}
        finally:
            inside.pop()
        path = out.get("path")
        if isinstance(path, str) and path and not Path(path).expanduser().is_absolute():
            out["path"] = str(folder / path)
        return out

    return walk(document, "")  # type: ignore[no-any-return]
