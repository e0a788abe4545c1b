"""Sentence embeddings from a local model: each document a vector of a few hundred numbers.

The model is wordllama's (``tradeloom[text]``): static token embeddings averaged over a
document's tokens, a lookup and a mean, no network and no torch. Its wheel ships one
model, ``l2_supercat`` (256 dimensions), in the folder layout of wordllama's own download
cache (``weights/`` and ``tokenizers/``), so the model is loaded by wordllama's loader,
the one that would fetch a model from the hub, pointed at that folder with downloads
off: a run never reaches the network, and a model a user fetched beforehand loads from
its own folder the same way (`EmbeddingScorer`).

The vectors are the same in every mode and process: a document's vector is the mean of
its own tokens' rows, computed in float32 by wordllama and widened to float64, whatever
batch it is in (the padding of a batch adds zeros after a document's last token).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.errors import UserError
from tradeloom.runtime.lazy import numpy as np
from tradeloom.text.scoring import DocumentScores

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.text.documents import Documents

__all__ = ["PACKAGED_MODEL", "EmbeddingScorer", "ModelNotFound", "packaged_model_dir"]

PACKAGED_MODEL = "l2_supercat"
"""The model wordllama's wheel ships (256 dimensions)."""

_FILE_DIMENSIONS = 256
"""The width of the weights file the loader reads (``<model>_256.safetensors``); fewer
``dimensions`` keep its first columns (the model is trained so that they work alone)."""


class ModelNotFound(UserError):
    """The embedding model's files are not where the strategy says."""


def packaged_model_dir() -> Path:
    """Return the folder of the model wordllama's wheel ships (weights/, tokenizers/).

    Raises:
        MissingExtra: wordllama is not installed (``pip install 'tradeloom[text]'``).
    """
    from tradeloom.runtime.extras import require

    require("wordllama", "features kind text_embedding")
    import wordllama

    return Path(wordllama.__file__).parent


class EmbeddingScorer:
    """Score documents with a sentence-embedding model: one field per dimension.

    Args:
        knowledge_cutoff: The last moment the model may know of (UTC). Required: only the
            user can say what the model they chose was trained on.
        model: A wordllama model name (``l2_supercat``, ``l3_supercat``): the name its
            loader would fetch from the hub.
        model_dir: The folder holding the model's files as wordllama's cache lays them
            out (``weights/<model>_256.safetensors`` and ``tokenizers/...``); None: the
            folder the wordllama wheel ships.
        dimensions: Keep the first ``dimensions`` of the 256 (64, 128 or 256).
        batch_size: Documents embedded at once (does not change a number).
        title: Embed a document's title with its text (``title text``), where it has one.

    Raises:
        ModelNotFound: The files are not in ``model_dir``, or ``model`` is no model name.
        MissingExtra: wordllama is not installed.
    """

    def __init__(
        self,
        *,
        knowledge_cutoff: pd.Timestamp,
        model: str = PACKAGED_MODEL,
        model_dir: Path | None = None,
        dimensions: int = _FILE_DIMENSIONS,
        batch_size: int = 256,
        title: bool = True,
    ) -> None:
        folder = packaged_model_dir() if model_dir is None else model_dir
        self._model = model
        self._dimensions = dimensions
        self._batch_size = batch_size
        self._cutoff = knowledge_cutoff
        self._title = title
        self._inference = _load(model, folder, dimensions)
        self._fields = tuple(f"dim{i:03d}" for i in range(dimensions))
        weights, tokenizer = (_resolved(model, folder, kind) for kind in ("weights", "tokenizer"))
        self._identity = (
            f"wordllama:{model}:dimensions={dimensions}:{'title' if title else 'text'}:"
            f"weights_sha256={_sha256(weights)}:tokenizer_sha256={_sha256(tokenizer)}"
        )

    @property
    def fields(self) -> tuple[str, ...]:
        """``dim000``, ``dim001``, ...: one per dimension kept."""
        return self._fields

    @property
    def identity(self) -> str:
        """The model's name, dimensions and its weights' and tokenizer's SHA-256."""
        return self._identity

    @property
    def knowledge_cutoff(self) -> pd.Timestamp:
        """The cutoff the strategy declared for the model."""
        return self._cutoff

    def score(self, documents: Documents) -> DocumentScores:
        """Return each document's vector (float64, one row per document)."""
        texts = documents.texts
        if self._title:
            texts = tuple(
                f"{title} {text}" if title else text
                for title, text in zip(documents.titles, texts, strict=True)
            )
        return DocumentScores(self.embed(texts), ("",) * len(documents))

    def embed(self, texts: tuple[str, ...] | list[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Return the vectors of ``texts`` (float64, ``(len(texts), dimensions)``)."""
        out = np.empty((len(texts), self._dimensions), dtype=np.float64)
        size = self._batch_size
        for start in range(0, len(texts), size):
            chunk = list(texts[start : start + size])
            out[start : start + len(chunk)] = self._inference.embed(chunk, batch_size=size)
        return out


_LOADED: dict[tuple[str, Path, int], Any] = {}
"""Models loaded in this process, by (name, folder, dimensions): read-only once loaded, so
two features (or a sweep's trials) share one table of 16 MB."""


def _load(model: str, folder: Path, dimensions: int) -> Any:
    key = (model, folder.resolve(), dimensions)
    if key not in _LOADED:
        _LOADED[key] = _read(model, folder, dimensions)
    return _LOADED[key]


def _read(model: str, folder: Path, dimensions: int) -> Any:
    from wordllama import WordLlama

    names = WordLlama.list_configs()["wordllama"]
    if model not in names:
        raise ModelNotFound(
            f"text_embedding: model '{model}' is not a wordllama model; known: {', '.join(names)}"
        )
    try:
        # wordllama's loader: its packaged files, then the cache folder, then the hub;
        # the cache folder is ``folder`` and the hub is never asked.
        return WordLlama.load(
            config=model,
            cache_dir=folder,
            dim=_FILE_DIMENSIONS,
            trunc_dim=None if dimensions == _FILE_DIMENSIONS else dimensions,
            disable_download=True,
        )
    except FileNotFoundError as exc:
        raise ModelNotFound(
            f"text_embedding: model '{model}' not found in {folder} ({exc}); put its "
            f"weights/{model}_{_FILE_DIMENSIONS}.safetensors and tokenizers/ files there, "
            "or leave model_dir out to use the model wordllama ships"
        ) from exc


def _resolved(model: str, folder: Path, kind: str) -> Path:
    """Return the file of ``kind`` (weights, tokenizer) that wordllama's loader reads."""
    from wordllama import WordLlama

    return Path(
        WordLlama.resolve_file(
            config_name=model,
            model_uri=getattr(WordLlama._wordllama, model),
            dim=_FILE_DIMENSIONS,
            binary=False,
            file_type=kind,
            cache_dir=folder,
            disable_download=True,
        )
    )


_HASHES: dict[tuple[Path, int, int], str] = {}
"""SHA-256 of a model file by (path, size, mtime): a strategy hashes its 16 MB once."""


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (path.resolve(), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]
