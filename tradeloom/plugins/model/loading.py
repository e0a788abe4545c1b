"""Load a saved model: find its files, check them in a fixed order, then unpickle.

The order is the trust model (the README's "Trust model for model files"):

1. The model file exists and its metadata (``fold-NNNN.json`` beside it) is valid. The
   JSON is read only up to `MAX_METADATA_BYTES` and `MAX_JSON_DEPTH`; the model file's
   size (through a symbolic link, which every message names with its target) must be at
   most `MAX_MODEL_BYTES`, checked before a byte of it is read, and it is hashed in
   chunks: it is held in memory only once its hash is the expected one.
2. The file's SHA-256 equals the expected hash: the one the strategy file pins, or else
   the one the run's ``models/index.json`` lists. Nothing has read the bytes as a
   pickle yet, so a swapped or truncated file is refused before any of its code runs.
3. The metadata describes that file (it records the same hash).
4. The libraries it was saved with are compatible with these (`version_problem`).
5. It was trained on this strategy's features (`feature_problem`).
6. Its estimator is a scikit-learn one, or of a package the strategy file trusts.
7. It is unpickled with `restricted_loads`'s allow-list, a second line of defence for a
   run directory whose index could have been edited along with the file. The packages
   it trusts beyond scikit-learn come from the strategy file, never from the metadata.
   A file of weights (``.pt``, a torch fold) is read by torch's ``weights_only`` loader
   instead (`tradeloom.plugins.model.torch_fold`): tensors and plain values only; its
   network is tradeloom's own or a module of a package the strategy file trusts.
8. The file holds a model bundle (`read_bundle`): the classifier, its detector, and the
   metadata it acts on, which the JSON must match field for field.

Steps 3 to 6 read the JSON, which the hash does not cover: they give early, readable
refusals. Step 8 ties the JSON to the hashed file, and the loaded model uses the values
from inside the file.

Every refusal is a `ParamError` at the ``model`` key that gave the file, so the CLI
reports it as one located line and exits 2.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tradeloom.files.digest import sha256_of
from tradeloom.files.reading import json_depth
from tradeloom.plugins.component import ParamError
from tradeloom.plugins.model.bundle import Bundle, BundleError, read_bundle
from tradeloom.plugins.model.compatibility import feature_problem, version_problem
from tradeloom.plugins.model.metadata import (
    BundledMetadata,
    FileInfo,
    IndexEntry,
    ModelIndex,
    ModelMetadata,
    describe_invalid,
)
from tradeloom.plugins.model.registry import INDEX_FILE, MODELS_DIR, top_package
from tradeloom.plugins.model.safe_pickle import (
    RefusedGlobalError,
    restricted_loads,
    trusted_package_problem,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_METADATA_BYTES",
    "MAX_MODEL_BYTES",
    "WEIGHTS_SUFFIX",
    "LoadedModel",
    "ModelRequest",
    "load_saved_model",
    "read_index",
]

WEIGHTS_SUFFIX = ".pt"
"""The suffix of a model file of weights (a torch fold, `tradeloom.plugins.model.torch_fold`),
read with torch's ``weights_only`` loader instead of the restricted unpickler."""

MAX_MODEL_BYTES = 2 << 30
"""Largest model file read: 2 GiB (a forest of 1,000 deep trees is a few hundred MB)."""

MAX_METADATA_BYTES = 16 << 20
"""Largest metadata or index file read: 16 MiB (one is a few kilobytes)."""

MAX_JSON_DEPTH = 32
"""Deepest nesting read in a metadata or index file (one nests 5 levels)."""

_R = TypeVar("_R", bound=BaseModel)

_PINNED = "the sha256 pinned there"
"""Where an expected hash given by ``sha256`` came from: the key the refusal is located at
(a strategy file's line, or the journal's row a restart's model section was kept by)."""


@dataclass(frozen=True)
class ModelRequest:
    """Which saved model a strategy asks for, paths already resolved.

    Attributes:
        path: A model pickle (its metadata is the ``.json`` beside it), or None.
        from_run: A run directory whose ``models/index.json`` names the folds, or None.
        sha256: The hash the strategy file pins (required with ``path``).
        fold: With ``from_run``, the fold number to load (None: the latest).
        trusted_packages: Third-party packages whose classes the model file may name,
            as the strategy file lists them (``model.trusted_packages``).
    """

    path: Path | None = None
    from_run: Path | None = None
    sha256: str | None = None
    fold: int | None = None
    trusted_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedModel:
    """A saved fold, checked and unpickled.

    Attributes:
        source: The model file it came from.
        sha256: Its SHA-256.
        metadata: The metadata file beside it (its readable description).
        bundled: The metadata saved inside the model file, which the metadata file
            matches: the values to act on.
        fitted: The fitted estimator (or pipeline).
        detector: The fold's anomaly detector, or None.
    """

    source: Path
    sha256: str
    metadata: ModelMetadata
    bundled: BundledMetadata
    fitted: Any
    detector: Any | None


def load_saved_model(
    request: ModelRequest, *, feature_spec: list[dict[str, Any]] | None, columns: tuple[str, ...]
) -> LoadedModel:
    """Find, check and unpickle the model ``request`` names (see the module's order).

    Args:
        request: The model to load.
        feature_spec: This strategy's features (`StrategyConfig.feature_spec`); None: not
            known (validation past a mistake in them), not compared.
        columns: The columns they produce, in order.

    Raises:
        ParamError: At ``path``, ``from_run``, ``sha256`` or ``fold``, or at the model
            as a whole when its features differ, saying what is wrong.
    """
    if request.from_run is not None:
        key = "from_run"
        entry, index_path = _index_entry(request.from_run, request.fold)
        folder = index_path.parent
        pickle_path = folder / entry.model.file
        metadata_path = folder / entry.metadata
        expected = request.sha256 or entry.model.sha256
        trusted = _PINNED if request.sha256 else f"listed in {index_path}"
    else:
        assert request.path is not None and request.sha256 is not None
        key, pickle_path, expected = "path", request.path, request.sha256
        metadata_path = pickle_path.with_suffix(".json")
        trusted = _PINNED
    hash_key = "sha256" if request.sha256 else key

    size = _require_file(pickle_path, key)
    metadata = _read_record(
        metadata_path,
        ModelMetadata,
        key,
        missing=f"no metadata for {pickle_path}: {metadata_path} not found (a model file is "
        "loaded with the metadata its run saved beside it)",
    )
    shown = _shown(pickle_path)
    if size > MAX_MODEL_BYTES:
        # refused before a byte of it is read: a link to a huge file costs nothing
        raise ParamError(
            hash_key if size != metadata.model.size else key,
            f"{shown} is {size:,} bytes, its metadata says {metadata.model.size:,}; at most "
            f"{MAX_MODEL_BYTES:,} bytes are read; refusing to load it",
        )
    actual = sha256_of(pickle_path)  # in chunks: the file is held in memory only once trusted
    if actual != expected:
        raise ParamError(
            hash_key,
            f"sha256 of {shown} is {actual}, expected {expected} ({trusted})"
            f"{_size_hint(size, metadata.model)}; refusing to load it",
        )
    if metadata.model.sha256 != actual:
        raise ParamError(
            key,
            f"{metadata_path} describes a model file with sha256 {metadata.model.sha256}, "
            f"not {pickle_path} ({actual}); keep each model file with its own metadata",
        )
    weights = pickle_path.suffix == WEIGHTS_SUFFIX
    problem = version_problem(metadata.libraries, weights_only=weights)
    if problem is not None:
        raise ParamError(key, f"cannot load {pickle_path}: {problem}")
    spec = metadata.feature_spec
    if spec.sha256() != metadata.feature_spec_sha256:
        raise ParamError(
            key, f"{metadata_path}: feature_spec does not match its feature_spec_sha256 (edited?)"
        )
    problem = None if feature_spec is None else feature_problem(spec, feature_spec, columns)
    if problem is not None:
        raise ParamError("", f"{pickle_path.name} was trained on other features: {problem}")
    _check_estimator_package(metadata, request.trusted_packages, pickle_path, key, weights)
    data = pickle_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != actual:  # replaced since it was hashed
        raise ParamError(hash_key, f"{shown} changed while it was loaded; refusing to load it")
    if weights:
        bundle = _load_weights(data, pickle_path, key)
    else:
        bundle = _unpickle(data, pickle_path, request.trusted_packages, key)
    _check_bundle(bundle, metadata, metadata_path, pickle_path, key)
    return LoadedModel(
        pickle_path, actual, metadata, bundle.metadata, bundle.model, bundle.detector
    )


def _index_entry(run_dir: Path, fold: int | None) -> tuple[IndexEntry, Path]:
    if not run_dir.is_dir():
        raise ParamError("from_run", f"not a run directory: {run_dir}")
    index_path = run_dir / MODELS_DIR / INDEX_FILE
    own = sorted(p.parent.name for p in (run_dir / MODELS_DIR).glob(f"*/{INDEX_FILE}"))
    if own and not index_path.is_file():
        shown = ", ".join(f"{MODELS_DIR}/{name}/" for name in own[:3])
        raise ParamError(
            "from_run",
            f"{run_dir} saved a model per symbol ({shown}{', ...' if len(own) > 3 else ''}); "
            "from_run loads one model, which every symbol of a universe trades: give a run "
            "that trained one (model.pooling: pooled, or one market), or one symbol's "
            "fold with path: and sha256:",
        )
    index = _read_record(
        index_path,
        ModelIndex,
        "from_run",
        missing=f"{run_dir} holds no saved models ({MODELS_DIR}/{INDEX_FILE} not found); "
        "give the directory of a run whose model trained (an sklearn model)",
    )
    if fold is None:
        matches = [e for e in index.folds if e.model.file == index.latest]
        if not matches:
            raise ParamError(
                "from_run", f"{index_path}: latest names {index.latest}, which it does not list"
            )
    else:
        matches = [e for e in index.folds if e.fold == fold]
        if not matches:
            listed = ", ".join(str(n) for n in dict.fromkeys(e.fold for e in index.folds))
            raise ParamError("fold", f"{run_dir} saved no fold {fold}; it saved folds {listed}")
    entry = matches[-1]  # a fold retrained mid-run: its latest version
    _plain_name(entry.model, "from_run")
    if Path(entry.metadata).name != entry.metadata:
        raise ParamError("from_run", f"{index_path}: metadata must be a file name in its folder")
    return entry, index_path


def read_index(folder: Path, key: str = "from_run") -> ModelIndex:
    """Return the ``index.json`` of a ``models`` folder, read as the loader reads it (size,
    depth, JSON, the index's model), each fold's file a plain name in the folder.

    Raises:
        ParamError: At ``key``: not found, unreadable, or not a tradeloom model index.
    """
    path = folder / INDEX_FILE
    index = _read_record(path, ModelIndex, key, missing=f"{path} not found")
    for entry in index.folds:
        _plain_name(entry.model, key)
        if Path(entry.metadata).name != entry.metadata:
            raise ParamError(key, f"{path}: metadata must be a file name in its folder")
    return index


def _read_record(path: Path, model: type[_R], key: str, *, missing: str) -> _R:
    if not path.is_file():
        raise ParamError(key, missing)
    shown = _shown(path)
    try:
        size = path.stat().st_size
        if size > MAX_METADATA_BYTES:
            raise ParamError(
                key,
                f"{shown} is {size:,} bytes; tradeloom model {_what(model)} is at most "
                f"{MAX_METADATA_BYTES:,}: refusing to read it",
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamError(key, f"{shown} is not valid JSON: {exc}") from None
    depth = json_depth(text, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        raise ParamError(
            key,
            f"{shown} nests more than {MAX_JSON_DEPTH} levels deep; tradeloom model "
            f"{_what(model)} never does: refusing to read it",
        )
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        # ValueError: an integer of more digits than Python converts
        raise ParamError(key, f"{shown} is not valid JSON: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ParamError(
            key, f"{shown} is not tradeloom model {_what(model)}: {describe_invalid(exc)}"
        ) from exc


def _what(model: type[BaseModel]) -> str:
    return "index" if model is ModelIndex else "metadata"


def _shown(path: Path) -> str:
    # A link is named with what it points at: the user sees which file was read.
    if path.is_symlink():
        return f"{path} (a link to {path.resolve()})"
    return str(path)


def _require_file(path: Path, key: str) -> int:
    if not path.exists():
        raise ParamError(key, f"file not found: {path}")
    if not path.is_file():
        raise ParamError(key, f"not a file: {_shown(path)}")
    return path.stat().st_size  # of the file a link points at


def _plain_name(info: FileInfo, key: str) -> FileInfo:
    # A file name, never a path: the index may not point outside its folder.
    if Path(info.file).name != info.file:
        raise ParamError(key, f"model file names must be plain file names, was '{info.file}'")
    return info


def _check_estimator_package(
    metadata: ModelMetadata, trusted: tuple[str, ...], path: Path, key: str, weights: bool
) -> None:
    # Only narrows what loads: the unpickler's allow-list never reads the metadata. A file
    # of weights names the module its weights are loaded into: tradeloom's own networks
    # need no trust; a user's module is imported (its code runs), so its package needs it.
    import_path = metadata.estimator.import_path
    package = top_package(import_path)
    if package == "sklearn" or package in trusted or (weights and package == "tradeloom"):
        return
    remedy = (
        f" (model.trusted_packages: [{package}])"
        if trusted_package_problem(package) is None
        else ""
    )
    raise ParamError(
        key,
        f"cannot load {path}: its metadata names the estimator {import_path}; only "
        f"scikit-learn estimators load, and those of packages the strategy file trusts{remedy}",
    )


def _unpickle(data: bytes, path: Path, trusted: tuple[str, ...], key: str) -> Bundle:
    try:
        content = restricted_loads(data, trusted_packages=trusted)
    except RefusedGlobalError as exc:
        raise ParamError(
            key,
            f"refused to unpickle {path}: it names {exc.name}, which the model allow-list "
            "does not admit; it may have been tampered with",
        ) from exc
    except Exception as exc:  # a corrupt pickle can raise nearly anything
        raise ParamError(
            key, f"cannot unpickle {path}: {type(exc).__name__}: {exc}".rstrip(": ")
        ) from exc
    try:
        return read_bundle(content)
    except BundleError as exc:
        raise ParamError(key, f"cannot load {path}: {exc}") from exc


def _load_weights(data: bytes, path: Path, key: str) -> Bundle:
    from tradeloom.runtime.extras import require

    require("torch", f"loading {path.name}")
    from tradeloom.plugins.model.torch_fold import read_torch_fold

    try:
        return read_torch_fold(data)
    except BundleError as exc:
        raise ParamError(key, f"cannot load {path}: {exc}") from exc


def _check_bundle(
    bundle: Bundle, metadata: ModelMetadata, metadata_path: Path, path: Path, key: str
) -> None:
    differing = metadata.bundled().differences(bundle.metadata)
    if (bundle.detector is not None) != metadata.has_detector:
        differing.append("has_detector")
    if differing:
        raise ParamError(
            key,
            f"metadata file does not match the model file: {metadata_path} differs from "
            f"what {path} holds in {', '.join(differing)}; it was edited, or belongs to "
            "another model file",
        )


def _size_hint(size: int, info: FileInfo) -> str:
    if size == info.size:
        return ""
    shorter = " (truncated?)" if size < info.size else ""
    return f"; it is {size:,} bytes, its metadata says {info.size:,}{shorter}"
