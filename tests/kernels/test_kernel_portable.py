"""Kernels compiled for a portable CPU are loaded where they can run, and only there.

`rsi_step` and the two kernels it calls are compiled once for this architecture's
portable target (the ``portable_kernels`` fixture, tests/portable_kernels.py). A
process of this machine, whose own target is its CPU, then finds them in the user's
kernel cache or shipped in a copy of the package (``_kernels/<stamp>/``, as a wheel
installs them) and compiles nothing; an entry for another CPU, with a feature this
machine lacks, or of other sources is not used; a damaged shipped entry is ignored
with one warning and never removed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.portable_kernels import PACKAGE, host_target, probe, result
from tradeloom.cli import main as cli
from tradeloom.cli import warm
from tradeloom.kernels.cache import FORMAT
from tradeloom.kernels.jit import package_stamp
from tradeloom.kernels.manifest import MANIFEST, SHIPPED, find_shipped, write_manifest
from tradeloom.kernels.targets import PORTABLE, Target, enabled, runs_here

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kernel_portable")]

HOST, TARGET = host_target()
needs_target = pytest.mark.skipif(TARGET is None, reason="no portable target this CPU runs")


@pytest.fixture
def portable(portable_kernels: Path | None) -> Path:
    """Return the stamp folder of a kernel cache holding the probe's portable kernels."""
    assert portable_kernels is not None
    return portable_kernels


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.suffix != ".pyc"}  # fmt: skip


def _installed(tmp_path: Path, stamp_folder: Path, *, name: str | None = None) -> Path:
    """Return a copy of the package shipping ``stamp_folder`` (under ``name``), as a wheel's."""
    root = tmp_path / "site"
    # with its bytecode, which the modification times copied keep valid: the probes
    # import the copy's modules without compiling them again
    shutil.copytree(PACKAGE, root / "tradeloom", ignore=shutil.ignore_patterns(SHIPPED))
    shutil.copytree(stamp_folder, root / "tradeloom" / SHIPPED / (name or stamp_folder.name))
    return root


def _entry(stamp_folder: Path, pattern: str) -> Path:
    [path] = (stamp_folder / "plugins" / "features").glob(pattern)
    return path


def _index(stamp_folder: Path) -> Any:
    """Return rsi_step's checked index and data files in ``stamp_folder``."""
    from tradeloom.kernels import cache as kernel_cache

    index = _entry(stamp_folder, "rsi.rsi_step-*.nbi")
    return kernel_cache._CheckedFiles(
        cache_path=str(index.parent), filename_base=index.stem, source_stamp=package_stamp()
    )


def test_a_portable_entry_runs_where_every_feature_it_names_is_enabled() -> None:
    triple = "x86_64-unknown-linux-gnu"
    v3 = (triple, "x86-64", PORTABLE["x86_64"].feature_string())
    host = (triple, "znver3", v3[2] + ",+adx,-avx512f")
    assert runs_here(v3, host)
    assert runs_here(host, host)  # a machine's own entries
    assert not runs_here(v3, (triple, "znver3", v3[2].replace("+avx2", "-avx2")))
    assert not runs_here((triple, "x86-64", "+avx512f"), host)  # a feature it lacks
    assert not runs_here((triple, "skylake", ""), host)  # another CPU's own code
    assert not runs_here(("aarch64-unknown-linux-gnu", "generic", ""), host)
    assert runs_here((triple, "generic", ""), host)  # the baseline
    assert enabled("+avx2,-avx512f,+fma") == {"avx2", "fma"}
    assert PORTABLE["x86_64"].missing(host) == []
    assert Target("t", "x86-64", ("avx2", "avx512f")).missing(host) == ["avx512f"]


@needs_target
def test_portable_entries_in_the_users_cache_are_loaded(portable: Path, tmp_path: Path) -> None:
    cache = tmp_path / "kernels"
    shutil.copytree(portable.parent, cache)

    done = probe(tmp_path, TRADELOOM_KERNEL_CACHE=str(cache))

    assert result(done)["misses"] == 0 and done.stderr == ""


@needs_target
def test_shipped_entries_are_loaded_and_the_package_gains_no_file(
    portable: Path, tmp_path: Path
) -> None:
    site = _installed(tmp_path, portable)
    before = _files(site)
    cache = tmp_path / "kernels"

    done = probe(tmp_path, path=site, TRADELOOM_KERNEL_CACHE=str(cache))

    assert result(done)["misses"] == 0 and done.stderr == ""
    assert _files(site) == before
    assert not list(cache.rglob("*.nb[ic]"))  # nothing compiled, nothing written


ELSEWHERE: dict[str, Callable[[Any], Any] | None] = {
    "portable": None,  # the entry as compiled: this machine runs it
    # machine code tuned for another model of CPU, which may use any of its features
    "another-cpu": lambda t: (t[0], "skylake-avx512", t[2]),
    # a feature no CPU has (this machine's numba enables none of that name)
    "a-feature-it-lacks": lambda t: (t[0], t[1], t[2] + ",+tradeloom-test-feature"),
    "another-architecture": lambda t: ("aarch64-unknown-linux-gnu", "generic", ""),
}


@needs_target
@pytest.mark.parametrize("built_for", list(ELSEWHERE))
def test_only_an_entry_this_machine_can_run_is_loaded(
    built_for: str, portable: Path, tmp_path: Path
) -> None:
    folder = tmp_path / portable.name
    shutil.copytree(portable, folder)
    files = _index(folder)
    [((sig, target, code), name)] = files._load_index().items()
    change = ELSEWHERE[built_for]
    if change is not None:  # the same entry, its target rewritten (digest and all)
        files._save_index({(sig, change(target), code): name})

    loaded = files.load_fitting((sig, HOST, code))  # what this machine's process looks up

    assert (loaded is not None) == (change is None)


@needs_target
def test_a_shipped_folder_of_other_sources_is_not_used(portable: Path, tmp_path: Path) -> None:
    site = _installed(tmp_path, portable, name="0" * 24)  # another stamp's folder
    before = _files(site)

    done = probe(tmp_path, path=site, TRADELOOM_KERNEL_CACHE=str(tmp_path / "kernels"))

    assert result(done)["misses"] == 1 and done.stderr == ""  # compiled here, silently
    assert _files(site) == before


@needs_target
def test_a_damaged_shipped_entry_is_ignored_with_one_warning_and_kept(
    portable: Path, tmp_path: Path
) -> None:
    site = _installed(tmp_path, portable)
    data = _entry(site / "tradeloom" / SHIPPED / portable.name, "rsi.rsi_step-*.nbc")
    data.write_bytes(b"\x00" * 64)
    before = _files(site)

    done = probe(tmp_path, path=site, TRADELOOM_KERNEL_CACHE=str(tmp_path / "kernels"))

    assert result(done)["misses"] == 1
    [line] = done.stderr.splitlines()
    event = json.loads(line)
    assert (event["event"], event["level"]) == ("kernel_cache", "warning")
    assert event["problem"] == (
        f"ignored the shipped kernel cache entry {data} "
        "(not written by tradeloom's kernel cache); compiled again"
    )
    assert _files(site) == before  # read only: neither removed nor replaced


@needs_target
def test_the_manifest_says_what_the_kernels_were_built_for(portable: Path) -> None:
    assert TARGET is not None
    facts = json.loads((portable / MANIFEST).read_text())
    assert facts["stamp"] == package_stamp() and portable.name == package_stamp()[:24]
    assert (facts["target"], facts["cpu"], facts["features"]) == (
        TARGET.name, TARGET.cpu, TARGET.feature_string())  # fmt: skip
    assert facts["triple"] == HOST[0]
    assert _entry(portable, "rsi.rsi_step-*.nbc").read_bytes().startswith(FORMAT)


def test_warm_portable_warms_in_a_process_that_compiles_for_the_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if TARGET is None:
        pytest.skip("no portable target this CPU runs")
    calls: list[tuple[list[str], dict[str, str]]] = []

    class Done:
        returncode = 0

    def run(argv: list[str], env: dict[str, str], check: bool) -> Done:
        calls.append((argv, env))
        return Done()

    monkeypatch.setattr(warm.subprocess, "run", run)
    monkeypatch.setenv("TRADELOOM_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))

    assert cli.main(["-q", "warm", "--portable", "s.yaml", "--set", "data.bars=500"]) == 0

    [(argv, env)] = calls
    assert argv[1:] == ["-m", "tradeloom.cli.main", "--log-level", "warning", "-q", "warm",
                        "s.yaml", "--driver", "auto", "--set=data.bars=500"]  # fmt: skip
    assert env["NUMBA_CPU_NAME"] == "x86-64" and "NUMBA_CACHE_DIR" not in env
    assert env["NUMBA_CPU_FEATURES"] == TARGET.feature_string()
    manifest = tmp_path / package_stamp()[:24] / MANIFEST
    assert json.loads(manifest.read_text())["target"] == "x86-64-v3"
    assert capsys.readouterr().out.endswith(f": {manifest}\n")


def test_warm_portable_refuses_a_target_this_machine_cannot_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    arch = HOST[0].split("-")[0]
    monkeypatch.setitem(PORTABLE, arch, Target("x86-64-v9", "x86-64", ("tradeloom-test-feature",)))

    assert cli.main(["-q", "warm", "--portable"]) == 1

    assert capsys.readouterr().err == (
        "this machine cannot build kernels for x86-64-v9: its CPU lacks tradeloom-test-feature, "
        "and the warming runs what it compiles\n"
    )


def test_a_wheel_ships_the_one_folder_built_from_its_sources_by_its_python(tmp_path: Path) -> None:
    def built(stamp: str, sources: str, numba: str) -> Path:
        return write_manifest(tmp_path / stamp, stamp=stamp, sources=sources, numba=numba)

    built("a" * 24, "other sources", "0.68.1")
    with pytest.raises(ValueError, match=r"^.*: no portable kernels of these sources for Python "
                       r"3\.\d+; build them with: TRADELOOM_KERNEL_CACHE=.* tradeloom warm "
                       r"--portable$"):  # fmt: skip
        find_shipped(tmp_path, "these sources")

    ours = built("b" * 24, "these sources", "0.68.1").parent
    assert find_shipped(tmp_path, "these sources") == (
        ours,
        json.loads((ours / MANIFEST).read_text()),
    )

    built("c" * 24, "these sources", "0.67.0")
    with pytest.raises(ValueError, match=r"portable kernels of these sources in several folders"):
        find_shipped(tmp_path, "these sources")
