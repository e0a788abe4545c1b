"""``tradeloom sweep``: explore a strategy's settings; rank, persist and judge the variants.

``tradeloom sweep FILE --grid key.path=v1,v2 --grid key.path=start:stop:step`` runs
every combination (``--random N``: N of them drawn with ``--seed``; ``--search optuna
--trials N``: optuna's TPE sampler), ranks them by ``--objective`` and writes the sweep
directory (``--out``; default ``sweeps/<name>-<hash of the sweep>``, so the same command
resumes the same sweep):

- ``results.parquet``: one row per variant: ``key``, ``param.<key path>`` per axis,
  every metric (`tradeloom.sweep.batch.METRIC_KEYS`), ``objective_value``, ``rank``,
  ``dsr``, the stage hashes (``hash.*``), ``seconds`` and the ``overrides`` that make it;
  with constraints, ``rejected`` (the bound a variant missed, empty if none); with
  several objectives, ``objective_1``... and ``pareto_front``;
- ``pareto.html``: with several objectives, the Pareto front (each point's deflated
  Sharpe ratio beside it);
- ``returns.npy``: ``[bars, variants]`` bar returns (float32), in the rows' order;
- ``overfitting.json`` and ``sweep.html``: the deflated Sharpe ratio and the PBO with
  their inputs, heatmaps or parallel coordinates, the leaderboard;
- ``runs/``: run directories of the best ``--keep-top K`` variants (all: ``--keep-runs``).

``tradeloom run FILE --variant SWEEP_DIR:ROW`` replays a row (its number in
``results.parquet``, or its ``key``). FILE may also be a sweep file
(`tradeloom.sweep.sweep_file`); options given on the command line win over it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.arguments import given_path, non_negative_int, positive_int
from tradeloom.errors import UserError
from tradeloom.reporting.json_output import add_json_option

if TYPE_CHECKING:
    from tradeloom.sweep.walk_forward import WalkForwardSpec

__all__ = ["SweepVariant", "add_sweep_parser", "variant_overrides"]


def add_sweep_parser(sub: Any) -> None:
    """Add the ``sweep`` subcommand to the CLI's subparsers."""
    # only what parsing needs: `tradeloom --help` imports no pandas, numpy or schemas
    from tradeloom.sweep.limits import DEFAULT_MAX_VARIANTS

    p = sub.add_parser(
        "sweep",
        help="run many variants of a strategy (grid, random, optuna); rank and judge them",
        description="Run every variant of FILE (a strategy file, or a sweep file naming one) "
        "given by the axes, sharing the data, features and model predictions between "
        "variants and running those that differ downstream in one compiled call. Writes "
        "results.parquet, returns.npy, overfitting.json and sweep.html to the sweep "
        "directory; the same command resumes an interrupted sweep. Exit 0, 1 run "
        "failure, 2 invalid input.",
    )
    p.add_argument("file", type=given_path)
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY.PATH=V1,V2|START:STOP:STEP",
        help="an axis: listed values, or a range with the stop included (repeatable)",
    )
    p.add_argument("--random", type=positive_int, metavar="N", help="N distinct combinations")
    p.add_argument("--search", choices=["grid", "optuna"], help="grid (default) or optuna")
    p.add_argument("--trials", type=positive_int, metavar="N", help="optuna's trials")
    p.add_argument(
        "--objective",
        metavar="EXPR",
        help="ranked by: a metric or an expression of metrics, numbers, + - * / and "
        "parentheses, e.g. 'sharpe - 0.5 * max_drawdown' (default sharpe)",
    )
    p.add_argument(
        "--objectives",
        metavar="EXPR,EXPR,...",
        help="two or more objectives, each maximized (write -max_drawdown to minimise one): "
        "ranks by Pareto front, writes pareto.html; with --search optuna, NSGA-II",
    )
    p.add_argument(
        "--constraint",
        action="append",
        default=[],
        metavar="min_METRIC=X|max_METRIC=X",
        help="reject a variant below (min_) or above (max_) a bound, e.g. min_trades=20; "
        "rejected variants rank last (repeatable)",
    )
    p.add_argument("--direction", choices=["maximize", "minimize"], help="default maximize")
    p.add_argument("--seed", type=non_negative_int, metavar="S", help="of --random and optuna")
    p.add_argument("--out", metavar="DIR", help="the sweep directory")
    p.add_argument(
        "--max-variants",
        type=positive_int,
        metavar="N",
        help=f"refuse a sweep of more variants (default {DEFAULT_MAX_VARIANTS:,})",
    )
    p.add_argument("--keep-top", type=non_negative_int, metavar="K", help="run dirs of the best K")
    p.add_argument("--keep-runs", action="store_true", help="a run directory for every variant")
    p.add_argument("--cache-dir", metavar="DIR", help="stage cache (default DIR/cache)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N", help="local processes")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a Dask scheduler to run on")
    p.add_argument(
        "--scheduler-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the scheduler and a worker (default 10)",
    )
    p.add_argument(
        "--partitions",
        type=positive_int,
        default=16,
        metavar="S",
        help="the PBO's partitions of the bars (even; default 16)",
    )
    p.add_argument(
        "--walk-forward",
        type=_walk_forward,
        metavar="in_sample=N,out_of_sample=M[,step=K]",
        help="choose the best variant on each in-sample window, trade it on the next bars",
    )
    p.add_argument(
        "--single-file",
        action="store_true",
        help="embed plotly.js in sweep.html (4.7 MB more), a page to send on its own; by "
        "default the page loads plotly-<version>.min.js beside it (the kept runs' copy in "
        "DIR/runs when there is one)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a key of the strategy file for every variant (repeatable)",
    )
    add_json_option(p, "sweep")
    p.set_defaults(command=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    """Run ``tradeloom sweep`` (see the module's docstring)."""
    from tradeloom.sweep.settings import resolve_settings

    settings = resolve_settings(args)
    from tradeloom.sweep.command import run_settings

    return run_settings(settings, as_json=args.json)


@dataclass(frozen=True)
class SweepVariant:
    """A sweep's variant, as ``tradeloom run FILE --variant SWEEP_DIR:ROW`` runs it.

    Attributes:
        sweep: The sweep directory (absolute).
        row: Its row of ``results.parquet``.
        key: Its variant key.
        overrides: The ``--set`` strings that make it: the sweep's own (``sweep.json``'s
            ``overrides``), then the row's axes.
    """

    sweep: str
    row: int
    key: str
    overrides: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        """Return what the run folder's ``metrics.json`` records of it (``variant``)."""
        return {"sweep": self.sweep, "row": self.row, "key": self.key}


def variant_overrides(text: str, strategy: Path) -> SweepVariant:
    """Return the variant of ``SWEEP_DIR:ROW`` (a row number or a variant key): everything
    the sweep applied to it, its own ``--set`` strings first.

    Args:
        text: ``SWEEP_DIR:ROW``.
        strategy: The strategy file the variant is to run: the one the sweep swept.

    Raises:
        UserError: No results there, a damaged sweep, a sweep of another strategy file
            (its content hash differs), or no such row.
    """
    import hashlib

    import numpy as np

    from tradeloom.files.reading import UnreadableFile, read_bytes, require_regular
    from tradeloom.sweep.results import SWEEP_FILE, read_identity, read_strategy_hash

    folder, sep, row = text.rpartition(":")
    if not sep or not folder or not row:
        raise UserError(f"--variant: expected SWEEP_DIR:ROW, was '{text}'")
    path = Path(folder) / "results.parquet"
    if not path.exists():
        raise UserError(f"--variant: no results.parquet in {folder}")
    swept = read_strategy_hash(Path(folder))
    try:
        given = hashlib.sha256(read_bytes(strategy, "a strategy file")).hexdigest()
    except UnreadableFile:
        given = None  # the strategy file's own loading says what is wrong with it
    if given is not None and given != swept:
        raise UserError(
            f"--variant: {folder} is a sweep of another strategy file (sha256 {swept[:12]}), "
            f"not of {strategy} (sha256 {given[:12]}); run the file that was swept"
        )
    require_regular(path, "a sweep's results")
    import pandas as pd

    try:
        frame = pd.read_parquet(path, columns=["key", "overrides"])
    except (OSError, ValueError, KeyError) as exc:  # pyarrow's errors are these
        raise UserError(f"{path}: not a sweep's results ({exc}); damaged") from None
    if row.isdigit():
        if int(row) >= len(frame):
            raise UserError(
                f"--variant: {folder} has {len(frame)} rows (0 to {len(frame) - 1}), was {row}"
            )
        number = int(row)
    else:
        match = np.flatnonzero((frame["key"] == row).to_numpy())
        if not len(match):
            raise UserError(f"--variant: no variant with key '{row}' in {folder}")
        number = int(match[0])
    chosen = frame.iloc[number]
    try:
        overrides = json.loads(str(chosen["overrides"]))
    except (ValueError, RecursionError):
        overrides = None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise UserError(f"{path}: row {row}: its overrides are not a list of texts; damaged")
    applied = read_identity(Path(folder)).get("overrides") or []
    if not isinstance(applied, list) or not all(isinstance(o, str) for o in applied):
        raise UserError(
            f"{Path(folder) / SWEEP_FILE}: its overrides are not a list of texts; damaged"
        )
    return SweepVariant(
        str(Path(folder).resolve()),
        number,
        str(chosen["key"]),
        (*applied, *overrides),
    )


def _walk_forward(text: str) -> WalkForwardSpec:
    from tradeloom.sweep.walk_forward import walk_forward_argument

    return walk_forward_argument(text)
