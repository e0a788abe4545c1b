"""The signal rule and the sizing a promotion puts in force with the challenger's model.

A challenger may declare its own ``signal:`` (its rule, and ``regimes``, ``top_k`` and
``sides`` with the champion's meaning; the strategy's where it writes none) and its own
``sizing:``; it is scored in shadow with them, so its promotion puts them in force with
its model: what trades after the promotion is what was evaluated. A challenger with no
``signal:`` (``sizing:``) keeps the rule (sizing) in force: the strategy file's.

Each ``model_swapped`` row says the signal rule and the sizing in force from the next
bar (``model_swapped.signal`` and ``model_swapped.sizing``: each section as JSON; '' the
strategy file's own, as every row of an older tradeloom says): a promotion's names the
challenger's, every other swap's (by hand, a hot reload's, a canary's or a watch's
rollback) is ''. The running run, a restart's replay and ``tradeloom parity`` put them
in force at the row's bar by the one function (`rule_in_force`; parity through
`ruled_strategy`), so a kill -9 at any point around the promotion decides and sizes the
bars after it as the run left alone does. A hot reload keeps a promoted rule (sizing) in
force unless it changes the file's ``signal:`` section (``risk.sizing``), whose own then
decides (`kept_rule`).

A portfolio file's strategy (a member) is promoted the same way, for that strategy
alone: its ``model_swapped`` row (``strategy`` set) names its challenger's sections, and
`rule_in_force` puts them in force over its strategy file for its books on the account
(`LiveSession.account_rule`), whose regime filter and sides stay every member's
(`tradeloom.schemas.portfolio_file` refuses a promotable member challenger that writes
others). A restart's replay applies each member's rows at their bars as the run did, and
``tradeloom parity`` through each member's ``Pipeline.signal_rules`` (`signal_rules`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tradeloom.errors import ConfigError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols import LabelHorizon, SignalRule, Sizer
from tradeloom.schemas import load_strategy
from tradeloom.schemas.building import build_component
from tradeloom.schemas.yaml_loader import SourceMap, YamlDocument

if TYPE_CHECKING:
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.manager import Plugins
    from tradeloom.schemas.config import ComponentConfig, StrategyConfig

__all__ = [
    "RUNNER_KEYS",
    "kept_rule",
    "promoted_signal",
    "promoted_sizing",
    "rule_in_force",
    "ruled_config",
    "ruled_strategy",
    "signal_rules",
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
    """Return ``section`` as ``model_swapped.signal`` (``sizing``) holds it ('' for None)."""
    return "" if section is None else json.dumps(dict(section), sort_keys=True)


def promoted_sizing(document: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """Return the ``sizing`` section challenger ``name`` of the strategy ``document``
    sizes with (its own); None: it has none (the strategy's ``risk.sizing`` sizes for it)."""
    entry = next((e for e in document.get("challengers") or () if e.get("name") == name), None)
    own = None if entry is None else entry.get("sizing")
    return dict(own) if isinstance(own, Mapping) else None


def rule_in_force(
    config: StrategyConfig, plugins: Plugins, session: LiveSession, text: str, sizing: str = ""
) -> None:
    """Decide ``session``'s bars from the next one with the signal section ``text`` and
    size them with the sizing section ``sizing`` (a ``model_swapped`` row's ``signal`` and
    ``sizing``; '' the strategy file ``config``'s own), each built fresh as a hot reload
    builds one; a section that is the one in force already keeps its running component.

    Raises:
        UserError: A section no longer validates against ``config`` (a journal edited,
            or of another tradeloom).
    """
    new_rule, new_size = text != session.signal_text, sizing != session.sizing_text
    if not new_rule and not new_size:
        return
    ruled = ruled_strategy(config, text, sizing, plugins)
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
    signal = _built(ruled.signal, ctx, ruled, SignalRule) if new_rule else running.signal
    sizer = _built(ruled.sizing, ctx, ruled, Sizer) if new_size else running.sizer
    new_config = ruled_config(running.config, ruled)
    if session.account_rule is not None:  # the account's regime filter (every member's) stays
        new_config = replace(new_config, regime=running.config.regime)
    session.p = replace(running, signal=signal, sizer=sizer, config=new_config)
    session.engine.reconfigure(session.p)
    if session.account_rule is not None:  # a portfolio's member: the account trades its books
        session.account_rule(session.p)
    if new_config.regime != running.config.regime:  # (equal: a new object, the same labels)
        session.reset_regimes(new_config.regime)
    session.signal_text, session.sizing_text = text, sizing


def ruled_strategy(
    config: StrategyConfig, text: str, sizing: str, plugins: Plugins
) -> StrategyConfig:
    """Return the strategy ``config`` with the signal section ``text`` and the sizing
    section ``sizing`` (as ``model_swapped`` holds them; '' its own) in its place,
    validated (its challengers left out: they do not decide)."""
    if not text and not sizing:
        return config
    document = {k: v for k, v in config.document.items() if k != "challengers"}
    if text:
        document["signal"] = json.loads(text)
    if sizing:
        document["risk"] = {**(document.get("risk") or {}), "sizing": json.loads(sizing)}
    loaded = YamlDocument(document, SourceMap(f"{config.source} (promoted challenger)", {}))
    ruled, _ = load_strategy(config.source, load_plugins=lambda _: plugins, document=loaded)
    return ruled


def signal_rules(
    config: StrategyConfig, plugins: Plugins, changes: Iterable[tuple[int, str, str]]
) -> tuple[tuple[int, SignalRule, Sizer, StrategyConfig], ...]:
    """Return each change ``(time, signal, sizing)`` of a run's rule in force (its
    ``model_swapped`` rows') as ``Pipeline.signal_rules`` holds it: the strategy ``config``
    with the journaled sections ('' its own), its rule and sizing built (`ruled_strategy`,
    as the run did): what a parity replay trades from each change's bar on."""
    from tradeloom.engine.wiring import build_pipeline

    ruled = []
    for time, text, sizing in changes:
        built = build_pipeline(ruled_strategy(config, text, sizing, plugins))
        ruled.append((time, built.signal, built.sizer, ruled_config(config, built.config)))
    return tuple(ruled)


def ruled_config(
    running: StrategyConfig, ruled: StrategyConfig, *, signal: bool = True, sizing: bool = True
) -> StrategyConfig:
    """Return ``running`` with the signal settings of ``ruled`` (its rule's section,
    ``regimes``, ``top_k``, ``sides``; its regime classifier where ``running`` has none)
    and its ``risk.sizing``, each unless left out, everything else kept."""
    fields: dict[str, Any] = {"sizing": ruled.sizing} if sizing else {}
    if signal:
        regime = running.regime if ruled.regime is None else ruled.regime
        fields |= {"regime": regime, **{f: getattr(ruled, f) for f in _SIGNAL_FIELDS}}
    return replace(running, **fields)


def kept_rule(
    session: LiveSession, swapped: Pipeline, changed: tuple[str, ...], changes: tuple[str, ...]
) -> Pipeline:
    """Return the pipeline a hot reload runs ``session`` with: ``swapped`` (the new file's,
    its ``changed`` sections' layers swapped in: `tradeloom.live.lifecycle.reload.Reload.
    apply`), or, while a promotion's signal rule (sizing) is in force and the reload leaves
    the file's ``signal:`` (``risk.sizing``, by its ``changes`` lines) alone, ``swapped``
    with that rule (sizing) and its settings kept. An edited section's file's component
    decides from now on."""
    if "signal" in changed:
        session.signal_text = ""
    if any(line.startswith(("risk.sizing.", "risk.sizing:")) for line in changes):
        session.sizing_text = ""
    rule, size = bool(session.signal_text), bool(session.sizing_text)
    if not rule and not size:
        return swapped
    running = session.p
    config = ruled_config(swapped.config, running.config, signal=rule, sizing=size)
    return replace(
        swapped,
        config=config,
        signal=running.signal if rule else swapped.signal,
        sizer=running.sizer if size else swapped.sizer,
    )


def _built(item: ComponentConfig, ctx: BuildContext, ruled: StrategyConfig, kind: type) -> Any:
    built, problems = build_component(item, ctx, ruled.locate)
    if problems or not isinstance(built, kind):
        raise ConfigError(problems)
    return built
