"""No core kernel takes more than 8 parameters: a bundle of arrays counts as one (issue 45).

A kernel of the bar passes the state as the named bundles of `tradeloom.core.context`
(`State`, `Bars`, `Settings`, an `Order`), not array by array. The kernels not there yet
are listed with the count they have: the list and the counts can only go down.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tradeloom.core

MAX_PARAMETERS = 8
DECORATORS = frozenset({"core_kernel", "core_stage", "core_loop", "kernel"})
CORE = Path(tradeloom.core.__file__).parent

# what is left (module, kernel): its parameters today
LEFT: dict[tuple[str, str], int] = {}


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def kernel_parameters(root: Path) -> dict[tuple[str, str], int]:
    """Return how many parameters each kernel of ``root``'s modules takes, by (module, name)."""
    found: dict[tuple[str, str], int] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                _decorator_name(d) in DECORATORS for d in node.decorator_list
            ):
                args = node.args
                count = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
                count += (args.vararg is not None) + (args.kwarg is not None)
                found[path.relative_to(root).as_posix(), node.name] = count
    return found


def test_the_scan_finds_the_bars_kernels() -> None:
    found = kernel_parameters(CORE)
    assert found["orders.py", "send_order"] == 4
    assert found["bar.py", "_send"] == 7
    assert len(found) > 100


def test_no_core_kernel_takes_more_than_eight_parameters() -> None:
    over = {
        key: count
        for key, count in kernel_parameters(CORE).items()
        if count > MAX_PARAMETERS and LEFT.get(key, MAX_PARAMETERS) < count
    }
    assert over == {}, f"core kernels over {MAX_PARAMETERS} parameters (bundle the state): {over}"


def test_the_kernels_left_are_still_over() -> None:
    found = kernel_parameters(CORE)
    done = {key for key in LEFT if found.get(key, 0) <= MAX_PARAMETERS}
    assert done == set(), f"take these off LEFT, they are done: {sorted(done)}"


def test_a_kernel_over_eight_is_found(tmp_path: Path) -> None:
    (tmp_path / "wide.py").write_text(
        "@core_kernel\ndef wide(a, b, c, d, e, f, g, h, i):\n    pass\n\n"
        "@kernel\ndef narrow(st, t, s):\n    pass\n\n"
        "def plain(a, b, c, d, e, f, g, h, i, j):\n    pass\n",
        encoding="utf-8",
    )
    assert kernel_parameters(tmp_path) == {("wide.py", "wide"): 9, ("wide.py", "narrow"): 3}
