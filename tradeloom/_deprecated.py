"""Deprecations of the public API: a warning for at least one minor release, then removal.

`tradeloom.plugin` (and `tradeloom.testing`) change only this way, as pytest's public names
do. A name that is renamed or removed stays importable for at least one minor release and
warns where it is used::

    # tradeloom/plugin.py, after `OldName` became `NewName` in 0.3
    def __getattr__(name: str) -> object:
        if name == "OldName":
            deprecated(
                "tradeloom.plugin.OldName", since="0.3", use_instead="NewName", removed_in="0.4"
            )
            return NewName
        raise AttributeError(f"module 'tradeloom.plugin' has no attribute {name!r}")

and CHANGELOG.md's "Deprecated" section says so in the same change, naming the release
that removes it (``removed_in``: a later minor release than ``since``, so that a user has
one minor release of warnings at least). A plugin author's test
suite turns the warnings into errors with
``-W error::tradeloom.plugin.TradeloomDeprecationWarning``.
"""

from __future__ import annotations

import warnings

__all__ = ["TradeloomDeprecationWarning", "deprecated"]


class TradeloomDeprecationWarning(DeprecationWarning):
    """A public name of tradeloom that is deprecated and will be removed.

    A `DeprecationWarning`, so that Python shows it in tests and ``__main__`` and hides it
    from the users of a finished program; a subclass, so that it can be filtered alone.
    """


def deprecated(
    name: str, since: str, use_instead: str, *, removed_in: str, stacklevel: int = 2
) -> None:
    """Warn that ``name`` is deprecated, where the caller's caller uses it.

    Args:
        name: The deprecated name, as it is imported (``tradeloom.plugin.OldName``).
        since: The release that deprecated it (``0.3``).
        use_instead: What to use instead, as a user writes it (``NewName``).
        removed_in: The release that removes it (``0.4``): a later minor release than
            ``since``.
        stacklevel: Frames above the caller of `deprecated` to blame (2: whoever called
            the function that calls `deprecated`, e.g. the code reading a module attribute).

    Warns:
        TradeloomDeprecationWarning: ``NAME is deprecated since tradeloom SINCE and will be
            removed in tradeloom REMOVED_IN; use USE_INSTEAD``.

    Raises:
        ValueError: ``removed_in`` is not a later minor release than ``since`` (a mistake
            of tradeloom's, found by the first test that warns).
    """
    if _minor(removed_in) <= _minor(since):
        raise ValueError(f"{name}: removed in {removed_in}, not a later minor release than {since}")
    warnings.warn(
        TradeloomDeprecationWarning(
            f"{name} is deprecated since tradeloom {since} and will be removed in tradeloom "
            f"{removed_in}; use {use_instead}"
        ),
        stacklevel=stacklevel + 1,
    )


def _minor(release: str) -> tuple[int, int]:
    """Return the (major, minor) of a release written ``X.Y`` or ``X.Y.Z``."""
    major, minor = release.split(".")[:2]
    return int(major), int(minor)
