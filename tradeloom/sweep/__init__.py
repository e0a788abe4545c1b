"""Sweeps: many variants of one strategy, walk-forward optimisation, overfitting statistics.

`tradeloom sweep FILE` explores a strategy's settings (grid, random, optuna). Stages are
cached by content hash, variants that differ only downstream of the model run through the
compiled core in one batched call, and tasks run serially, on a local process pool or on a
Dask distributed cluster (`tradeloom.sweep.tasks`) with identical results.
"""
