"""The signal rule a promotion puts in force with the challenger's model.

A challenger may declare its own ``signal:`` (its rule, and ``regimes``, ``top_k`` and
``sides`` with the champion's meaning; the strategy's where it writes none); it is
scored in shadow with that rule, so its promotion puts that rule in force with its model:
what trades after the promotion is what was evaluated. A challenger with no ``signal:``
keeps the rule in force (the strategy file's).

Each ``model_swapped`` row says the signal rule in force from the next bar
(``model_swapped.signal``: the section as JSON; '' the strategy file's own, as every row
of an older tradeloom says): a promotion's names the challenger's, every other swap's
(by hand, a hot reload's, a canary's or a watch's rollback) is ''. The running run and a
restart's replay put it in force at the row's bar by the one function (`rule_in_force`),
so a kill -9 at any point around the promotion decides the bars after it as the run
left alone does. A hot reload keeps a promoted rule in force unless it changes the
file's ``signal:`` section, whose rule then decides (`kept_rule`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tradeloom.errors import ConfigError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols import LabelHorizon, SignalRule
from tradeloom.schemas import load_strategy
from tradeloom.schemas.building import build_component
from tradeloom.schemas.yaml_loader import SourceMap, YamlDocument

if TYPE_CHECKING:
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.manager import Plugins
    from tradeloom.schemas.config import StrategyConfig

__all__ = [
    "RUNNER_KEYS",
    "kept_rule",
    "promoted_signal",
    "rule_in_force",
    "ruled_config",
    "signal_text",
]

RUNNER_KEYS = ("regimes", "top_k", "sides")
"""A signal section's keys the runner reads (a challenger's not written: the strategy's)."""

_SIGNAL_FIELDS = ("signal", "signal_regimes", "signal_top_k", "signal_sides")
"""The `StrategyConfig` fields a signal section sets."""


def promoted_signal(document: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """Return the signal section challenger ``name`` of the strategy ``document`` decides
    with (its own, with the strategy's ``regimes``, ``top_k`` and ``sides`` where it
    writes none); None: it has none (the strategy's rule decides for it)."""
    entry = next((e for e in document.get("challengers") or () if e.get("name") == name), None)
    own = None if entry is None else entry.get("signal")
    if not isinstance(own, Mapping):
        return None
    strategy = document.get("signal") or {}
    inherited = {key: strategy[key] for key in RUNNER_KEYS if key in strategy}
    return {**inherited, **own}


def signal_text(section: Mapping[str, Any] | None) -> str:
    """Return ``section`` as ``model_swapped.signal`` holds it ('' for None)."""
    return "" if section is None else json.dumps(dict(section), sort_keys=True)


def rule_in_force(
    config: StrategyConfig, plugins: Plugins, session: LiveSession, text: str
) -> None:
    """Decide ``session``'s bars from the next one with the signal section ``text`` (a
    ``model_swapped`` row's; '' the strategy file ``config``'s own), its rule built fresh
    as a hot reload builds one; nothing when it is the rule in force already.

    Raises:
        UserError: The section no longer validates against ``config`` (a journal edited,
            or of another tradeloom).
    """
    if text == session.signal_text:
        return
    ruled = config if not text else _with_section(config, json.loads(text), plugins)
    running = session.p
    model = running.model
    ctx = BuildContext(
        strategy_name=config.name,
        strategy_dir=config.source.parent,
        seed=config.seed,
        feature_columns=tuple(running.feature_columns),
        feature_spec=tuple(config.feature_spec()),
        horizon=int(model.horizon or 0) if isinstance(model, LabelHorizon) else 0,
    )
    signal, problems = build_component(ruled.signal, ctx, ruled.locate)
    if problems or not isinstance(signal, SignalRule):
        raise ConfigError(problems)
    new_config = ruled_config(running.config, ruled)
    session.p = replace(running, signal=signal, config=new_config)
    session.engine.reconfigure(session.p)
    if new_config.regime is not running.config.regime:
        session.reset_regimes(new_config.regime)
    session.signal_text = text


def ruled_config(running: StrategyConfig, ruled: StrategyConfig) -> StrategyConfig:
    """Return ``running`` with the signal settings of ``ruled`` (its rule's section,
    ``regimes``, ``top_k``, ``sides``; its regime classifier where ``running`` has none),
    everything else kept."""
    regime = running.regime if ruled.regime is None else ruled.regime
    return replace(running, regime=regime, **{f: getattr(ruled, f) for f in _SIGNAL_FIELDS})


def kept_rule(
    session: LiveSession, new: StrategyConfig, changed: tuple[str, ...]
) -> StrategyConfig:
    """Return the config a hot reload to ``new`` (its ``changed`` sections) runs under in
    ``session``: ``new`` itself, or, while a promotion's signal rule is in force and the
    reload leaves the file's ``signal:`` alone, ``new`` with that rule's settings (the
    rule itself stays the running one, `tradeloom.live.lifecycle.reload.Reload.apply`)."""
    if not session.signal_text:
        return new
    if "signal" in changed:
        session.signal_text = ""  # the file's edited rule decides from now on
        return new
    return ruled_config(new, session.p.config)


def _with_section(
    config: StrategyConfig, section: Mapping[str, Any], plugins: Plugins
) -> StrategyConfig:
    document = {k: v for k, v in config.document.items() if k != "challengers"} | {
        "signal": dict(section)
    }
    loaded = YamlDocument(document, SourceMap(f"{config.source} (promoted signal)", {}))
    ruled, _ = load_strategy(config.source, load_plugins=lambda _: plugins, document=loaded)
    return ruled
