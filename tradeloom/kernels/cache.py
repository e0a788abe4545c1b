"""The on-disk cache of compiled kernels, checked before numba reads a byte of it.

numba caches a compiled function in two kinds of files: an index (``.nbi``, the
signatures compiled and their data file's name) and one data file per signature
(``.nbc``, pickled machine code that LLVM loads). numba trusts both: a truncated file
fails the run with a traceback, random bytes in a data file abort the process inside
LLVM (exit 134), a link to ``/dev/zero`` is read until memory runs out, a FIFO hangs.

Here every cache file starts with a header that numba's own format lacks: a magic
string and the SHA-256 of the file's name, the kernels' stamp and the payload. A file
is read only if it is a regular file (opened without following a link and without
blocking, then ``fstat``-ed), no larger than `MAX_ENTRY_BYTES`, and its digest
matches; anything else (damaged, foreign, truncated, unreadable) is removed and the
kernel compiled again. A cache that cannot be written (read-only, a full disk) leaves
the run uncached from then on. Either way the process logs one warning line, once,
and the run goes on. Kernels are cached in tradeloom's cache folder only
(`kernel_cache_root`), never beside the package's sources: where no folder is usable
they are not cached at all.

Processes may compile and save one kernel at once (checkouts of the same sources share a
stamp's folder, a sweep's workers share it): each data file is named by its key (numba
numbers them, and two processes could write one number for two signatures), written
whole under a temporary name and renamed, and the index is read and rewritten under a
lock of its folder. An entry whose data was compiled for another signature is a miss.

An entry is looked up by numba's key, which names the CPU it was compiled for: first
this machine's own, then a portable one this machine can run (`tradeloom.kernels.targets`:
compiled by ``tradeloom warm --portable`` for a generic CPU plus features this one has).
Last, the portable entries a wheel ships in the package (hatch_build.py,
`tradeloom.kernels.manifest.SHIPPED`), checked the same way: they are only read, never
written nor removed (a damaged one is ignored, with the one warning line, and the
kernel compiled into the user's cache).

The digest is a check against damage, not a signature: whoever can write the cache
folder can write a matching digest (and could as well edit the user's shell profile).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import pickle
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from numba.core import caching, sigutils

from tradeloom.kernels.cache_root import kernel_cache_root
from tradeloom.kernels.manifest import SHIPPED

__all__ = [
    "FORMAT",
    "KEEP_STAMPS",
    "MAX_ENTRY_BYTES",
    "STALE_DAYS",
    "holds",
    "kernel_cache_root",
    "unwritable",
    "use_cache",
]

FORMAT = b"TLKC\x00\x01\r\n"
"""The first bytes of every cache file: a file without them was not written here (a
file of numba's own format, another program's, random bytes). The version byte
changes with the header's layout, and it is part of the kernels' stamp."""

_DIGEST_BYTES = 32  # SHA-256

MAX_ENTRY_BYTES = 64 * 1024 * 1024
"""Largest cache file read: the largest kernel's data file is under 1 MB (0.79 MB, the
sweep's batched kernel, 2026-11-25), an index a few kilobytes."""

KEEP_STAMPS = 4
"""The shared cache keeps at least this many stamps (the most recently used)."""

STALE_DAYS = 14
"""Beyond `KEEP_STAMPS`, a stamp unused this long is removed."""

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def unwritable() -> bool:
    """Return whether this process found the kernel cache unwritable (what it compiled
    is not kept)."""
    return _Warning.unwritable


def use_cache(dispatcher: Any, *, stamp: str, package: Path) -> None:
    """Give numba's ``dispatcher`` the checked cache, in the folder of ``stamp``.

    A kernel defined outside ``package`` (a test's) and a kernel with no usable cache
    folder stay uncached (the latter with the process's one warning).

    Args:
        dispatcher: numba's dispatcher of a kernel, compiled nothing yet.
        stamp: The hash of the kernels' sources (``package_stamp`` of the jit module).
        package: The folder of the package whose kernels are cached.
    """
    if not Path(dispatcher.py_func.__code__.co_filename).resolve().is_relative_to(package):
        return
    try:
        dispatcher._cache = _cache_class(stamp, package)(dispatcher.py_func)
    except RuntimeError:  # numba: "no locator available", every folder refused
        _Warning.once(
            f"no usable kernel cache folder ({_Warning.folder_problem}); "
            "kernels are compiled at each run"
        )


def holds(py_func: Any, *, stamp: str, package: Path) -> bool:
    """Return whether the cache of ``stamp`` holds a compiled entry of the kernel whose
    Python function is ``py_func`` (this user's cache, or the portable ones a wheel ships).

    A kernel defined outside ``package``, or with no usable cache folder, holds none.
    """
    if not Path(py_func.__code__.co_filename).resolve().is_relative_to(package):
        return False
    try:
        cache = _cache_class(stamp, package)(py_func)
    except RuntimeError:  # no usable cache folder
        return False
    shipped = cache._shipped
    return bool(cache._cache_file._load_index()) or (
        shipped is not None and bool(shipped._load_index())
    )


class _Warning:
    """The one warning line a process gives about its kernel cache."""

    given = False
    unwritable = False
    folder_problem = "unknown reason"

    @classmethod
    def once(cls, message: str) -> None:
        import structlog

        log = structlog.get_logger("tradeloom.kernels")
        if cls.given:
            log.debug("kernel_cache", problem=message)
            return
        cls.given = True
        log.warning("kernel_cache", problem=message)


@cache
def _stamp_folder(stamp: str) -> Path:
    """Return this stamp's folder of the shared cache, marked used; prune stale stamps once."""
    root = kernel_cache_root()
    folder = root / stamp[:24]
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # a read-only cache is still read
        os.utime(folder)  # the newest use: pruning keeps what is used
        _prune(root, keep=folder)
    return folder


def _prune(root: Path, keep: Path) -> None:
    """Remove stamps unused for `STALE_DAYS` days beyond the `KEEP_STAMPS` newest."""
    try:
        stamps = sorted(
            (p for p in root.iterdir() if p.is_dir() and p != keep),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
    except OSError:
        return
    cutoff = time.time() - STALE_DAYS * 86400
    for old in stamps[KEEP_STAMPS - 1 :]:
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


@cache
def _cache_class(stamp: str, package: Path) -> Callable[[Any], Any]:
    """Return numba's function cache with tradeloom's locators and checked files."""

    class _Stamped:
        def get_source_stamp(self) -> str:
            return stamp

    class UserProvidedLocator(_Stamped, caching.UserProvidedCacheLocator):
        """``NUMBA_CACHE_DIR``, when set and writable (numba's own rule)."""

    class SharedLocator(_Stamped, caching.InTreeCacheLocator):
        """The stamp's folder of the shared cache, mirroring the package's folders."""

        def __init__(self, py_func: Any, py_file: str) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            relative = Path(py_file).resolve().parent.relative_to(package)
            self._cache_path = str(_stamp_folder(stamp) / relative)

        def get_cache_path(self) -> str:
            return str(self._cache_path)

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            # unlike numba's locators, a folder that exists but cannot be written is
            # used: what it holds is loaded, and the first save says it cannot write
            try:
                locator = cls(py_func, py_file)
                os.makedirs(locator.get_cache_path(), exist_ok=True)
            except (OSError, RuntimeError) as exc:  # RuntimeError: no home directory
                _Warning.folder_problem = f"{kernel_cache_root()}: {_reason(exc)}"
                return None
            return locator

    class Impl(caching.CompileResultCacheImpl):
        # no numba locator after these: numba's next would write into the package
        _locator_classes = [UserProvidedLocator, SharedLocator]  # noqa: RUF012 (numba's name)

    class KernelCache(caching.FunctionCache):
        _impl_class = Impl
        _cache_file: _CheckedFiles

        def __init__(self, py_func: Any) -> None:
            super().__init__(py_func)
            named = {
                "filename_base": self._impl.filename_base,
                "source_stamp": self._impl.locator.get_source_stamp(),
            }
            self._cache_file = _CheckedFiles(cache_path=self._cache_path, **named)
            relative = Path(py_func.__code__.co_filename).resolve().parent.relative_to(package)
            shipped = package / SHIPPED / stamp[:24] / relative
            self._shipped = _ShippedFiles(str(shipped), **named) if shipped.is_dir() else None

        def _load_overload(self, sig: Any, target_context: Any) -> Any:
            # numba's, but for the entries this machine may run that are not its own
            if not self._enabled:
                return None
            key = self._index_key(sig, target_context.codegen())
            data = self._cache_file.load_fitting(key)
            if data is None and self._shipped is not None:
                data = self._shipped.load_fitting(key)
            if data is None or not _compiled_for(data, sig):
                return None  # not cached (or another signature's code): compile
            return self._impl.rebuild(target_context, data)

        def load_overload(self, sig: Any, target_context: Any) -> Any:
            try:
                return super().load_overload(sig, target_context)
            except Exception as exc:  # a checked entry numba still cannot rebuild
                _Warning.once(f"{self._cache_path}: an entry numba cannot load "
                              f"({type(exc).__name__}: {exc}); compiled again")  # fmt: skip
                return None

        def save_overload(self, sig: Any, data: Any) -> None:
            if _Warning.unwritable:
                return
            try:
                super().save_overload(sig, data)
            except OSError as exc:  # read-only, a full disk, a directory in the way
                _Warning.unwritable = True
                _Warning.once(
                    f"cannot write the kernel cache in {self._cache_path}: {_reason(exc)}; "
                    "the kernels compiled in this run are not cached"
                )

    return KernelCache


class _CheckedFiles(caching.IndexDataCacheFile):
    """numba's index and data files, each behind a header that is checked before reading."""

    def load_fitting(self, key: Any) -> Any:
        """Return the data of ``key``'s entry or, without one, of the portable entry of its
        signature and code that this machine runs with the most features; None if none."""
        overloads = self._load_index()
        name = overloads.get(key)
        if name is None:
            name = _portable_choice(overloads, key)
        return None if name is None else self._load_data(name)

    def save(self, key: Any, data: Any) -> None:
        # The data file is named by its key, and written first: an index never names a file
        # that is not written yet, nor another signature's. (numba numbers them 1, 2...,
        # each process the first number its index leaves free: two processes saving two
        # signatures at once wrote the same file, and the index the last one wrote could
        # name the other's code, which numba then took for this signature's: a caller's
        # TypingError, "Invalid use of type(CPUDispatcher(...))", in a concurrent run.)
        name = self._keyed_name(key)
        self._save_data(name, data)
        with self._index_locked():  # another process's entry is kept, not overwritten
            overloads = self._load_index()
            if overloads.get(key) != name:
                self._save_index({**overloads, key: name})

    def _keyed_name(self, key: Any) -> str:
        # numba's types are named by what they are (equal types, equal names)
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:20]
        return f"{self._index_name.removesuffix('.nbi')}.{digest}.nbc"

    @contextlib.contextmanager
    def _index_locked(self) -> Iterator[None]:
        """Hold the lock of the folder of this kernel's index (``flock`` on the folder
        itself: no file of its own) while the block reads and rewrites the index: saves by
        processes at once add up, instead of the last one's index replacing the others'.
        Where the folder cannot be locked, the block runs unlocked (an entry may then be
        lost, and compiled again by a later run; never another signature's code)."""
        try:
            fd = os.open(self._cache_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            yield
            return
        try:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _load_index(self) -> dict[Any, str]:
        payload = self._read(self._index_path)
        if payload is None:
            return {}
        try:
            with io.BytesIO(payload) as stream:
                version = pickle.load(stream)
                rest = stream.read()
            if version != self._version:  # another numba: its pickles may not load
                return {}
            stamp, overloads = pickle.loads(rest)
        except Exception as exc:  # the digest matched: written so, by a broken writer
            self._discard(self._index_path, f"not an index ({type(exc).__name__})")
            return {}
        return dict(overloads) if stamp == self._source_stamp else {}

    def _save_index(self, overloads: dict[Any, str]) -> None:
        head = pickle.dumps(self._version, protocol=-1)
        self._write(self._index_path, head + self._dump((self._source_stamp, overloads)))

    def _load_data(self, name: str) -> Any:
        path = self._data_path(name)
        payload = self._read(path)
        if payload is None:
            return None  # numba: not cached, compile
        try:
            return pickle.loads(payload)
        except Exception as exc:
            self._discard(path, f"not a compiled kernel ({type(exc).__name__})")
            return None

    def _save_data(self, name: str, data: Any) -> None:
        self._write(self._data_path(name), self._dump(data))

    def _digest(self, path: str, payload: bytes) -> bytes:
        named = f"{os.path.basename(path)}\0{self._source_stamp}\0".encode()
        return hashlib.sha256(FORMAT + named + payload).digest()

    def _write(self, path: str, payload: bytes) -> None:
        with self._open_for_write(path) as file:
            file.write(FORMAT + self._digest(path, payload) + payload)

    def _read(self, path: str) -> bytes | None:
        """Return the checked payload of the cache file ``path``; None if it is missing,
        or damaged (then removed, with the process's one warning)."""
        try:
            return _checked_payload(path, self._digest)
        except FileNotFoundError:
            return None
        except _Damaged as exc:
            self._discard(path, str(exc))
            return None

    def _discard(self, path: str, problem: str) -> None:
        with contextlib.suppress(OSError):  # read-only: it stays, and is never loaded
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        _Warning.once(f"discarded the kernel cache entry {path} ({problem}); compiled again")


class _ShippedFiles(_CheckedFiles):
    """The portable entries a wheel ships inside the package: read, never written nor removed."""

    def _discard(self, path: str, problem: str) -> None:
        _Warning.once(f"ignored the shipped kernel cache entry {path} ({problem}); compiled again")


def _compiled_for(data: Any, sig: Any) -> bool:
    """Return whether the reduced compile result ``data`` (numba's ``CompileResult._reduce``:
    its fourth item the signature) was compiled for the argument types ``sig``. An entry
    that says otherwise (what numba's numbering let a race leave) is a miss: numba would
    add its code as this signature's, and its callers would fail to type."""
    signature = data[3] if isinstance(data, tuple) and len(data) > 3 else None
    args = getattr(signature, "args", None)
    return args is None or tuple(args) == tuple(sigutils.normalize_signature(sig)[0])


def _portable_choice(overloads: dict[Any, str], key: Any) -> str | None:
    """Return the data file of the portable entry for ``key`` (numba's: signature, target,
    code) that this machine can run, with the most features; None if there is none."""
    from tradeloom.kernels.targets import enabled, runs_here

    sig, host, code = key
    fitting = [
        (len(enabled(target[2])), name)
        for (other_sig, target, other_code), name in overloads.items()
        if other_sig == sig and other_code == code and runs_here(target, host)
    ]
    return max(fitting)[1] if fitting else None


class _Damaged(Exception):
    """A cache file that is not what was written (the message says how)."""


def _checked_payload(path: str, digest: Callable[[str, bytes], bytes]) -> bytes:
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _Damaged("a symbolic link" if exc.errno == errno.ELOOP else _reason(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Damaged(_kind(info.st_mode))
        if info.st_size > MAX_ENTRY_BYTES:
            raise _Damaged(f"{info.st_size:,} bytes, over the cap")
        data = _read_at_most(fd, MAX_ENTRY_BYTES + 1)
    except OSError as exc:
        raise _Damaged(_reason(exc)) from None
    finally:
        os.close(fd)
    header = len(FORMAT) + _DIGEST_BYTES
    if len(data) > MAX_ENTRY_BYTES:
        raise _Damaged("grew over the cap while read")
    if not data.startswith(FORMAT):
        raise _Damaged("not written by tradeloom's kernel cache")
    if len(data) < header:
        raise _Damaged("truncated")
    payload = data[header:]
    if data[len(FORMAT) : header] != digest(path, payload):
        raise _Damaged("its digest does not match: truncated, damaged or foreign")
    return payload


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _kind(mode: int) -> str:
    from tradeloom.files.reading import file_kind

    return f"{file_kind(mode)}, not a regular file"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"
