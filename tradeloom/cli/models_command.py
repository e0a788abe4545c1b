"""``tradeloom models export RUN_DIR --onnx [--out DIR]``: a run's saved folds as ONNX.

What is written and how each graph is checked: `tradeloom.cli.onnx_export`. A refusal
(the ``[onnx]`` extra missing, not a run folder, a journal or model file that cannot be
trusted, no saved models, a fold that cannot be exported) is one line and exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tradeloom.arguments import given_path

__all__ = ["add_models_parser", "models_export"]


def add_models_parser(sub: Any) -> None:
    """Add ``models`` and its ``export`` action to the subparsers ``sub``."""
    models = sub.add_parser("models", help="a run's saved models: export them")
    actions = models.add_subparsers(required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write each walk-forward fold a run saved as ONNX",
        description="Write each fold RUN_DIR saved (models/, models/<SYMBOL>/) as an ONNX "
        "graph whose output probability_up is the probability tradeloom decides on "
        "(calibration included), with manifest.json beside them: each fold's windows, its "
        "features in input order, the hashes and library versions. The journal is verified "
        "and every model file read by the registry's loader first; each graph is run by "
        "onnxruntime on the fold's own feature rows and must equal tradeloom's probability "
        "to 1e-6. Exit 0, or 2 with one line: not a run, no models, a file refused, or a "
        "fold that cannot be exported (which, and why). Needs the onnx extra: "
        "pip install 'tradeloom[onnx]'.",
    )
    export.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    export.add_argument(
        "--onnx",
        action="store_true",
        required=True,
        help="write ONNX graphs (the one format for now)",
    )
    export.add_argument(
        "--out",
        type=given_path,
        default=None,
        metavar="DIR",
        help="the folder to write into (default: RUN_DIR/onnx; a model per symbol: a folder "
        "per symbol inside it)",
    )
    export.set_defaults(command=models_export)


def models_export(args: argparse.Namespace) -> int:
    """Export the run's folds; print where, and each fold's check; return the exit code."""
    from tradeloom.cli.onnx_export import export_run
    from tradeloom.files.writing import check_folder

    out: Path | None = args.out
    if out is not None:
        check_folder(out)
    exported = export_run(args.run_dir, out)
    for fold in exported.folds:
        difference = fold["max_difference"]
        checked = (
            f"equal to tradeloom's to {difference:.1e} on {fold['checked_rows']} rows"
            if difference is not None
            else "not checked (the run saved no features.parquet)"
        )
        print(f"fold {fold['fold']}: {fold['file']} ({fold['exporter']}): {checked}")
    print(f"wrote {len(exported.folds)} folds and manifest.json into {exported.folder}")
    return 0
