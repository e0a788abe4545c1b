"""Transforms of a model's input fitted inside each walk-forward fold, saved with the fold.

A feature whose columns must be fitted before a model can use them (embeddings reduced
to a few principal components) declares a `tradeloom.plugins.protocols.FoldTransform`:
the columns it reads and an unfitted transformer. The ``sklearn`` model puts them, as
one `FoldColumns` step, at the head of every fold's ``Pipeline``: the step is fitted on
that fold's training rows only (the rows the estimator is fitted on, purged and
embargoed), so a fold never learns its projection from the bars it predicts, and it is
pickled with the fold's estimator: the registry loads it as numbers (`safe_pickle`
allows these two classes by name), and paper and live apply the very projection the
backtest's fold fitted.

A transformer whose ``transform`` gives a row the same numbers alone as in any batch says
so with ``row_exact = True``; `FoldPredictor` then compiles the estimator behind it, and a
paper run journals the backtest's probabilities bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator, TransformerMixin, clone

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["FoldColumns", "Projection"]

_CHUNK = 4096
"""Rows projected at once: bounds the temporary (rows x input columns) to a few MB."""


class Projection(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """The first ``components`` principal components of its columns.

    Fitted as scikit-learn's ``PCA`` with ``svd_solver="covariance_eigh"`` (its choice
    for many more rows than columns): the eigenvectors of the centred rows' scatter
    matrix, largest eigenvalue first; each axis's sign is fixed so that its largest loading is
    positive, so that two fits of the same rows give the same numbers. A row's
    projection is ``sum((row - mean_) * axis)`` per axis, summed along the row alone:
    the same alone as in any batch (``row_exact``).

    Args:
        components: How many components to keep (>= 1).

    Attributes:
        mean_: The training rows' mean per column.
        components_: ``(components, columns)``, the principal axes.
        explained_variance_ratio_: The share of the variance each component keeps.
    """

    row_exact = True

    def __init__(self, components: int = 4) -> None:
        self.components = components

    def fit(self, x: npt.ArrayLike, y: Any = None) -> Projection:
        """Fit the axes on the rows of ``x``.

        Raises:
            ValueError: Fewer rows or columns than ``components``.
        """
        rows = np.asarray(x, dtype=np.float64)
        k = self.components
        if k > min(rows.shape):
            raise ValueError(
                f"{k} components need at least {k} rows and columns, "
                f"have {rows.shape[0]} rows of {rows.shape[1]} columns"
            )
        mean = rows.mean(axis=0)
        centred = rows - mean
        # the eigenvectors of the scatter matrix: O(rows x columns^2), where an SVD of the
        # rows also builds their (rows x columns) left vectors (30,000 x 256 on this
        # project's 2-core machine, loaded: 1.2 s against 9.2 s)
        variance, vectors = np.linalg.eigh(centred.T @ centred)
        order = np.argsort(variance)[::-1]
        variance = np.clip(variance[order], 0.0, None)
        axes = vectors[:, order[:k]].T
        largest = np.abs(axes).argmax(axis=1)
        axes = axes * np.sign(axes[np.arange(k), largest])[:, None]
        total = variance.sum()
        self.mean_ = mean
        self.components_ = np.ascontiguousarray(axes)
        self.explained_variance_ratio_ = variance[:k] / total if total > 0 else variance[:k]
        self.n_features_in_ = rows.shape[1]
        return self

    def transform(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the rows of ``x`` projected on the axes, ``(rows, components)``."""
        rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
        out = np.empty((len(rows), len(self.components_)), dtype=np.float64)
        for start in range(0, len(rows), _CHUNK):
            centred = rows[start : start + _CHUNK] - self.mean_
            for j, axis in enumerate(self.components_):
                out[start : start + _CHUNK, j] = (centred * axis).sum(axis=1)
        return out


class FoldColumns(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Replace some columns of a model's input by what a transformer fitted on them gives.

    The columns no transform reads come first, in their order; each transform's outputs
    follow, in ``transforms`` order.

    Args:
        transforms: ``(name, positions, transformer)`` per transform: the positions of
            the columns it reads (none read twice) and an unfitted transformer.

    Attributes:
        transformers_: The fitted transformers, in order.
        kept_: The positions of the columns passed through.
        row_exact: Every transformer transforms a row alone as in a batch.
    """

    def __init__(self, transforms: Sequence[tuple[str, tuple[int, ...], Any]] = ()) -> None:
        self.transforms = transforms

    def fit(self, x: npt.ArrayLike, y: Any = None) -> FoldColumns:
        """Fit each transformer on its columns of the rows of ``x``."""
        rows = np.asarray(x, dtype=np.float64)
        read = {p for _, positions, _ in self.transforms for p in positions}
        self.kept_ = np.array([p for p in range(rows.shape[1]) if p not in read], np.intp)
        self.transformers_ = [
            clone(transformer).fit(rows[:, list(positions)])
            for _, positions, transformer in self.transforms
        ]
        self.n_features_in_ = rows.shape[1]
        return self

    @property
    def row_exact(self) -> bool:
        """Whether every transformer transforms a row alone as in a batch."""
        return all(getattr(t, "row_exact", False) for _, _, t in self.transforms)

    def transform(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the kept columns of ``x`` and each transformer's outputs."""
        rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
        parts = [rows[:, self.kept_]]
        for (_, positions, _), fitted in zip(self.transforms, self.transformers_, strict=True):
            parts.append(np.asarray(fitted.transform(rows[:, list(positions)]), np.float64))
        return np.hstack(parts)

    def transform_rows(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """`transform` of a 2-D batch, or of one 1-D row (returned 1-D)."""
        return self.transform(x)[0] if x.ndim == 1 else self.transform(x)
