"""The strategy file: YAML loading with positions, overrides, secrets and validation.

`load_strategy` turns a strategy file into a validated `StrategyConfig` (or one
`tradeloom.errors.ConfigError` listing every problem); `strategy_json_schema` describes
the file, installed components included, for YAML editors.
"""

from __future__ import annotations

from tradeloom.schemas.config import ComponentConfig, StrategyConfig
from tradeloom.schemas.json_schema import strategy_json_schema
from tradeloom.schemas.loader import load_strategy
from tradeloom.schemas.secrets import Secret

__all__ = [
    "ComponentConfig",
    "Secret",
    "StrategyConfig",
    "load_strategy",
    "strategy_json_schema",
]
