"""Whether a saved model fits this strategy and this Python environment, and if not why.

`library_versions` is what the registry records when it saves a model. Then two
questions, each answered with None (it fits) or a message that says what differs:
the libraries the model was saved with (a scikit-learn pickle is only promised to load
into the version that wrote it), and the features it was trained on (a model fed other
columns, or columns computed with other parameters, predicts nonsense without a sound).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import platform
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tradeloom.plugins.model.metadata import FeatureSpec
from tradeloom.version import __version__

__all__ = ["feature_problem", "library_versions", "version_problem"]

_CORE_LIBRARIES = {
    "numpy": "numpy",
    "scipy": "scipy",
    "scikit-learn": "sklearn",
    "pandas": "pandas",
}
"""Distribution name -> module of the libraries every metadata file records."""

_MATCHED_PARTS = {"scikit-learn": 2, "numpy": 1}
"""Library -> how many leading version numbers must match (major.minor, or major)."""

_WEIGHTS_PARTS = {"torch": 1}
"""A file of weights (a torch fold): the libraries that must match, and in how many parts."""

_NOT_COMPARED = frozenset({"python", "tradeloom", "scipy", "pandas"})
"""Recorded for the record; pickles of the estimators do not depend on their versions."""

_SHOWN = 3


def library_versions(estimator_package: str | None = None) -> dict[str, str]:
    """Return the versions of Python, numpy, scipy, scikit-learn, pandas and tradeloom.

    Looked up once per process and package (reading the installed distributions' metadata
    was a tenth of saving a 2,000-fold run's models, a look-up per fold).

    Args:
        estimator_package: A third-party estimator's top-level package: the distribution
            that installs it is recorded too (under its distribution name).
    """
    return dict(_library_versions(estimator_package))


@functools.cache
def _library_versions(estimator_package: str | None) -> dict[str, str]:
    versions = {"python": platform.python_version(), "tradeloom": __version__}
    for distribution in _CORE_LIBRARIES:
        versions[distribution] = importlib.metadata.version(distribution)
    if estimator_package and estimator_package not in {*_CORE_LIBRARIES.values(), "tradeloom"}:
        found = _distribution_version(estimator_package)
        if found is not None:
            versions[found[0]] = found[1]
    return versions


def version_problem(saved: Mapping[str, str], *, weights_only: bool = False) -> str | None:
    """Return why a model saved with library versions ``saved`` cannot be loaded here.

    scikit-learn must match in major.minor and numpy in major; a third-party estimator's
    package, when recorded, in major.minor, and it must be installed. A file of weights
    (``weights_only``: a torch fold, no pickle of any library's objects) needs only
    torch, of the same major version: torch reads another release's tensors and a
    module's state dict keeps its names within a major version.
    """
    if weights_only:
        if "torch" not in saved:
            return "its metadata records no torch version"
        rules = dict(_WEIGHTS_PARTS)
    else:
        for library in _MATCHED_PARTS:
            if library not in saved:
                return f"its metadata records no {library} version"
        rules = dict(_MATCHED_PARTS)
        rules.update({lib: 2 for lib in saved if lib not in _NOT_COMPARED and lib not in rules})
    for library, parts in rules.items():
        there = saved[library]
        try:
            here = importlib.metadata.version(library)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            # ValueError: a name importlib refuses; the metadata's own check names it first
            return f"it was saved with {library} {there}, which is not installed here"
        if _release(there)[:parts] != _release(here)[:parts]:
            what = "major.minor" if parts == 2 else "major"
            return (
                f"it was saved with {library} {there}, this is {library} {here} "
                f"(the {what} version must match); retrain it here or install {library} "
                f"{'.'.join(map(str, _release(there)[:parts]))}"
            )
    return None


def feature_problem(
    model: FeatureSpec, features: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> str | None:
    """Return how this strategy's features differ from those ``model`` was trained on.

    Args:
        model: The saved model's feature specification.
        features: This strategy's (`StrategyConfig.feature_spec`).
        columns: The columns this strategy's features produce, in order.

    Returns:
        None if the specifications and the columns are equal; else the differences
        (the first few feature entries by key path, then the columns).
    """
    entries = _entry_differences(model.features, [dict(f) for f in features])
    column_text = _column_differences(model.columns, list(columns))
    if not entries and not column_text:
        return None
    shown = entries[:_SHOWN] + ([f"{len(entries) - _SHOWN} more"] if len(entries) > _SHOWN else [])
    return "; ".join([*shown, *([column_text] if column_text else [])])


def _entry_differences(theirs: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[str]:
    out = []
    for i in range(max(len(theirs), len(ours))):
        where = f"features.{i}"
        if i >= len(theirs):
            out.append(f"{where} ({ours[i].get('kind')}) is not in the model's features")
            continue
        if i >= len(ours):
            out.append(f"{where} ({theirs[i].get('kind')}) of the model's features is missing here")
            continue
        there, here = theirs[i], ours[i]
        if there.get("kind") != here.get("kind"):
            out.append(f"{where} is {here.get('kind')} here, {there.get('kind')} in the model")
            continue
        for key in sorted(set(there) | set(here)):
            if there.get(key, _ABSENT) != here.get(key, _ABSENT):
                out.append(
                    f"{where} ({here.get('kind')}) {key} is {_show(here, key)} here, "
                    f"{_show(there, key)} in the model"
                )
    return out


def _column_differences(theirs: list[str], ours: list[str]) -> str:
    if theirs == ours:
        return ""
    missing = [c for c in theirs if c not in ours]
    extra = [c for c in ours if c not in theirs]
    if not missing and not extra:
        return f"columns in another order: the model's are {', '.join(theirs)}"
    parts = []
    if missing:
        parts.append(f"columns missing here: {', '.join(missing)}")
    if extra:
        parts.append(f"columns not in the model: {', '.join(extra)}")
    return "; ".join(parts)


_ABSENT = object()


def _show(entry: Mapping[str, Any], key: str) -> str:
    if key not in entry:
        return "not set"
    return json.dumps(entry[key])


def _release(version: str) -> tuple[int, ...]:
    match = re.match(r"^\s*v?(\d+)(?:\.(\d+))?", version)
    if match is None:
        return ()
    return tuple(int(part) for part in match.groups() if part is not None)


def _distribution_version(package: str) -> tuple[str, str] | None:
    # the distribution that installs an import package (lightgbm -> lightgbm, but
    # sklearn -> scikit-learn): versions are recorded and looked up by distribution
    for distribution in importlib.metadata.packages_distributions().get(package, []):
        try:
            return distribution, importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
