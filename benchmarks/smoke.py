"""``--smoke``: a benchmark script's smallest size, so that a test can run every script.

Every script in benchmarks/ accepts ``--smoke`` (tests/test_benchmarks.py runs each one
with it, so that none can rot unseen): each size, count of runs and round it names
drops to the least that still runs every section of the script once, in seconds. What
it prints then says nothing about speed, and says so on its first line. A script
declares its smallest values beside its parser::

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=200_000)
    add_smoke(parser, bars=500, runs=1)
    args = parse_args(parser)

Benchmarks are run as scripts (``python benchmarks/bench_x.py``), so this module is
imported by name from the benchmarks folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["SMALL_RF", "VECTORBT_SKIPPED", "add_smoke", "parse_args"]

SMALL_RF = (
    "data.bars=800",
    "model.walk_forward.train_window=300",
    "model.walk_forward.retrain_every=250",
    "model.params.n_estimators=5",
    "model.params.n_jobs=1",
)
"""``--set`` overrides that make strategies/btc_rf.yaml (and the strategies like it) a
run of a second: 800 bars, folds of 300, forests of five trees."""

VECTORBT_SKIPPED = (
    "--smoke: vectorbt not run (its import and its kernels' compile, at every process: "
    "about 10 s of CPU)"
)
"""What a script prints instead of timing vectorbt under ``--smoke``."""

SMOKE_LINE = "--smoke: every section once at its smallest size; no figure below means anything"


def add_smoke(parser: argparse.ArgumentParser, **smallest: object) -> None:
    """Add ``--smoke`` to ``parser``: with it, `parse_args` sets each of ``smallest``'s
    options (by their ``dest`` names) to its value, whatever the command line says."""
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest size, every section once in seconds (the test that runs every "
        "benchmark); the figures mean nothing",
    )
    parser.set_defaults(_smoke_sizes=dict(smallest))


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """Parse the command line; under ``--smoke`` set the smallest sizes and say so."""
    args = parser.parse_args(argv)
    sizes = vars(args).pop("_smoke_sizes", {})
    if args.smoke:
        unknown = set(sizes) - set(vars(args))
        if unknown:
            raise SystemExit(f"--smoke names options the script lacks: {sorted(unknown)}")
        vars(args).update(sizes)
        print(SMOKE_LINE, flush=True)
    return args
