"""The embedding scorer: the packaged model through wordllama's hub loader, its identity,
and vectors the same in every call, batch and process."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.text.documents import Documents
from tradeloom.text.embedding import EmbeddingScorer, ModelNotFound, packaged_model_dir
from tradeloom.text.scoring import DocumentScorer

pytest.importorskip("wordllama")

CUTOFF = pd.Timestamp("2025-12-01", tz="UTC")
TEXTS = (
    "Bitcoin rallies as spot ETF inflows reach a record",
    "Exchange halts withdrawals after a hack; users fear losses",
    "Regulator approves the merger",
    "short",
    "A much longer article body " * 40,
)


def documents(texts: tuple[str, ...] = TEXTS) -> Documents:
    n = len(texts)
    stamps = np.arange(n, dtype=np.int64) * 60_000_000_000
    return Documents(
        ids=tuple(f"d{i}" for i in range(n)),
        stamped_ns=stamps,
        visible_ns=stamps,
        texts=texts,
        titles=("",) * n,
        sources=("",) * n,
        symbols=((),) * n,
    )


@pytest.fixture(scope="module")
def scorer() -> EmbeddingScorer:
    return EmbeddingScorer(knowledge_cutoff=CUTOFF)


def test_it_is_a_document_scorer_with_one_field_per_dimension(scorer: EmbeddingScorer) -> None:
    assert isinstance(scorer, DocumentScorer)
    assert scorer.fields[:2] == ("dim000", "dim001") and len(scorer.fields) == 256
    assert scorer.knowledge_cutoff == CUTOFF
    scores = scorer.score(documents())
    assert scores.values.shape == (5, 256) and scores.values.dtype == np.float64
    assert scores.reasons == ("",) * 5
    assert np.isfinite(scores.values).all()


def test_identity_names_the_model_and_the_hash_of_the_files_it_read(
    scorer: EmbeddingScorer,
) -> None:
    weights = packaged_model_dir() / "weights" / "l2_supercat_256.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert scorer.identity.startswith("wordllama:l2_supercat:dimensions=256:title:")
    assert f"weights_sha256={digest}:" in scorer.identity
    fewer = EmbeddingScorer(knowledge_cutoff=CUTOFF, dimensions=64)
    assert fewer.identity != scorer.identity and len(fewer.fields) == 64
    np.testing.assert_array_equal(fewer.embed(TEXTS), scorer.embed(TEXTS)[:, :64])


def test_a_vector_is_the_same_bit_for_bit_in_any_call_and_batch(scorer: EmbeddingScorer) -> None:
    first = scorer.score(documents()).values
    assert first.tobytes() == scorer.score(documents()).values.tobytes()
    small = EmbeddingScorer(knowledge_cutoff=CUTOFF, batch_size=2)
    assert small.embed(TEXTS).tobytes() == first.tobytes()
    alone = np.vstack([scorer.embed([text]) for text in TEXTS])
    assert alone.tobytes() == first.tobytes()
    # different documents get different vectors
    assert not np.allclose(first[0], first[1])


def test_a_vector_is_the_same_bit_for_bit_in_another_process(scorer: EmbeddingScorer) -> None:
    code = textwrap.dedent(
        f"""
        import hashlib, pandas as pd
        from tradeloom.text.embedding import EmbeddingScorer
        s = EmbeddingScorer(knowledge_cutoff=pd.Timestamp("2025-12-01", tz="UTC"))
        print(hashlib.sha256(s.embed({list(TEXTS)!r}).tobytes()).hexdigest())
        """
    )
    root = Path(__file__).parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == hashlib.sha256(scorer.embed(TEXTS).tobytes()).hexdigest()


def test_a_model_not_in_its_folder_is_refused_without_asking_the_hub(tmp_path: Path) -> None:
    # l3_supercat is a model wordllama's loader would fetch from the hub; it is not shipped
    with pytest.raises(ModelNotFound, match=r"^text_embedding: model 'l3_supercat' not found in "):
        EmbeddingScorer(knowledge_cutoff=CUTOFF, model="l3_supercat", model_dir=tmp_path)


def test_an_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(
        ModelNotFound,
        match=r"^text_embedding: model 'minilm' is not a wordllama model; known: l2_supercat, ",
    ):
        EmbeddingScorer(knowledge_cutoff=CUTOFF, model="minilm")
