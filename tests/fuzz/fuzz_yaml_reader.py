"""A long fuzzing session of the strategy-file reader (not part of the test suite).

Hypothesis draws a shipped strategy file, a chain of seeded mutations (`mutations.KINDS`)
or raw bytes, and feeds the result to the one reader: `decode_strategy_bytes` and
`parse_yaml` as ``validate`` reads a file, `parse_yaml_value` as ``--set`` reads a value,
and, for one case in five, the whole `load_strategy` (plugins restricted to the built-ins,
so a mutated ``plugins:`` list imports nothing). Each case must end in a document or a
`UserError`, never another exception, and within ``--bound`` seconds of CPU time (so
that a busy machine does not fail it).

    python -m tests.fuzz.fuzz_yaml_reader --minutes 35

It runs on one core and prints a line per thousand cases; the first failure is printed
with its input (hex) and the script exits 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.mutations import mutate
from tradeloom.errors import UserError
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas import load_strategy
from tradeloom.schemas.yaml_loader import (
    decode_strategy_bytes,
    parse_yaml,
    parse_yaml_value,
)

ROOT = Path(__file__).resolve().parents[2]
FILES = [p.read_bytes() for p in sorted((ROOT / "strategies").glob("*.yaml"))] + [
    p.read_bytes() for p in sorted((ROOT / "examples").glob("*.yaml"))
]
_PLUGINS = load_plugins(())
_stats = {"cases": 0, "accepted": 0, "refused": 0, "slowest": 0.0}


def _builtins_only(modules: object) -> object:
    if modules:
        raise UserError("fuzz: plugin modules are not imported")
    return _PLUGINS


def _check(data: bytes, full: bool, bound: float, workdir: Path) -> None:
    started = time.process_time()  # CPU seconds: other processes on the machine do not count
    try:
        if full:
            path = workdir / "fuzzed.yaml"
            path.write_bytes(data)
            load_strategy(path, load_plugins=_builtins_only)  # type: ignore[arg-type]
        else:
            parse_yaml(decode_strategy_bytes(data, "f.yaml"), "f.yaml")
            text = data.decode("utf-8", errors="replace")
            parse_yaml_value(text[:2000], "data.bars")
        _stats["accepted"] += 1
    except UserError:
        _stats["refused"] += 1
    except Exception:
        print("FAILURE on input (hex):", data.hex(), file=sys.stderr)
        traceback.print_exc()
        raise
    elapsed = time.process_time() - started
    _stats["slowest"] = max(_stats["slowest"], elapsed)
    if elapsed > bound:
        print(f"TOO SLOW ({elapsed:.1f} s) on input (hex):", data.hex(), file=sys.stderr)
        raise AssertionError(f"took {elapsed:.1f} s")
    _stats["cases"] += 1
    if _stats["cases"] % 1000 == 0:
        print(
            f"{_stats['cases']} cases, {_stats['accepted']} accepted, "
            f"{_stats['refused']} refused, slowest {_stats['slowest']:.2f} s",
            flush=True,
        )


_INPUTS = st.one_of(
    st.tuples(
        st.integers(0, len(FILES) - 1), st.lists(st.integers(0, 2**32), min_size=1, max_size=4)
    ).map(lambda t: _chain(FILES[t[0]], t[1])),
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda s: s.encode("utf-8", errors="surrogatepass")),
)


def _chain(data: bytes, seeds: list[int]) -> bytes:
    for seed in seeds:
        _, data = mutate(data, seed)
    return data


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=35.0)
    parser.add_argument("--bound", type=float, default=10.0, help="CPU seconds a case may take")
    args = parser.parse_args()
    deadline = time.monotonic() + args.minutes * 60
    workdir = Path(tempfile.mkdtemp(prefix="tradeloom-fuzz-"))

    @settings(
        max_examples=500,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=_INPUTS, full=st.integers(0, 4).map(lambda n: n == 0))
    def one(data: bytes, full: bool) -> None:
        _check(data, full, args.bound, workdir)

    rounds = 0
    while time.monotonic() < deadline:
        one()
        rounds += 1
    print(
        f"done: {args.minutes:g} minutes, {rounds} rounds, {_stats['cases']} cases, "
        f"{_stats['accepted']} accepted, {_stats['refused']} refused, no failure, "
        f"slowest case {_stats['slowest']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
