"""Validate every variant of a sweep before anything runs; report every problem together.

A variant is the strategy file with its axes' values applied as ``--set`` applies them,
validated by the same loader and built by the same wiring as ``tradeloom run``. Each
axis value is first checked on its own (a bad value is reported once, not once per
combination it appears in), then every combination (cross-field rules). A problem
at or around an axis's key path is located where the axis was written (``--grid ARG``
or the sweep file's ``FILE:LINE:COL``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.errors import ConfigError, Problem
from tradeloom.plugins import manager
from tradeloom.plugins.manager import Plugins
from tradeloom.schemas import load_strategy
from tradeloom.schemas.yaml_loader import YamlDocument, parse_yaml, read_strategy_text
from tradeloom.sweep.space import Axis, Variant, override_text

__all__ = ["CheckedVariant", "StrategySource", "check_variants"]


@dataclass(frozen=True)
class CheckedVariant:
    """A valid variant: its overrides, its validated strategy and its built components."""

    variant: Variant
    overrides: tuple[str, ...]
    pipeline: Pipeline


class StrategySource:
    """The strategy file, read once; builds any variant of it.

    Args:
        path: The strategy file.
        overrides: ``--set`` strings applied to every variant, before the axes.
        text: The file's text, sent with a task (a Dask worker need not see the file;
            its relative paths still resolve against ``path``'s folder). None: read it.
    """

    def __init__(self, path: Path, overrides: Sequence[str] = (), text: str | None = None) -> None:
        self.path = path
        self.overrides = tuple(overrides)
        self.text = read_strategy_text(path) if text is None else text
        self.document: YamlDocument = parse_yaml(self.text, str(path))  # as `load_yaml`
        self._load_plugins: Callable[[Sequence[str]], Plugins] = _plugins_once()

    def build(self, overrides: Sequence[str]) -> Pipeline:
        """Return the built strategy with ``overrides`` applied after the base ones.

        Raises:
            ConfigError: Every problem of that variant.
        """
        config, _ = load_strategy(
            self.path,
            (*self.overrides, *overrides),
            load_plugins=self._load_plugins,
            document=self.document,
        )
        return build_pipeline(config)

    def problems(self, overrides: Sequence[str]) -> list[Problem]:
        """Return the problems of the variant with ``overrides`` (empty: valid)."""
        try:
            self.build(overrides)
        except ConfigError as exc:
            return list(exc.problems)
        return []


def check_variants(
    source: StrategySource,
    axes: Sequence[Axis],
    variants: Sequence[Variant],
    earlier: Sequence[Problem] = (),
) -> list[CheckedVariant]:
    """Validate and build every variant; raise every problem found, each once.

    Each axis value the variants use is validated alone first, so that a bad value is
    reported once at its axis, not once per variant. With no variants (optuna, which
    proposes them later) every value of every axis is. A random draw from a huge grid
    validates the values it drew only: never the grid, nor all of an axis.

    Args:
        source: The strategy file.
        axes: The axes.
        variants: The variants to build.
        earlier: Problems found before (axes that could not be read), raised with these.

    Raises:
        ConfigError: The base file is invalid, an axis value is invalid, or a
            combination breaks a rule; the axes' problems are located at the axis.
    """
    base = source.problems(())
    if base:
        raise ConfigError([*earlier, *base])
    problems: list[Problem] = list(earlier)
    for k, axis in enumerate(axes):
        used = {repr(v.values[k]): v.values[k] for v in variants} if variants else None
        for value in axis.values if used is None else used.values():
            found = source.problems([override_text(axis.key, value)])
            problems.extend(_relocate(found, axes))
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    checked = []
    for variant in variants:
        overrides = tuple(variant.overrides(axes))
        try:
            pipeline = source.build(overrides)
        except ConfigError as exc:
            problems.extend(_relocate(exc.problems, axes, variant))
            continue
        checked.append(CheckedVariant(variant, overrides, pipeline))
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    return checked


def _relocate(
    problems: Sequence[Problem], axes: Sequence[Axis], variant: Variant | None = None
) -> list[Problem]:
    """Locate each problem at the axis whose key it concerns (the deepest such axis)."""
    out = []
    for problem in problems:
        owner = None
        for axis in axes:
            key, path = axis.key, problem.path
            if path == key or path.startswith(key + ".") or key.startswith(path + "."):
                owner = axis
        if owner is None:
            out.append(problem)
            continue
        message = problem.message
        if variant is not None:
            values = ", ".join(f"{a.key}={v!r}" for a, v in zip(axes, variant.values, strict=True))
            message = f"{message} (in the variant {values})"
        out.append(Problem(owner.where, problem.path, message))
    return out


def _plugins_once() -> Callable[[Sequence[str]], Plugins]:
    @cache
    def load(modules: tuple[str, ...]) -> Plugins:
        return manager.load_plugins(modules)

    return lambda modules: load(tuple(modules))
