"""The chain without compiling gives the kernels' numbers, and the reference xxHash's."""

from __future__ import annotations

import struct

import numpy as np
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.journal import chain, chain_numpy


def test_xxh64_of_each_row_is_the_reference_xxhash() -> None:
    for n in range(14):
        words = (np.arange(3 * n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)).reshape(3, n)
        for seed in (0, 1, 2**64 - 1):
            ours = chain_numpy.xxh64(words, seed)
            assert [int(x) for x in ours] == [
                xxhash.xxh64_intdigest(row.tobytes(), seed) for row in words
            ]


def test_the_chain_is_the_kernels_chain() -> None:
    digests = np.random.default_rng(3).integers(0, 2**64 - 1, 500, dtype=np.uint64, endpoint=True)
    for seed in (0, 12345, 2**64 - 1):
        expected = np.empty(len(digests), dtype=np.uint64)
        chain.chain_scan(digests, np.uint64(seed), expected)
        assert np.array_equal(chain_numpy.chain_values(digests.tolist(), seed), expected)
    first = chain_numpy.chain_values([7], 77)[0]
    assert int(first) == xxhash.xxh64_intdigest(struct.pack("<Q", 7), 77)


_TEXT = st.one_of(
    st.none(), st.just(chain.ABSENT_TEXT), st.text(max_size=30), st.binary(max_size=20)
)


@settings(max_examples=examples(60), deadline=None)
@given(
    fixed=st.lists(
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=3, max_size=3),
        min_size=1,
        max_size=12,
    ),
    texts=st.lists(st.lists(_TEXT, min_size=2, max_size=2), min_size=12, max_size=12),
    kind=st.text(min_size=1, max_size=12),
)
def test_row_digests_are_the_kernels(
    fixed: list[list[int]], texts: list[list[object]], kind: str
) -> None:
    rows = len(fixed)
    blob = bytearray()
    lengths = np.empty((rows, 2), dtype=np.int64)
    starts = np.zeros((rows, 2), dtype=np.int64)
    for i in range(rows):
        for j, text in enumerate(texts[i]):
            if text is None:
                lengths[i, j] = -1
            elif isinstance(text, int):
                lengths[i, j] = text
            else:
                data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
                starts[i, j], lengths[i, j] = len(blob), len(data)
                blob += data + b"\n"
    words = np.array(fixed, dtype=np.int64)
    kind_words = np.frombuffer(chain.pack_text(kind), dtype=np.uint64)
    data = np.frombuffer(bytes(blob) or b"\0", dtype=np.uint8)
    expected = np.empty(rows, dtype=np.uint64)
    chain.row_digests(words, kind_words, lengths, starts, data, expected)
    ours = chain_numpy.row_digests(words, kind_words, lengths, starts, data)
    assert np.array_equal(ours, expected)


@settings(max_examples=examples(80), deadline=None)
@given(
    rows=st.lists(
        st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=11), min_size=1, max_size=8
    ),
    seed=st.integers(0, 2**64 - 1),
)
def test_chaining_a_commits_rows_in_one_call_is_chaining_them_one_by_one(
    rows: list[list[int]], seed: int
) -> None:
    """`chain_rows` (a live commit's rows, one call) is `chain_step` row by row, and each
    value is XXH64 of the row's digest seeded with the value before (the reference's)."""
    words = np.array([w for row in rows for w in row], dtype=np.uint64)
    ends = np.cumsum([len(row) for row in rows], dtype=np.int64)
    out = np.empty(len(rows), np.uint64)
    last = chain.chain_rows(words, ends, np.uint64(seed), out)
    previous = seed
    for row, value in zip(rows, out.tolist(), strict=True):
        one = np.array(row, dtype=np.uint64)
        assert value == int(chain.chain_step(one, len(one), np.uint64(previous)))
        digest = xxhash.xxh64_intdigest(one.tobytes(), 0)
        assert value == xxhash.xxh64_intdigest(struct.pack("<Q", digest), previous)
        previous = value
    assert int(last) == previous


def test_a_chain_kernel_run_as_python_over_compiled_ones_gives_the_compiled_values() -> None:
    """A first run's kernels are part Python, part compiled (`tradeloom.kernels.first_run`:
    those the cache holds are loaded): each chain kernel's Python body, calling the others
    compiled (numba hands their uint64 back as Python ints), gives the compiled values."""
    rng = np.random.default_rng(11)
    words = rng.integers(2**63, 2**64 - 1, 13, dtype=np.uint64, endpoint=True)  # high bits set
    ends = np.array([0, 5, 9, 13], dtype=np.int64)
    seed = np.uint64(2**64 - 5)
    cases = {
        "_round": (seed, words[0]),
        "_merge": (seed, words[1]),
        "xxh64_words": (words, 13, seed),
        "_chain_one": (words[2], seed),
        "chain_step": (words, 13, seed),
        "chain_rows": (words, ends, seed, np.empty(len(ends), np.uint64)),
        "chain_scan": (words, seed, np.empty(len(words), np.uint64)),
    }
    kernels = {}
    for name in cases:  # every one compiled (the module's names become numba's dispatchers)
        found = getattr(chain, name)
        kernels[name] = found.dispatcher() if hasattr(found, "dispatcher") else found
    for name, args in cases.items():
        compiled = kernels[name](*args)
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        with np.errstate(all="ignore"):  # as a Python form runs (`jit._as_python`)
            python = kernels[name].py_func(*copies)
        assert np.uint64(python) == np.uint64(compiled), name
        assert all(np.array_equal(a, b) for a, b in zip(args, copies, strict=True)), name


def test_the_chain_scans_python_form_chains_as_xxhash_does() -> None:
    """A small run's journal (`chain._chain_scan_as_python`): each value XXH64 of the
    digest's eight bytes seeded by the value before; the last returned; none: the seed."""
    digests = np.random.default_rng(5).integers(0, 2**64 - 1, 40, np.uint64, endpoint=True)
    seed = np.uint64(2**64 - 5)
    out = np.zeros(41, np.uint64)
    last = chain._chain_scan_as_python(digests, seed, out)
    previous = int(seed)
    for k, digest in enumerate(digests.tolist()):
        previous = xxhash.xxh64_intdigest(struct.pack("<Q", digest), previous)
        assert int(out[k]) == previous
    assert out[40] == 0  # past the digests: untouched
    assert isinstance(last, np.uint64) and int(last) == previous
    assert chain._chain_scan_as_python(digests[:0], seed, out[:0]) == seed
