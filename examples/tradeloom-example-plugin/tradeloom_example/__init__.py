"""An example third-party tradeloom plugin, the model to copy for your own.

It adds a feature (``range_position``), a risk rule in plain Python
(``max_volatility``) and two observers; `tradeloom_example.plugin` registers them.
It also adds a deliberately leaky feature (``future_return``), which
``tradeloom check-lookahead`` catches: never use it in a real strategy.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
