"""tradeloom: run AI trading strategies written as YAML."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
