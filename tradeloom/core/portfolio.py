"""Portfolio risk at a bar: signal ranking, exposure limits and the correlation limit.

When a strategy sets ``signal.top_k`` or any key of ``risk.portfolio``, the ladder
(`tradeloom.core.bar`, stage 9) does not accept a signal that passed every rung and
was sized: it makes it a *candidate*. Candidates are the bar's entries and
reversals, the signals that add exposure; exits never compete. Once every symbol
has been through the ladder, `decide_candidates` ranks them and checks them:

- **Ranking.** By the signal's confidence, highest first; equal confidences go in
  the order of the symbols in the strategy file (the lower index first), so a run
  is deterministic. ``signal.top_k`` keeps the k best; a candidate ranked below is
  refused ``RANK`` (values: its rank, k). The rank counts every candidate, whatever
  later checks make of the ones above it.
- **Portfolio limits**, checked in rank order, the first failure wins, each accepted
  candidate counting toward the next one's check:
  ``MAX_OPEN_POSITIONS`` (an entry when the positions held plus the entries accepted
  this bar already reach the limit), ``MAX_WEIGHT`` (the candidate's weight),
  ``MAX_GROSS_EXPOSURE`` (sum of |weight| after it), ``MAX_NET_EXPOSURE`` (|sum of
  weight| after it), ``GROUP_EXPOSURE`` (sum of |weight| of its group after it), and
  ``CORRELATION`` (below). A value exactly at a limit passes.
- **Weights** are signed fractions of the equity at the mark: a candidate's is its
  sized fraction (times the margin account's leverage), a held position's is its
  quantity at its mark over the equity. A position this bar exits (a halt, the
  holding limit, a signal turned away) counts as gone; a candidate reversal counts
  at its held position until its own turn, and as gone if it is refused (a refused
  reversal still exits what is held).
- **Correlation.** Each symbol's close-to-close returns of consecutive bars go into a
  ring of the last ``window`` bars (a bar the symbol lacks, and the bar after it,
  have no return). The correlation of two symbols is Pearson's over the bars where
  both have a return; with fewer than ``max(3, ceil(window / 2))`` such bars, or a
  constant series, it is not computed and the pair passes. It is signed by the two
  directions: a long against a short on positively correlated markets is a hedge
  (its signed correlation is negative) and passes, while a long against a short on
  negatively correlated markets doubles the bet and counts. A candidate whose
  signed correlation with a held position or a candidate accepted before it exceeds
  ``max`` is refused ``CORRELATION`` with the other symbol (the most correlated; the
  lower index on a tie), the signed correlation, the limit and the window.

Every refusal is an ``EV_REJECT`` row; a refused candidate falls back as any refused
signal does (`tradeloom.core.intent.fall_back`). With none of the keys set, the
ladder accepts each signal where it stands, as it always did.
"""

from __future__ import annotations

import math

from tradeloom.core import codes
from tradeloom.core.accounting import is_dust
from tradeloom.core.intent import accept, fall_back, signal_purpose
from tradeloom.core.layout import (
    A_EQUITY,
    A_RETURNS,
    P_LEVERAGE,
    P_MAX_CORRELATION,
    P_MAX_GROSS,
    P_MAX_GROUP,
    P_MAX_NET,
    P_MAX_OPEN,
    P_MAX_WEIGHT,
    P_TOP_K,
    PORT_ORDER,
    PORT_ROWS,
    PORT_WEIGHT,
    S_CANDIDATE,
    S_GROUP,
    S_I_REASON,
    S_I_TARGET,
    S_LAST_CLOSE,
    S_MARK,
    S_QTY,
    S_W_ACTIVE,
    S_W_DIR,
    S_X_CONF,
    S_X_DIR,
    S_X_HELD,
    S_X_SIZE,
)
from tradeloom.core.rows import emit_rejection
from tradeloom.kernels.jit import core_kernel, core_stage
from tradeloom.runtime.lazy import numpy as np

__all__ = ["correlation", "decide_candidates", "min_overlap", "push_returns"]


@core_kernel
def min_overlap(window: int) -> int:
    """Return how many common returns a correlation needs: ``max(3, ceil(window / 2))``."""
    return max(3, (window + 1) // 2)


@core_stage
def push_returns(
    acct: np.ndarray, sym: np.ndarray, port: np.ndarray, px: np.ndarray, i: int
) -> None:
    """Put every symbol's return of input row ``i`` into the ring (NaN: none)."""
    window = port.shape[0] - PORT_ROWS
    if window <= 0:
        return
    row = PORT_ROWS + int(acct[A_RETURNS]) % window
    for s in range(sym.shape[0]):
        close = px[3, i, s]
        last = sym[s, S_LAST_CLOSE]
        value = math.nan
        if close == close and last == last and last > 0.0:
            value = close / last - 1.0
        port[row, s] = value
        sym[s, S_LAST_CLOSE] = close  # NaN after a missing bar: no return across a gap
    acct[A_RETURNS] += 1.0


@core_kernel
def correlation(acct: np.ndarray, port: np.ndarray, a: int, b: int) -> float:
    """Return the correlation of symbols ``a`` and ``b`` over the ring (NaN: not computed)."""
    window = port.shape[0] - PORT_ROWS
    rows = min(int(acct[A_RETURNS]), window)
    n = 0
    sum_x = 0.0
    sum_y = 0.0
    for k in range(PORT_ROWS, PORT_ROWS + rows):
        x = port[k, a]
        y = port[k, b]
        if x == x and y == y:
            n += 1
            sum_x += x
            sum_y += y
    if n < min_overlap(window):
        return math.nan
    mean_x = sum_x / n
    mean_y = sum_y / n
    cov = 0.0
    var_x = 0.0
    var_y = 0.0
    for k in range(PORT_ROWS, PORT_ROWS + rows):
        x = port[k, a]
        y = port[k, b]
        if x == x and y == y:
            dx = x - mean_x
            dy = y - mean_y
            cov += dx * dy
            var_x += dx * dx
            var_y += dy * dy
    if not (var_x > 0.0 and var_y > 0.0):
        return math.nan
    return min(1.0, max(-1.0, cov / math.sqrt(var_x * var_y)))


@core_kernel
def _rank(sym: np.ndarray, order: np.ndarray) -> int:
    """Write the candidates into ``order``, best first; return how many there are."""
    n = 0
    for s in range(sym.shape[0]):
        if sym[s, S_CANDIDATE] == 0.0:
            continue
        confidence = sym[s, S_X_CONF]
        if confidence != confidence:
            confidence = -math.inf
        k = n
        # after every candidate with a confidence >= its own: ties keep the file's order
        while k > 0:
            other = sym[int(order[k - 1]), S_X_CONF]
            if other != other:
                other = -math.inf
            if other >= confidence:
                break
            order[k] = order[k - 1]
            k -= 1
        order[k] = s
        n += 1
    return n


@core_kernel
def _most_correlated(
    acct: np.ndarray, sym: np.ndarray, port: np.ndarray, weight: np.ndarray, s: int, w: float
) -> tuple[int, float]:
    """Return the symbol most correlated with a weight ``w`` in ``s`` (-1: none), signed."""
    best = -1
    best_rho = -math.inf
    for k in range(sym.shape[0]):
        if k == s or weight[k] == 0.0:
            continue
        rho = correlation(acct, port, s, k)
        if rho != rho:
            continue
        signed = rho if (w > 0.0) == (weight[k] > 0.0) else -rho
        if signed > best_rho:
            best = k
            best_rho = signed
    return best, best_rho


@core_stage
def decide_candidates(
    acct: np.ndarray,
    sym: np.ndarray,
    prm: np.ndarray,
    port: np.ndarray,
    ev: np.ndarray,
    cur: np.ndarray,
    t: int,
) -> None:
    """Rank the bar's candidates and accept or refuse each in rank order (module docstring)."""
    order = port[PORT_ORDER]
    weight = port[PORT_WEIGHT]
    nsym = sym.shape[0]
    equity = acct[A_EQUITY]
    leverage = prm[P_LEVERAGE]
    top_k = int(prm[P_TOP_K])
    max_open = prm[P_MAX_OPEN]
    max_weight = prm[P_MAX_WEIGHT]
    max_gross = prm[P_MAX_GROSS]
    max_net = prm[P_MAX_NET]
    max_group = prm[P_MAX_GROUP]
    max_rho = prm[P_MAX_CORRELATION]
    window = port.shape[0] - PORT_ROWS
    n = _rank(sym, order)
    held = 0
    for s in range(nsym):
        exiting = sym[s, S_I_REASON] != 0.0 and sym[s, S_I_TARGET] == 0.0
        quantity = sym[s, S_QTY]
        w = 0.0
        if not exiting and quantity != 0.0 and equity > 0.0:
            w = quantity * sym[s, S_MARK] / equity
        weight[s] = w
        if sym[s, S_W_ACTIVE] != 0.0:
            side = sym[s, S_W_DIR]
        else:
            side = 0.0 if is_dust(sym, prm, s, quantity) else quantity
        if side != 0.0 and not exiting:
            held += 1
    for r in range(n):
        s = int(order[r])
        sym[s, S_CANDIDATE] = 0.0
        size = sym[s, S_X_SIZE]
        w = sym[s, S_X_DIR] * size * leverage
        entry = sym[s, S_X_HELD] == 0.0
        counted = not entry and not (sym[s, S_I_REASON] != 0.0 and sym[s, S_I_TARGET] == 0.0)
        code = 0
        v0 = v1 = v2 = v3 = 0.0
        if top_k > 0 and r + 1 > top_k:
            code, v0, v1 = codes.RANK, r + 1, top_k
        elif entry and held + 1 > max_open:  # False for NaN: no limit
            code, v0, v1 = codes.MAX_OPEN_POSITIONS, held, max_open
        elif abs(w) > max_weight:
            code, v0, v1 = codes.MAX_WEIGHT, abs(w), max_weight
        else:
            gross = abs(w)
            net = w
            group = int(sym[s, S_GROUP])
            group_gross = abs(w)
            for k in range(nsym):
                if k != s:
                    gross += abs(weight[k])
                    net += weight[k]
                    if group >= 0 and int(sym[k, S_GROUP]) == group:
                        group_gross += abs(weight[k])
            if gross > max_gross:
                code, v0, v1 = codes.MAX_GROSS_EXPOSURE, gross, max_gross
            elif abs(net) > max_net:
                code, v0, v1 = codes.MAX_NET_EXPOSURE, net, max_net
            elif group >= 0 and group_gross > max_group:
                code, v0, v1, v2 = codes.GROUP_EXPOSURE, group, group_gross, max_group
            elif window > 0:
                other, rho = _most_correlated(acct, sym, port, weight, s, w)
                if other >= 0 and rho > max_rho:
                    code, v0, v1, v2, v3 = codes.CORRELATION, other, rho, max_rho, window
        if code == 0:
            accept(sym, ev, cur, t, s, size)
            weight[s] = w
            if entry:
                held += 1
            continue
        emit_rejection(ev, cur, t, s, code, (v0, v1, v2, v3), signal_purpose(sym, s))
        fall_back(sym, s)  # a refused reversal exits what is held: it counts as gone
        weight[s] = 0.0
        if counted:
            held -= 1
