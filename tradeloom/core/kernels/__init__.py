"""The core's pure kernels: the rules the compiled bar and the plugins' per-bar methods share.

Each is written once here and called from the compiled step (`tradeloom.core.bar`) and
from the built-in plugin that exposes it to a strategy file (the ``threshold`` signal
rule, the ``kelly`` and ``fixed_fraction`` sizers, the ``simulated`` venue), so the two
drivers cannot drift. Nothing here imports `tradeloom.plugins`: the plugins import
their kernels from here, and `tradeloom.core.kernels.specs` holds the parameters a
component hands the compiled driver.
"""
