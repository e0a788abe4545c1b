"""Compare two folders of run folders (`run_folders.py`) file by file, value by value.

    python benchmarks/compare_runs.py BEFORE AFTER [--quiet] [--roots BEFORE_ROOT AFTER_ROOT]
    python benchmarks/compare_runs.py --smoke   # two runs of one small file: 0 differ

Every file of each run folder is compared:

- byte-identical (a text file's run-folder path read as the folder's own) is ``same``;
- a CSV file whose bytes differ but whose values read the same (`pandas.read_csv`:
  the same columns, dtypes and values, NaN equal to NaN) is ``formatting``;
- a Parquet file whose table (schema, metadata, values) is equal is ``same values``;
- a journal (SQLite) whose tables hold the same rows once the columns of the wall
  clock (``wall_time``, ``seconds``) and the hash chain they feed are left out is
  ``same events`` (an empty table on one side only, a journal kind added since, holds no
  row and is no difference); its ``meta`` rows are compared whole, a ``segment`` block's data as
  its layout (`tradeloom.journal.blocks.unpack`: how a block is stored, compressed or
  not, is no event). A journal is always read
  through SQLite, with what its write-ahead log holds (an open or killed run's rows
  may be there only): its ``-wal`` and ``-shm`` files are not compared on their own;
- anything else is listed as ``DIFFERS`` with what differs, and the exit code is 1.

The two runs of one file differ by their folder, its key (``folder.key``: 128 random
bits, also in the journal's meta and tail, read as ``FOLDER_KEY``) and the wall clock
only, so a difference that is none of these is a number that moved. Folders made by two
checkouts (`run_folders.py --root`) also differ by the strategy file's path, which the
journal's ``run_started`` row holds: ``--roots BEFORE_ROOT AFTER_ROOT`` reads each
checkout's path as ``CHECKOUT``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from run_folders import ROOT, run_folders
from smoke import SMALL_RF, add_smoke, parse_args

from tradeloom.journal.blocks import unpack

VOLATILE_COLUMNS = frozenset({"wall_time", "seconds", "hash"})
"""Journal columns of the wall clock, and the hash chain that covers them."""
VOLATILE_KEYS = frozenset({"seconds", "created_at", "wall_time", "head"})
"""JSON keys of the wall clock (a model's save time, a run's duration), and the journal
tail record's ``head`` (the hash chain's end, which covers the wall clock)."""


def text(path: Path, folder: Path) -> str:
    """Return a text file with its run folder's path and key written as ``RUN_DIR`` and
    ``FOLDER_KEY``."""
    return neutral(path.read_text(encoding="utf-8", errors="replace"), folder)


ROOTS: dict[Path, str] = {}
"""The checkout that made each folder of run folders (``--roots``), by that folder."""


def neutral(value: str, folder: Path) -> str:
    """Return ``value`` with ``folder``'s path and random key (`folder_key`) neutralised,
    and the path of the checkout that made it (`ROOTS`)."""
    value = value.replace(str(folder), "RUN_DIR")
    root = ROOTS.get(folder.parent)
    if root is not None:
        value = value.replace(root, "CHECKOUT")
    key = folder_key(folder)
    return value if key is None else value.replace(key, "FOLDER_KEY")


def folder_key(folder: Path) -> str | None:
    """Return the key a run folder holds in ``folder.key``, or None."""
    path = folder / "folder.key"
    return path.read_text(encoding="ascii").strip() if path.is_file() else None


def same_csv(a: Path, b: Path) -> str | None:
    """Return None when two CSV files hold the same values, else what differs."""
    x, y = pd.read_csv(a), pd.read_csv(b)
    if list(x.columns) != list(y.columns):
        return f"columns {list(x.columns)} != {list(y.columns)}"
    if list(x.dtypes) != list(y.dtypes):
        return f"dtypes {list(x.dtypes)} != {list(y.dtypes)}"
    if len(x) != len(y):
        return f"{len(x)} rows != {len(y)}"
    for column in x.columns:
        u, v = x[column].to_numpy(), y[column].to_numpy()
        if u.dtype.kind == "f":
            equal = (u == v) | (np.isnan(u) & np.isnan(v))
        else:
            equal = np.asarray(pd.Series(u).fillna("<NA>") == pd.Series(v).fillna("<NA>"))
        if not equal.all():
            row = int(np.flatnonzero(~equal)[0])
            return f"{column} row {row}: {u[row]!r} != {v[row]!r}"
    return None


def json_diff(x: Any, y: Any, where: str = "") -> list[str]:
    """Return the key paths where two JSON values differ (wall-clock keys left out)."""
    if isinstance(x, dict) and isinstance(y, dict):
        out = []
        for key in sorted(set(x) | set(y)):
            if key in VOLATILE_KEYS:
                continue
            if key not in x or key not in y:
                out.append(f"{where}.{key} (only in {'after' if key in y else 'before'})")
            else:
                out += json_diff(x[key], y[key], f"{where}.{key}")
        return out
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        return [
            d
            for i, (u, v) in enumerate(zip(x, y, strict=True))
            for d in json_diff(u, v, f"{where}[{i}]")
        ]
    return [] if x == y else [f"{where}: {x!r} != {y!r}"[:300]]


def same_parquet(a: Path, b: Path) -> str | None:
    """Return None when two Parquet files hold equal tables, else what differs."""
    x, y = pq.read_table(a), pq.read_table(b)
    if x.schema != y.schema:
        return f"schema {x.schema} != {y.schema}"
    if x.schema.metadata != y.schema.metadata:
        return "schema metadata differs"
    return None if x.equals(y) else "values differ"


def journal_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Return each table's rows without the wall clock and hash columns."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        out = {}
        for table in tables:
            columns = [r[1] for r in connection.execute(f'PRAGMA table_info("{table}")')]
            kept = [c for c in columns if c not in VOLATILE_COLUMNS]
            names = ", ".join(f'"{c}"' for c in kept)
            rows = connection.execute(f'SELECT {names} FROM "{table}"').fetchall()
            if table == "segment" and "data" in kept:
                at = kept.index("data")
                rows = [(*r[:at], unpack(r[at], "a block"), *r[at + 1 :]) for r in rows]
            out[table] = [tuple(kept), *rows]
        return out
    finally:
        connection.close()


def same_journal(a: Path, b: Path, folders: tuple[Path, Path]) -> str | None:
    """Return None when two journals hold the same events, else the first table that differs.

    A table one journal has and the other has not holds no event when it is empty (the
    table of a journal kind added since, which the run never wrote): it is no difference,
    and the tables both have are compared row by row all the same.
    """
    x, y = journal_rows(a), journal_rows(b)
    for table in sorted(set(x) ^ set(y)):
        side, rows = ("before", x[table]) if table in x else ("after", y[table])
        if len(rows) > 1:  # its first entry is the columns' names
            return f"table {table}: only {side}, {len(rows) - 1} rows"
    for table in sorted(set(x) & set(y)):
        p, q = _without_added_columns(x[table], y[table])
        u = [tuple(neutral(str(v), folders[0]) for v in r) for r in p]
        v = [tuple(neutral(str(w), folders[1]) for w in r) for r in q]
        if u != v:
            diff = next((i for i, (p, q) in enumerate(zip(u, v, strict=False)) if p != q), None)
            return f"table {table}: {len(u)} vs {len(v)} rows, first differing row {diff}"
    return None


def _without_added_columns(
    x: list[tuple[Any, ...]], y: list[tuple[Any, ...]]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return two tables' rows (their first entry the columns' names) without the columns
    one of them has and the other has not, where every row of the one leaves it empty ('' or
    NULL): a field added to a kind since, which the journal reads as '' in older rows (its
    row hash does not count it then). A column with a value in any row stays: a difference."""

    def kept(rows: list[tuple[Any, ...]], others: tuple[Any, ...]) -> list[int]:
        names = rows[0]
        return [
            i
            for i, name in enumerate(names)
            if name in others or any(row[i] not in ("", None) for row in rows[1:])
        ]

    a, b = kept(x, y[0]), kept(y, x[0])
    return [tuple(r[i] for i in a) for r in x], [tuple(r[i] for i in b) for r in y]


def compared_alone(path: Path) -> bool:
    """Whether a run folder's file is compared on its own: not a journal's write-ahead log
    or shared memory, whose rows are read through the journal itself."""
    return path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal"))


def compare_file(a: Path, b: Path, folders: tuple[Path, Path]) -> tuple[str, str]:
    """Return the verdict of one file (``same``, ``formatting``, ... or ``DIFFERS``) and why."""
    suffix = a.suffix
    if suffix == ".sqlite":  # its rows, with what its write-ahead log holds: never the file's bytes
        why = same_journal(a, b, folders)
        return ("same events", "") if why is None else ("DIFFERS", why)
    if a.read_bytes() == b.read_bytes():
        return "same", ""
    if suffix == ".parquet":
        why = same_parquet(a, b)
        return ("same values", "") if why is None else ("DIFFERS", why)
    if suffix in {".csv", ".json", ".yaml", ".html", ".txt", ".log", ".tail", ".key"}:
        ta, tb = text(a, folders[0]), text(b, folders[1])
        if ta == tb:
            return "same", "(but for the run folder's path)"
        if suffix == ".csv":
            why = same_csv(a, b)
            return ("formatting", "values read the same") if why is None else ("DIFFERS", why)
        if suffix in {".json", ".tail"}:
            diffs = json_diff(json.loads(ta), json.loads(tb))
            return (
                ("same values", "but for wall-clock keys")
                if not diffs
                else ("DIFFERS", "; ".join(diffs[:5]))
            )
        first = (
            next(i for i, (p, q) in enumerate(zip(ta, tb, strict=False)) if p != q)
            if len(ta) == len(tb)
            else min(len(ta), len(tb))
        )
        return (
            "DIFFERS",
            f"text from char {first}: {ta[first - 40 : first + 60]!r} "
            f"vs {tb[first - 40 : first + 60]!r}",
        )
    return "DIFFERS", f"{a.stat().st_size} vs {b.stat().st_size} bytes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, nargs="?")
    parser.add_argument("after", type=Path, nargs="?")
    parser.add_argument("--quiet", action="store_true", help="print only what differs")
    parser.add_argument(
        "--roots",
        nargs=2,
        type=Path,
        metavar=("BEFORE_ROOT", "AFTER_ROOT"),
        help="the checkouts run_folders.py ran (--root): their paths read as CHECKOUT",
    )
    add_smoke(parser)
    args = parse_args(parser)
    if args.smoke:  # two runs of one small file, compared: nothing may differ
        with tempfile.TemporaryDirectory() as folder:
            args.before, args.after = Path(folder, "before"), Path(folder, "after")
            for out in (args.before, args.after):
                if run_folders(ROOT, out, sys.executable, ["btc_rf"], SMALL_RF):
                    sys.exit("--smoke: the run failed")
            sys.exit(compare(args))
    if args.before is None or args.after is None:
        parser.error("the following arguments are required: before, after")
    sys.exit(compare(args))


def compare(args: argparse.Namespace) -> int:
    """Compare the folders of run folders ``args.before`` and ``args.after``; print each
    file's verdict and return 1 if any differs."""
    if args.roots:
        for out, root in zip((args.before, args.after), args.roots, strict=True):
            ROOTS[out.resolve()] = str(root.resolve())
    differs = 0
    for run in sorted(p for p in args.before.iterdir() if p.is_dir()):
        other = args.after / run.name
        if not other.is_dir():
            print(f"{run.name}: DIFFERS (no such run after)")
            differs += 1
            continue
        files = {p.relative_to(run) for p in run.rglob("*") if compared_alone(p)}
        files |= {p.relative_to(other) for p in other.rglob("*") if compared_alone(p)}
        for relative in sorted(files):
            a, b = run / relative, other / relative
            if not (a.exists() and b.exists()):
                verdict, why = "DIFFERS", f"only {'after' if b.exists() else 'before'}"
            else:
                verdict, why = compare_file(a, b, (run.resolve(), other.resolve()))
            differs += verdict == "DIFFERS"
            if verdict != "same" or not args.quiet:
                print(f"{run.name}/{relative}: {verdict} {why}".rstrip())
    # a run only AFTER has (a file added since) has nothing to be compared with: named, so
    # that "0 differ" never hides a run the comparison did not see
    before = {p.name for p in args.before.iterdir() if p.is_dir()}
    new = sorted(p.name for p in args.after.iterdir() if p.is_dir() and p.name not in before)
    for name in new:
        print(f"{name}: NEW (no such run before: not compared)")
    print(f"{differs} file(s) differ" + (f"; {len(new)} run(s) only after" if new else ""))
    return 1 if differs else 0


if __name__ == "__main__":
    main()
