"""One safe writer for every file a command writes into a folder the user named.

A command writes only into a folder (``--out DIR``, a run directory, the folder of
``compare --out FILE``) and only files it owns there: a name it wrote before, listed in
the folder's manifest ``.tradeloom-owned``, or a name the folder's kind owns by
definition (a run directory's ``report.html``). It never replaces a user's file of the
same name, never writes through a symbolic link that leads out of the folder, and never
writes into the current folder because ``--out`` was given as an empty string. Each
refusal is one line naming the path (`UnsafeOutput`, a `UserError`, exit 2). Writes are
atomic: a temporary file in the folder, renamed over the target.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from tradeloom.errors import UserError
from tradeloom.files.reading import UnreadableFile, file_kind, read_text

__all__ = ["MANIFEST", "OutputFolder", "UnsafeOutput", "check_folder", "check_out_text"]

MANIFEST = ".tradeloom-owned"
"""The file, in a folder tradeloom writes into, that lists the names tradeloom wrote."""


class UnsafeOutput(UserError):
    """A write refused: the target is not the command's to replace, or leads elsewhere."""


def check_out_text(text: str, option: str = "--out") -> Path:
    """Return ``text`` as a path; refuse an empty one (it would mean the current folder).

    Raises:
        UnsafeOutput: ``text`` is empty or blank.
    """
    if not text.strip():
        raise UnsafeOutput(f"{option}: expected a folder or file name, was empty (use . for here)")
    return Path(text)


def check_folder(folder: Path, option: str = "--out") -> None:
    """Refuse a folder to write into that is not one: a file, a device, a dangling link.

    A missing folder passes (the command makes it).

    Raises:
        UnsafeOutput: Empty, not UTF-8, a file, a special file, or a link to nothing
            (one line).
    """
    if not str(folder).strip():
        raise UnsafeOutput(f"{option}: expected a folder, was empty (use . for here)")
    shown = os.fsencode(folder).decode("utf-8", "backslashreplace")
    if shown != str(folder):  # its bytes would go into journals, JSON and pages as text
        raise UnsafeOutput(
            f"{option} {shown}: the name is not UTF-8; tradeloom keeps the names of the "
            "folders it writes as text: give a UTF-8 name"
        )
    if folder.is_symlink() and not folder.exists():
        raise UnsafeOutput(
            f"{option} {folder}: is a symbolic link to {os.readlink(folder)}, which does "
            "not exist; give a folder"
        )
    try:
        mode = folder.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UnsafeOutput(f"{option} {folder}: cannot be used: {exc.strerror}") from None
    if not stat.S_ISDIR(mode):
        kind = "a file" if stat.S_ISREG(mode) else file_kind(mode)
        raise UnsafeOutput(f"{option} {folder}: is {kind}, not a folder; give a folder")


class OutputFolder:
    """A folder a command writes its files into, created when missing.

    Args:
        folder: The folder.
        option: How the user named it, for messages (``--out``, ``RUN_DIR``).
        owned: Names this kind of folder owns whether or not the manifest lists them; a
            name ending in ``/`` owns the subfolder of that name and all in it.

    Raises:
        UnsafeOutput: ``folder`` is a file, a device, a dangling link, or cannot be made.
    """

    def __init__(self, folder: Path, *, option: str = "--out", owned: Iterable[str] = ()) -> None:
        check_folder(folder, option)
        self.folder = folder
        self.option = option
        self._owned = frozenset(owned)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise UnsafeOutput(
                f"{option} {folder}: a part of the path is a file, not a folder"
            ) from None
        except NotADirectoryError:
            raise UnsafeOutput(
                f"{option} {folder}: a part of the path is a file, not a folder"
            ) from None
        except OSError as exc:
            raise UnsafeOutput(f"{option} {folder}: cannot be made: {exc.strerror}") from None
        self.root = folder.resolve()

    def target(self, name: str) -> Path:
        """Return the path to write ``name`` at, after checking it is the command's to write.

        Raises:
            UnsafeOutput: It leads out of the folder, is a folder or a special file, or is
                a file the command did not write.
        """
        path = self.folder / name
        parent = path.parent.resolve()
        if parent != self.root and self.root not in parent.parents:
            raise UnsafeOutput(f"{path}: leads out of {self.folder} ({parent}); refusing to write")
        if path.is_symlink():
            real = path.resolve()
            inside = real.parent == self.root or self.root in real.parents
            if not inside or not path.exists():
                raise UnsafeOutput(
                    f"{path}: is a symbolic link to {os.readlink(path)}, "
                    f"{'outside' if not inside else 'which does not exist in'} {self.folder}; "
                    "refusing to write through it: remove the link or give another "
                    f"{self.option}"
                )
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return path
        if stat.S_ISDIR(mode):
            remedy = self._remedy("remove it")
            raise UnsafeOutput(f"{path}: is a directory; refusing to replace it{remedy}")
        if not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
            raise UnsafeOutput(f"{path}: is {file_kind(mode)}; refusing to replace it")
        if not self._owns(name) and name not in self._manifest():
            raise UnsafeOutput(
                f"{path}: exists and was not written by tradeloom; refusing to replace it"
                f"{self._remedy('move it away')}"
            )
        return path

    def subfolder(self, name: str) -> Path:
        """Return the subfolder ``name``, new, for the command to write whole (parity's
        replay, a run folder): one the command wrote before (the manifest lists
        ``name/``) is removed first; it is listed before it is written, so that one left
        half-written by a crash is the command's to replace too.

        Raises:
            UnsafeOutput: ``name`` leads out of the folder, or something the command did
                not write is there (a file, a link, a folder that holds files).
        """
        import shutil

        path = self.folder / name
        if path.parent.resolve() != self.root:
            raise UnsafeOutput(f"{path}: leads out of {self.folder}; refusing to write")
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode) and f"{name}/" in self._manifest():
            shutil.rmtree(path)  # its own earlier output: written again whole
        elif mode is not None and not (stat.S_ISDIR(mode) and not any(path.iterdir())):
            kinds = {stat.S_IFDIR: "a folder", stat.S_IFREG: "a file", stat.S_IFLNK: "a link"}
            kind = kinds.get(stat.S_IFMT(mode)) or file_kind(mode)
            raise UnsafeOutput(
                f"{path}: is {kind} tradeloom did not write there; refusing to replace it"
                f"{self._remedy('move it away')}"
            )
        self._record(f"{name}/")
        return path

    def _remedy(self, first: str) -> str:
        other = f" or give another {self.option}" if self.option.startswith("--") else ""
        return f": {first}{other}"

    @contextlib.contextmanager
    def replacing(self, name: str) -> Iterator[Path]:
        """Yield a temporary path to write ``name`` at; it replaces the target on success.

        For writers that take a path (pandas, numpy, plotly). The target is checked
        first (`target`); an error leaves it as it was.
        """
        path = self.target(name)
        path.parent.mkdir(parents=True, exist_ok=True)  # inside the folder: `target` checked
        fd, temporary_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        os.fchmod(fd, 0o644)  # as a file written with open(): mkstemp's 0o600 hides it
        os.close(fd)
        temporary = Path(temporary_name)
        try:
            yield temporary
            self._record(name)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write ``data`` as ``name`` (checked, atomic, recorded); return its path."""
        with self.replacing(name) as temporary:
            temporary.write_bytes(data)
        return self.folder / name

    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` as UTF-8 as ``name`` (see `write_bytes`); return its path."""
        return self.write_bytes(name, text.encode("utf-8"))

    def _manifest(self) -> set[str]:
        path = self.folder / MANIFEST
        if not path.exists() and not path.is_symlink():
            return set()
        if path.is_symlink():
            raise UnsafeOutput(f"{path}: is a symbolic link; tradeloom never writes one there")
        try:
            text = read_text(path, "tradeloom's list of the files it wrote", limit=1 << 20)
        except UnreadableFile as exc:
            raise UnsafeOutput(str(exc)) from None
        return {line for line in text.splitlines() if line}

    def _owns(self, name: str) -> bool:
        return name in self._owned or any(
            owned.endswith("/") and name.startswith(owned) for owned in self._owned
        )

    def _record(self, name: str) -> None:
        if self._owns(name):
            return
        names = self._manifest()
        if name in names:
            return
        manifest = self.folder / MANIFEST
        text = "".join(f"{n}\n" for n in sorted({*names, name}))
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=f"{MANIFEST}.", suffix=".tmp")
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, manifest)
