"""Each batched variant's starting arrays, built without a whole `CoreState`.

`tradeloom.core.state.CoreState` builds every array of a run from its spec; a batch
(`tradeloom.sweep.batch.run_batch`) reads of it only the starting account, the
parameters, the drawdown limits and the rate limiter's length, and its symbol starts
alike in every variant. `BatchStart` builds the symbol's starting row and portfolio
scratch once per batch with the functions `CoreState` calls, and of each variant its
parameters (`CoreSpec.vector`) and what it changes: an account only for a new
starting cash, limits only for new drawdown limits. The arrays equal `CoreState`'s
(tests/sweep/test_batch_start.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradeloom.core import layout as L
from tradeloom.core.params import CoreSpec
from tradeloom.core.state import start_account, start_portfolio, start_symbols, symbols_key

__all__ = ["BatchStart", "VariantStart"]


@dataclass(frozen=True)
class VariantStart:
    """One variant's starting arrays as `tradeloom.sweep.batch_kernel.run_variants` takes
    them for a batch of that one variant.

    Attributes:
        prm: ``[1, PRM_SIZE]``: its parameters.
        acct: ``[1, ACCT_SIZE]``: its starting account (shared by the variants of the
            same starting cash; the kernel copies it).
        limits: Its drawdown limits (shared likewise; the kernel only reads them).
        limits_at: ``[0, len(limits)]``.
        sent_at: ``[0, the rate limiter's ring length]``.
    """

    prm: npt.NDArray[np.float64]
    acct: npt.NDArray[np.float64]
    limits: npt.NDArray[np.float64]
    limits_at: npt.NDArray[np.int64]
    sent_at: npt.NDArray[np.int64]


class BatchStart:
    """The starting arrays of a batch's variants, one symbol.

    Args:
        spec: Any of the batch's specs: the symbol's start is built from it.
    """

    def __init__(self, spec: CoreSpec) -> None:
        self._key = symbols_key(spec)
        self.sym = start_symbols(spec, 1)
        """``[1, SYM_SIZE]``: the symbol's starting row."""
        self.port = start_portfolio(spec, 1)
        """The portfolio scratch's starting value."""
        self._accounts: dict[float, npt.NDArray[np.float64]] = {}
        self._limits: dict[tuple[float, ...], npt.NDArray[np.float64]] = {}
        self._ats: dict[int, npt.NDArray[np.int64]] = {}

    def variant(self, spec: CoreSpec) -> VariantStart:
        """Return ``spec``'s starting arrays.

        Raises:
            ValueError: ``spec``'s symbol would start otherwise than the batch's.
        """
        if symbols_key(spec) != self._key and not self._same_symbol(spec):
            raise ValueError("the batched variants must share the symbol's starting state")
        prm = spec.vector()
        cash = spec.initial_cash
        acct = self._accounts.get(cash)
        if acct is None:
            acct = self._accounts[cash] = start_account(cash)[np.newaxis]
        drawdown = spec.drawdown_limits
        limits = self._limits.get(drawdown)
        if limits is None:
            limits = self._limits[drawdown] = np.asarray(drawdown, np.float64)
        return VariantStart(
            prm[np.newaxis],
            acct,
            limits,
            self._at(len(drawdown)),
            self._at(int(prm[L.P_RATE_CAPACITY])),
        )

    def _same_symbol(self, spec: CoreSpec) -> bool:
        """Whether ``spec``'s symbol starts as the batch's though its key differs (no
        groups and a group of -1, say)."""
        port = start_portfolio(spec, 1)
        sym = start_symbols(spec, 1)
        return port.shape == self.port.shape and np.array_equal(sym, self.sym, equal_nan=True)

    def _at(self, length: int) -> npt.NDArray[np.int64]:
        at = self._ats.get(length)
        if at is None:
            at = self._ats[length] = np.array([0, length], np.int64)
        return at
