"""What a sweep ranks by: an objective over the variants' metrics, and the constraints
that reject a variant.

An objective is an expression over metric names (`OBJECTIVES`), numbers, ``+ - * /``
and parentheses, read by a small recursive-descent parser (never ``eval``)::

    sharpe
    sharpe - 0.5 * max_drawdown
    (total_return - fees / 100000) / (1 + max_drawdown_duration_days)

It is computed per variant in float64 as numpy computes it: a NaN or missing metric
makes the objective NaN, a division by zero an infinity (or NaN for ``0 / 0``). An
expression nests at most `MAX_DEPTH` levels (parentheses, signs and operators each one
level: ``a + b + c`` is two deep); a deeper one is refused in one line.

A constraint bounds one metric: ``min_<metric>: X`` (the metric must be ``>= X``) or
``max_<metric>: X`` (``<= X``); a metric whose own name starts with ``max_``
(``max_drawdown``, ``max_drawdown_duration_days``) is bounded above by its own name
(``max_drawdown: 0.25`` reads as it says). A variant that misses a bound, or whose
bounded metric is NaN, is *rejected*: ranked after every variant that meets them all,
and counted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.errors import UserError
from tradeloom.suggestions import closest, did_you_mean
from tradeloom.sweep.batch import METRIC_KEYS

__all__ = [
    "MAX_DEPTH",
    "OBJECTIVES",
    "Constraint",
    "Objective",
    "ObjectiveError",
    "parse_constraints",
    "parse_objective",
    "rejections",
]

_NOT_NUMBERS = frozenset({"rejections", "halt"})
OBJECTIVES = tuple(k for k in METRIC_KEYS if k not in _NOT_NUMBERS)
"""The metrics an objective or a constraint can name."""

MAX_DEPTH = 100
"""The deepest an objective's expression may nest: parentheses, signs and operators each
count one level (its parser and evaluation recurse once per level)."""

_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_]\w*)|(.))"
)


class ObjectiveError(UserError):
    """A bad objective or constraint: ``where`` and what is wrong (``message``)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class _Node:
    op: str  # "num", "name", "neg", "+", "-", "*", "/"
    value: Any = None
    left: _Node | None = None
    right: _Node | None = None
    depth: int = 0  # operators below it, itself included (a number or a metric: 0)


@dataclass(frozen=True)
class Objective:
    """A parsed objective.

    Attributes:
        text: As written.
        names: The metrics it reads, in the order written (each once).
    """

    text: str
    names: tuple[str, ...]
    _tree: _Node

    @property
    def is_metric(self) -> bool:
        """Return whether the objective is one metric's name alone."""
        return self._tree.op == "name"

    def values(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the objective of each row of ``frame`` (its metrics' columns) as floats."""
        columns = {
            name: pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)
            if name in frame
            else np.full(len(frame), math.nan)
            for name in self.names
        }
        with np.errstate(all="ignore"):
            out = _evaluate(self._tree, columns)
        return np.broadcast_to(np.asarray(out, np.float64), (len(frame),)).copy()

    def value_of(self, metrics: Mapping[str, Any]) -> float:
        """Return the objective of one variant's metrics (NaN: none)."""
        columns = {name: np.array([_scalar(metrics.get(name))]) for name in self.names}
        with np.errstate(all="ignore"):
            return float(np.asarray(_evaluate(self._tree, columns), np.float64).reshape(-1)[0])


def parse_objective(text: str, where: str = "--objective") -> Objective:
    """Return the objective written as ``text``.

    Raises:
        UserError: A syntax error (with the column) or an unknown metric (did-you-mean).
    """
    tokens = _tokens(text, where)
    parser = _Parser(tokens, text, where)
    tree = parser.expression()
    if parser.at < len(tokens):
        column, token = tokens[parser.at][1], tokens[parser.at][2]
        raise ObjectiveError(where, f"unexpected '{token}' at column {column} of '{text}'")
    names: list[str] = []
    _collect(tree, names)
    for name in names:
        if name not in OBJECTIVES:
            near = closest(name, OBJECTIVES)
            hint = f"did you mean '{near}'? " if near is not None else ""
            what = f"objective '{name}'" if tree.op == "name" else f"metric '{name}' in '{text}'"
            raise ObjectiveError(where, f"unknown {what} ({hint}one of: {', '.join(OBJECTIVES)})")
    return Objective(text=text.strip(), names=tuple(dict.fromkeys(names)), _tree=tree)


@dataclass(frozen=True)
class Constraint:
    """A bound on one metric.

    Attributes:
        key: As written (``min_trades``).
        metric: The metric bounded.
        bound: The bound.
        lower: True: the metric must be ``>= bound``; False: ``<= bound``.
    """

    key: str
    metric: str
    bound: float
    lower: bool

    def __str__(self) -> str:
        return f"{self.metric} {'>=' if self.lower else '<='} {self.bound:g}"

    def meets(self, values: np.ndarray) -> np.ndarray:
        """Return, per value, whether it meets the bound (NaN never does)."""
        with np.errstate(invalid="ignore"):
            return values >= self.bound if self.lower else values <= self.bound


def parse_constraints(given: Mapping[str, Any], where: str = "constraints") -> list[Constraint]:
    """Return the constraints of ``{min_<metric>|max_<metric>: number}``.

    Raises:
        UserError: An unknown key (with a did-you-mean) or a bound that is not a number.
    """
    choices = [f"min_{m}" for m in OBJECTIVES] + [f"max_{m}" for m in OBJECTIVES]
    choices += [m for m in OBJECTIVES if m.startswith("max_")]
    out: list[Constraint] = []
    for key, bound in given.items():
        metric, lower = _bounded(str(key))
        if metric is None:
            hint = did_you_mean(key, choices)
            raise ObjectiveError(
                f"{where}.{key}",
                f"not a bound{hint}; write min_<metric> or max_<metric>, "
                f"a metric one of: {', '.join(OBJECTIVES)}",
            )
        if isinstance(bound, bool) or not isinstance(bound, int | float) or math.isnan(bound):
            raise ObjectiveError(f"{where}.{key}", f"expected a number, was {bound!r}")
        out.append(Constraint(str(key), metric, float(bound), lower))
    return out


def rejections(frame: pd.DataFrame, constraints: Sequence[Constraint]) -> pd.Series:
    """Return, per row, the first constraint it misses as text (``''``: it meets all)."""
    reasons = np.full(len(frame), "", dtype=object)
    for constraint in constraints:
        values = pd.to_numeric(frame[constraint.metric], errors="coerce").to_numpy(np.float64)
        missed = ~constraint.meets(values) & (reasons == "")
        for row in np.flatnonzero(missed):
            reasons[row] = f"{constraint.metric} {_number(values[row])} misses {constraint}"
    return pd.Series(reasons, index=frame.index, dtype=object)


def _bounded(key: str) -> tuple[str | None, bool]:
    for prefix, lower in (("min_", True), ("max_", False)):
        if key.startswith(prefix) and key.removeprefix(prefix) in OBJECTIVES:
            return key.removeprefix(prefix), lower
    if key in OBJECTIVES and key.startswith("max_"):
        return key, False
    return None, False


def _scalar(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        try:
            return float(pd.to_numeric(value))
        except (TypeError, ValueError):
            return math.nan
    return float(value)


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.6g}"


def _tokens(text: str, where: str) -> list[tuple[str, int, str]]:
    tokens: list[tuple[str, int, str]] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        assert match is not None  # the last alternative takes any character
        number, name, other = match.groups()
        column = match.start(match.lastindex or 0) + 1
        if number is not None:
            tokens.append(("num", column, number))
        elif name is not None:
            tokens.append(("name", column, name))
        elif other in "+-*/()":
            tokens.append((other, column, other))
        else:
            raise ObjectiveError(
                where,
                f"unexpected '{other}' at column {column} of '{text}' (an objective "
                "is metric names, numbers, + - * / and parentheses)",
            )
        position = match.end()
    if not tokens:
        raise ObjectiveError(where, "empty objective; name a metric, e.g. sharpe")
    return tokens


class _Parser:
    """expression := term (('+' | '-') term)*; term := factor (('*' | '/') factor)*;
    factor := ('+' | '-') factor | number | name | '(' expression ')'."""

    def __init__(self, tokens: list[tuple[str, int, str]], text: str, where: str) -> None:
        self.tokens = tokens
        self.text = text
        self.where = where
        self.at = 0

    def _peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def expression(self, depth: int = 0) -> _Node:
        node = self.term(depth)
        while self._peek() in ("+", "-"):
            op = self.tokens[self.at][0]
            self.at += 1
            node = self._node(op, node, self.term(depth))
        return node

    def term(self, depth: int) -> _Node:
        node = self.factor(depth)
        while self._peek() in ("*", "/"):
            op = self.tokens[self.at][0]
            self.at += 1
            node = self._node(op, node, self.factor(depth))
        return node

    def factor(self, depth: int) -> _Node:
        if self.at >= len(self.tokens):
            raise ObjectiveError(
                self.where, f"'{self.text.strip()}' ends early (expected a number, a metric or '(')"
            )
        kind, column, token = self.tokens[self.at]
        self.at += 1
        if kind in ("+", "-", "("):  # one level deeper: refused before the recursion
            self._check_depth(depth + 1)
        if kind in ("+", "-"):
            inner = self.factor(depth + 1)
            return inner if kind == "+" else self._node("neg", inner)
        if kind == "num":
            return _Node("num", float(token))
        if kind == "name":
            return _Node("name", token)
        if kind == "(":
            node = self.expression(depth + 1)
            if self._peek() != ")":
                raise ObjectiveError(self.where, f"a '(' is not closed in '{_short(self.text)}'")
            self.at += 1
            return node
        raise ObjectiveError(
            self.where,
            f"unexpected '{token}' at column {column} of '{self.text.strip()}' "
            "(expected a number, a metric or '(')",
        )

    def _node(self, op: str, left: _Node, right: _Node | None = None) -> _Node:
        """An operator's node, refused when it would nest deeper than `MAX_DEPTH`."""
        depth = 1 + max(left.depth, right.depth if right is not None else 0)
        self._check_depth(depth)
        return _Node(op, left=left, right=right, depth=depth)

    def _check_depth(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ObjectiveError(
                self.where,
                f"'{_short(self.text)}' nests deeper than {MAX_DEPTH} levels (parentheses, "
                "signs and operators each count one); write it shorter",
            )


def _short(text: str) -> str:
    """An objective as a message quotes it: at most 60 characters."""
    text = text.strip()
    return text if len(text) <= 60 else f"{text[:57]}..."


def _collect(node: _Node, names: list[str]) -> None:
    if node.op == "name":
        names.append(node.value)
    for child in (node.left, node.right):
        if child is not None:
            _collect(child, names)


def _evaluate(node: _Node, columns: Mapping[str, np.ndarray]) -> Any:
    if node.op == "num":
        return node.value
    if node.op == "name":
        return columns[node.value]
    assert node.left is not None
    left = _evaluate(node.left, columns)
    if node.op == "neg":
        return -left
    assert node.right is not None
    right = _evaluate(node.right, columns)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    return np.divide(left, right)
