"""Optional surfaces and the extra that installs each: a missing one is one line, exit 2.

``pip install tradeloom`` installs what a backtest, a paper run and a live run need. A
sweep's optuna sampler, a Dask cluster, the PostgreSQL journal, a live run's Prometheus
endpoint and the convex allocators (cvxpy) each need a library of their own,
installed by an extra (pyproject.toml). Every import of one of those libraries goes
through `require` first, so that a user who asks for the surface without its extra reads
which extra to install instead of a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util

from tradeloom.errors import UserError

__all__ = ["EXTRAS", "MissingExtra", "install_command", "require", "require_installed"]

EXTRAS: dict[str, str] = {
    "optuna": "sweep",
    "distributed": "dask",
    "psycopg": "postgres",
    "prometheus_client": "metrics",
    "cvxpy": "allocation",
    "torch": "torch",
    "mcp": "mcp",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "skl2onnx": "onnx",
    "onnxmltools": "onnx",
    "mlflow": "mlflow",
    "httpx2": "text",
    "wordllama": "text",
    "nats": "broker",
    "redis": "broker",
}
"""The optional libraries' modules and the extra (``tradeloom[EXTRA]``) that installs each."""


_FIRST: dict[str, str] = {
    # the default torch wheel on Linux is the CUDA build, several GB (docs/installing.md)
    "torch": "pip install torch --index-url https://download.pytorch.org/whl/cpu",
}


def install_command(module: str) -> str:
    """Return what installs ``module`` (a key of `EXTRAS`): ``pip install 'tradeloom[EXTRA]'``,
    for torch after its CPU build where no GPU is wanted."""
    command = f"pip install 'tradeloom[{EXTRAS[module]}]'"
    first = _FIRST.get(module)
    return command if first is None else f"{command} (without a GPU, first: {first})"


class MissingExtra(UserError):
    """A command needs an optional library that is not installed; names the extra."""


def require(module: str, what: str) -> None:
    """Import ``module`` (an optional library), or say which extra installs it.

    Call it before importing the library: the import that follows then finds the module
    already loaded.

    Args:
        module: The library's top-level module, a key of `EXTRAS` (``optuna``).
        what: What needs it, as the user asked for it (``tradeloom sweep --sampler tpe``).

    Raises:
        MissingExtra: The library cannot be imported: ``what needs optuna: pip install
            'tradeloom[sweep]'``.
    """
    try:
        importlib.import_module(module)
    except ImportError as exc:
        broken = "" if exc.name in (module, None) else f" (it cannot import {exc.name})"
        raise MissingExtra(f"{what} needs {module}{broken}: {install_command(module)}") from None


def require_installed(module: str, what: str) -> None:
    """Say which extra installs ``module`` if it is not installed, without importing it.

    What `validate` asks of a file that names an optional surface it will not use now
    (cvxpy's import alone is a second of CPU); the run's own `require` imports it, and says
    then if an installed one cannot be imported.

    Raises:
        MissingExtra: ``module`` is not installed (the line `require` gives).
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:  # a finder that refuses it (or a broken install) is no module either
        found = False
    if not found:
        raise MissingExtra(f"{what} needs {module}: {install_command(module)}")
