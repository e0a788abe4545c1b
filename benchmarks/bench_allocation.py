"""What the allocation layer costs: one rebalance by allocator and universe size, against
skfolio and PyPortfolioOpt called directly, and a whole backtest against the same universe
without allocation.

1. **A rebalance.** Each allocator (its params' defaults: Ledoit-Wolf covariance,
   long-only, summing to 1) is called on a seeded window of ``--window`` returns of a
   one-factor market of 50, 200 and 500 assets, as the engine calls it (with the
   model's probabilities and a horizon of 4 for Black-Litterman). Each is warmed up
   once, then timed ``--runs`` times; the median is printed, and its ratio to
   ``equal_weight``'s (the reference measured in the same run).
2. **Against the references** (``--references``, by default at every size): each
   allocator, skfolio's estimator of the same name and PyPortfolioOpt's (where it has
   one) are given the same returns, from returns to weights (each estimates its own
   Ledoit-Wolf covariance), in rounds that alternate their order; the medians of their
   CPU time (``time.process_time``) and wall time, the ratio of ours to the fastest
   reference's CPU, and the largest difference of weights to each. Every process runs
   the native libraries on one thread, as ``tradeloom run`` does
   (`tradeloom.runtime.threads`): with OpenBLAS's default of a thread per core a busy
   2-core machine spends 10-40x the CPU in spinning threads, for every engine alike. The
   load average is printed beside every figure.
3. **Rolling rebalances** (``--rolling R``, 0: skip). Each allocator that estimates a
   covariance is given ``R`` consecutive windows of ``--window`` returns, each the last
   slid by ``--slide`` bars (a rebalance every ``--slide`` bars), after a first one
   untimed: once recomputing every window's covariance (``RECOMPUTE_EVERY = 1``, the
   estimate before it was carried), once carrying it
   (`tradeloom.plugins.allocation.rolling`: updated by the bars that entered and left,
   recomputed every ``RECOMPUTE_EVERY`` rebalances), in rounds that alternate the two.
   Printed: the CPU per rebalance of each (the median round's, the carried one's
   recomputations included), the ratio, and the largest weight difference between them.
   Sections 1 and 2 time whole rebalances: the carried state is reset before each call.
4. **A whole run.** A universe of ``--symbols`` x ``--bars`` hourly bars with a
   precomputed probability column, backtested through the Python API (in memory) by a
   threshold signal with no allocation, then with risk parity rebalanced every 24 bars
   over a 240-bar window; medians of ``--runs`` runs after a warm-up, and their ratio.
   The allocation run stops the compiled core at every bar for the allocation stage.

    python benchmarks/bench_allocation.py [--sizes 50 200 500] [--runs 5] [--window 750]
        [--rolling 16] [--slide 24] [--symbols 20] [--bars 5000] [--only KIND ...]
        [--no-references] [--no-run] [--smoke]

``--smoke`` runs size 10, one run, 2 symbols x 300 bars (risk parity's window of 240
filled, then rebalanced): a check that it works (its rolling section at 60 assets, the
least that carries an estimate, one slid window).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

ALLOCATORS = (
    "equal_weight",
    "inverse_volatility",
    "risk_parity",
    "minimum_variance",
    "mean_variance",
    "hrp",
    "maximum_diversification",
    "black_litterman",
)


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _median(call: Callable[[], Any], runs: int) -> float:
    call()  # warm-up (imports, a solver's first set-up)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _returns(assets: int, window: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factor = rng.normal(0.0, 0.01, (window, 1))
    beta = rng.uniform(0.5, 1.5, (1, assets))
    return factor * beta + rng.normal(0.0, 0.01, (window, assets))


def _allocator(kind: str) -> Any:
    from tradeloom.plugins.component import BuildContext
    from tradeloom.plugins.manager import load_plugins

    found = load_plugins(()).registry.get("allocation", kind)
    assert found is not None, kind
    component = found.component
    return component.factory(component.params(), BuildContext("bench", Path("."), 0))


def rebalance_costs(
    sizes: Sequence[int], window: int, runs: int, kinds: Sequence[str] = ALLOCATORS
) -> None:
    """Print the median cost of one rebalance, by allocator and size."""
    from tradeloom.plugins.protocols_allocation import WeightConstraints

    print(f"\none rebalance, median of {runs} (window {window} returns), ms:")
    print(f"  {'allocator':<24}" + "".join(f"{n:>10} assets" for n in sizes))
    reference: dict[int, float] = {}
    for kind in kinds:
        try:
            allocator = _allocator(kind)
        except Exception as exc:  # the allocation extra missing: say so, go on
            print(f"  {kind:<24}  not available: {exc}")
            continue
        cells = []
        for n in sizes:
            returns = _returns(n, window)
            constraints = WeightConstraints.long_only(n)
            p = np.random.default_rng(n).uniform(0.3, 0.7, n)
            result = allocator.allocate(returns, constraints, p, 4, None)
            args = (allocator, returns, constraints, p, 4, None)
            seconds = _median(functools.partial(_whole, *args), runs)
            reference.setdefault(n, seconds)
            status = "" if result.status == "ok" else f" ({result.status})"
            cells.append(f"{seconds * 1e3:>9.2f} x{seconds / reference[n]:<5.0f}{status}")
        print(f"  {kind:<24}" + "".join(f"{c:>16}" for c in cells) + f"  {_load()}", flush=True)
    print("  (x: the ratio to equal_weight's time at the same size)")


RISK_AVERSION = 1.0
"""Black-Litterman's default risk aversion (its equilibrium's), and PyPortfolioOpt's
``delta`` is twice it."""


def _frame(returns: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(returns, columns=[f"a{k:04d}" for k in range(returns.shape[1])])


def _skfolio(kind: str, p: np.ndarray) -> Callable[[pd.DataFrame], np.ndarray] | None:
    """Return skfolio's estimator of ``kind`` as a call from returns to weights, or None."""
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.distance import CovarianceDistance
    from skfolio.moments import LedoitWolf
    from skfolio.optimization import (
        EqualWeighted,
        HierarchicalRiskParity,
        InverseVolatility,
        MaximumDiversification,
        MeanRisk,
        ObjectiveFunction,
        RiskBudgeting,
    )
    from skfolio.prior import EmpiricalPrior
    from skfolio.seriation import HierarchicalSeriation

    def prior() -> EmpiricalPrior:
        return EmpiricalPrior(covariance_estimator=LedoitWolf())

    estimators: dict[str, Callable[[], Any]] = {
        "equal_weight": EqualWeighted,
        "inverse_volatility": lambda: InverseVolatility(prior_estimator=prior()),
        "risk_parity": lambda: RiskBudgeting(prior_estimator=prior()),
        "minimum_variance": lambda: MeanRisk(prior_estimator=prior()),
        "mean_variance": lambda: MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_RATIO, prior_estimator=prior()
        ),
        "hrp": lambda: HierarchicalRiskParity(
            prior_estimator=prior(),
            distance_estimator=CovarianceDistance(covariance_estimator="precomputed"),
            seriation_estimator=HierarchicalSeriation(
                hierarchical_clustering_estimator=HierarchicalClustering(
                    linkage_method=LinkageMethod.SINGLE
                ),
                optimal_ordering=False,
            ),
        ),
        "maximum_diversification": lambda: MaximumDiversification(prior_estimator=prior()),
    }
    make = estimators.get(kind)
    if make is None:
        return None

    def fit(frame: pd.DataFrame) -> np.ndarray:
        estimator = make()
        if kind == "hrp":  # the distance of the prior's own covariance, as ours
            estimator.set_params(distance_estimator__covariance_estimator="precomputed")
        return np.asarray(estimator.fit(frame).weights_)

    return fit


def _pyportfolioopt(kind: str, p: np.ndarray) -> Callable[[pd.DataFrame], np.ndarray] | None:
    """Return PyPortfolioOpt's optimiser of ``kind`` as a call from returns to weights, or
    None where it has none."""
    from pypfopt import EfficientFrontier, HRPOpt
    from pypfopt.black_litterman import BlackLittermanModel, market_implied_prior_returns
    from pypfopt.risk_models import CovarianceShrinkage

    from tradeloom.plugins.allocation.black_litterman import probability_views

    def shrunk(frame: pd.DataFrame) -> pd.DataFrame:
        return CovarianceShrinkage(frame, returns_data=True, frequency=1).ledoit_wolf()

    def minimum_variance(frame: pd.DataFrame) -> np.ndarray:
        frontier = EfficientFrontier(None, shrunk(frame))
        return np.array(list(frontier.min_volatility().values()))

    def max_sharpe(frame: pd.DataFrame) -> np.ndarray:
        frontier = EfficientFrontier(frame.mean(), shrunk(frame))
        return np.array(list(frontier.max_sharpe(risk_free_rate=0.0).values()))

    def hrp(frame: pd.DataFrame) -> np.ndarray:
        # the tree of the covariance's correlation (given returns, it would read theirs)
        weights = HRPOpt(cov_matrix=shrunk(frame)).optimize("single")
        return np.array([weights[name] for name in frame.columns])

    def black_litterman(frame: pd.DataFrame) -> np.ndarray:
        cov = shrunk(frame)
        n = cov.shape[0]
        pi = market_implied_prior_returns(
            pd.Series(np.ones(n), index=cov.index), 2 * RISK_AVERSION, cov, risk_free_rate=0.0
        )
        volatility = np.sqrt(np.diag(cov.to_numpy()))
        symbols, views, confidence = probability_views(p, volatility, 4, 0.95)
        keep = confidence > 0
        model = BlackLittermanModel(
            cov,
            pi=pi,
            Q=views[keep],
            P=np.eye(n)[symbols[keep]],
            omega="idzorek",
            view_confidences=confidence[keep],
            tau=0.05,
        )
        frontier = EfficientFrontier(model.bl_returns(), model.bl_cov())
        return np.array(list(frontier.max_sharpe(risk_free_rate=0.0).values()))

    calls: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
        "minimum_variance": minimum_variance,
        "mean_variance": max_sharpe,
        "hrp": hrp,
        "black_litterman": black_litterman,
    }
    return calls.get(kind)


def _whole(allocator: Any, *args: Any) -> Any:
    carried = getattr(allocator, "carried", None)
    if carried is not None:  # a whole rebalance: nothing carried from the last call
        carried.reset()
    return allocator.allocate(*args)


def _weights_of(allocator: Any, returns: np.ndarray, constraints: Any, p: np.ndarray) -> Any:
    return _whole(allocator, returns, constraints, p, 4, None).weights


def rolling_costs(
    sizes: Sequence[int], window: int, slide: int, rolls: int, kinds: Sequence[str]
) -> None:
    """Print, by allocator and size, the CPU per rebalance of ``rolls`` consecutive slid
    windows with the covariance recomputed and carried (section 3), alternated."""
    from tradeloom.plugins.allocation import rolling
    from tradeloom.plugins.protocols_allocation import WeightConstraints

    print(
        f"\nrolling rebalances: {rolls} windows of {window} returns, each slid by {slide}, "
        f"CPU s per rebalance (recomputed every {rolling.RECOMPUTE_EVERY}):"
    )
    print(f"  {'allocator':<24}{'assets':>7}  recomputed   carried    ratio  |dw|")
    for kind in kinds:
        for n in sizes:
            series = _returns(n, window + rolls * slide)
            windows = [series[j * slide : j * slide + window] for j in range(rolls + 1)]
            constraints = WeightConstraints.long_only(n)
            p = np.random.default_rng(n).uniform(0.3, 0.7, n)
            paths = {"recomputed": 1, "carried": rolling.RECOMPUTE_EVERY}
            allocators = {name: _allocator(kind) for name in paths}
            if getattr(allocators["carried"], "carried", None) is None:
                break  # no covariance to carry (equal_weight)
            for name, every in paths.items():
                allocators[name].carried.every = every
            cpu: dict[str, list[float]] = {name: [] for name in paths}
            weights: dict[str, list[Any]] = {name: [] for name in paths}
            order = list(paths)
            for r in range(2):  # two alternated rounds of the whole sequence each
                for name in order[r:] + order[:r]:
                    allocator = allocators[name]
                    allocator.carried.reset()
                    allocator.allocate(windows[0], constraints, p, 4, None)  # the first
                    spent, found = 0.0, []
                    for w in windows[1:]:
                        seconds, _, result = _timed(
                            functools.partial(allocator.allocate, w, constraints, p, 4, None)
                        )
                        spent += seconds
                        found.append(result.weights)
                    cpu[name].append(spent / rolls)
                    weights[name] = found
            gap = max(
                float(np.abs(a - b).max())
                for a, b in zip(weights["recomputed"], weights["carried"], strict=True)
                if a is not None and b is not None
            )
            before, after = min(cpu["recomputed"]), min(cpu["carried"])
            print(
                f"  {kind:<24}{n:>7}  {before:9.3f}  {after:9.3f}  {before / after:6.2f}x  "
                f"{gap:.1e}  {_load()}",
                flush=True,
            )
    print("  (ratio: recomputed over carried; the better of two rounds each; |dw|: the")
    print("  largest weight difference between the two paths over the windows)")


def _timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    out = call()
    return time.process_time() - cpu, time.perf_counter() - start, out


def reference_costs(sizes: Sequence[int], window: int, runs: int, kinds: Sequence[str]) -> None:
    """Print, by allocator and size, the median CPU and wall time of one rebalance of
    ours, skfolio's and PyPortfolioOpt's, alternated, and the weights' differences."""
    from tradeloom.plugins.protocols_allocation import WeightConstraints

    print(f"\nagainst skfolio and PyPortfolioOpt, median of {runs} alternated rounds, CPU s:")
    header = "ours (wall)         skfolio (wall)      PyPortfolioOpt      ratio  |dw| sk, ppo"
    print(f"  {'allocator':<24}{'assets':>7}  {header}")
    for kind in kinds:
        allocator = _allocator(kind)
        for n in sizes:
            returns = _returns(n, window)
            frame = _frame(returns)
            p = np.random.default_rng(n).uniform(0.3, 0.7, n)
            constraints = WeightConstraints.long_only(n)
            engines: dict[str, Callable[[], Any]] = {
                "ours": functools.partial(_weights_of, allocator, returns, constraints, p)
            }
            for name, make in (("skfolio", _skfolio), ("pyportfolioopt", _pyportfolioopt)):
                found = make(kind, p)
                if found is not None:
                    engines[name] = functools.partial(found, frame)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
            weights: dict[str, Any] = {}
            order = list(engines)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name in list(order):  # warm-up: imports, a solver's first set-up
                    try:
                        weights[name] = engines[name]()
                    except Exception as exc:  # a reference that fails here: say so, go on
                        print(f"  {kind} {n}: {name} failed: {type(exc).__name__}: {exc}")
                        order.remove(name)
                        del times[name]
                for r in range(runs):
                    for name in order[r % len(order) :] + order[: r % len(order)]:
                        cpu, wall, _ = _timed(engines[name])
                        times[name].append((cpu, wall))
            cells, medians = [], {}
            for name in ("ours", "skfolio", "pyportfolioopt"):
                if name not in times:
                    cells.append(f"{'-':<20}")
                    continue
                cpu = statistics.median(t[0] for t in times[name])
                wall = statistics.median(t[1] for t in times[name])
                medians[name] = cpu
                cells.append(f"{cpu:7.3f} ({wall:7.3f})  ")
            others = [v for k, v in medians.items() if k != "ours"]
            ratio = f"{medians['ours'] / min(others):6.2f}x" if others else "     -"
            ours = weights["ours"]
            gaps = []
            for name in ("skfolio", "pyportfolioopt"):
                theirs = weights.get(name)
                if theirs is None or ours is None:
                    gaps.append("-")
                else:
                    gaps.append(f"{float(np.abs(np.asarray(theirs) - ours).max()):.1e}")
            print(
                f"  {kind:<24}{n:>7}  {''.join(cells)}{ratio}  {', '.join(gaps)}  {_load()}",
                flush=True,
            )
    print("  (ratio: ours' CPU over the fastest reference's; |dw|: the largest weight difference)")


def _universe(symbols: int, bars: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    times = pd.date_range("2024-01-01", periods=bars, freq="h", tz="UTC", name="timestamp")
    common = rng.normal(0.0, 0.004, bars)
    parts = []
    for k in range(symbols):
        close = 100.0 * np.exp(np.cumsum(common + rng.normal(0.0, 0.006, bars)))
        parts.append(
            pd.DataFrame(
                {
                    "symbol": f"S{k:03d}/USDT",
                    "open": close,
                    "high": close * 1.002,
                    "low": close * 0.998,
                    "close": close,
                    "volume": 1e6,
                    "p_up": rng.uniform(0.0, 1.0, bars),
                },
                index=times,
            )
        )
    return pd.concat(parts).reset_index()


def run_costs(symbols: int, bars: int, runs: int) -> None:
    """Print the median time of a whole backtest with and without allocation."""
    from tradeloom.api import load

    frame = _universe(symbols, bars)
    names = [f"S{k:03d}/USDT" for k in range(symbols)]
    base: dict[str, Any] = {
        "name": "bench_allocation",
        "data": {"kind": "synthetic", "symbols": names, "timeframe": "1h", "bars": bars},
        "features": [{"kind": "log_return", "period": 1}],
        "model": {"kind": "precomputed", "column": "p_up", "horizon": 4},
        "signal": {"kind": "threshold", "threshold": 0.3},
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.02}},
        "execution": {"kind": "simulated", "initial_cash": 100000, "fee_bps": 10},
    }
    allocated = dict(base)
    allocated["allocation"] = {
        "kind": "risk_parity",
        "window": 240,
        "constraints": {"net_exposure": 0.98},
        "rebalance": {"every": 24},
    }
    plain = load(base).with_data(frame)
    alloc = load(allocated).with_data(frame)
    without = _median(lambda: plain.backtest(quiet=True), runs)
    with_allocation = _median(lambda: alloc.backtest(quiet=True), runs)
    print(f"\nwhole backtest, {symbols} symbols x {bars:,} bars, median of {runs}:")
    print(f"  without allocation (threshold signal)      {without:8.2f} s")
    print(f"  risk_parity every 24 bars, window 240       {with_allocation:8.2f} s")
    print(f"  ratio                                       {with_allocation / without:8.2f}x")
    print(f"  {_load()}")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, print the machine and the measurements."""
    from tradeloom.runtime.threads import apply_native_threads

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=int, default=750)
    parser.add_argument("--rolling", type=int, default=16, help="section 3's windows (0: skip)")
    parser.add_argument("--slide", type=int, default=24, help="section 3's bars between windows")
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--bars", type=int, default=5000)
    parser.add_argument("--only", nargs="+", choices=ALLOCATORS, default=list(ALLOCATORS))
    parser.add_argument("--no-references", action="store_true", help="skip section 2")
    parser.add_argument("--no-run", action="store_true", help="skip section 4")
    add_smoke(parser, sizes=[10], runs=1, window=120, rolling=1, symbols=2, bars=300)
    args = parse_args(parser, argv)
    apply_native_threads(1)  # as `tradeloom run`: one native thread (see the module)
    print(describe("numpy", "scipy", "cvxpy-base", "clarabel", "skfolio", "PyPortfolioOpt"))
    rebalance_costs(args.sizes, args.window, args.runs, args.only)
    if not args.no_references:
        reference_costs(args.sizes, args.window, args.runs, args.only)
    if args.rolling:
        from tradeloom.plugins.allocation.rolling import MIN_SYMBOLS

        sizes = args.sizes if not args.smoke else [MIN_SYMBOLS + 12]
        rolling_costs(sizes, args.window, args.slide, args.rolling, args.only)
    if not args.no_run:
        run_costs(args.symbols, args.bars, args.runs)


if __name__ == "__main__":
    main()
