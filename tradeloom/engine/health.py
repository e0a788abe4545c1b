"""Health rules: check them against the built monitors, and decide at each bar which fire;
and the run's health beside its monitors': a model that never trained (`never_trained`).

A rule (`tradeloom.schemas.health.HealthRule`) reads ``<monitor name>.<metric>``
from a monitor's `MonitorMetrics.metrics` after the monitors saw the bar. It fires
when its condition becomes true (edge-triggered), and again only once the condition
has been false at some bar and ``cooldown`` bars have passed since it fired: a
metric that stays bad does not fire a retrain at every bar, and one that recovers
and relapses soon after fires when its cooldown ends, if it is still bad.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tradeloom.domain import Bar, Halt, HealthAction, HealthChange, HealthStatus, ModelTraining
from tradeloom.errors import Problem
from tradeloom.plugins.protocols import Monitor, MonitorMetrics, Retrainable, WalkForwardModel
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.schemas.config import StrategyConfig
from tradeloom.schemas.health import HealthRule
from tradeloom.suggestions import did_you_mean

__all__ = [
    "HEALTH_HALT",
    "MODEL_NEVER_TRAINED",
    "HealthRules",
    "action_counts",
    "check_health_rules",
    "health_halt",
    "never_trained",
    "retrains",
    "run_health",
    "worst_health_at",
]

HEALTH_HALT = "HEALTH_HALT"
"""The code of a halt that a health rule's ``halt`` action caused."""


MODEL_NEVER_TRAINED = "MODEL_NEVER_TRAINED"
"""The code of a run whose model trains walk-forward and trained no fold: it predicted
nothing and so traded nothing. Its health is CRITICAL whatever its monitors say."""

_RANKS: tuple[HealthStatus, ...] = ("HEALTHY", "WARNING", "CRITICAL")


def never_trained(
    model: object, trainings: Sequence[ModelTraining], features: pd.DataFrame | None = None
) -> str | None:
    """Return why a model that trains walk-forward trained no fold over the run's bars.

    Args:
        model: The built model; one that is no `WalkForwardModel` (``precomputed``, a
            saved model) trains nothing by design: None.
        trainings: The folds the run planned (skipped ones included).
        features: The feature columns over the bars, to name those NaN on every bar (a
            column the data could not feed); None: not named.

    Returns:
        ``MODEL_NEVER_TRAINED: ...`` in words, or None when a fold trained.
    """
    if not isinstance(model, WalkForwardModel) or any(not t.skipped for t in trainings):
        return None
    if trainings:
        why = sorted({t.skipped for t in trainings})
        cause = (
            f"its {len(trainings):,} walk-forward fold{'s' if len(trainings) != 1 else ''} "
            f"{'were' if len(trainings) != 1 else 'was'} skipped ({', '.join(why)})"
        )
    else:
        bars, needs = model.first_fold_bar()
        cause = (
            f"no walk-forward fold could train: the first needs {bars:,} bars with every "
            f"feature known before the bar it predicts ({needs})"
        )
        if features is not None:
            known = int(features.notna().all(axis=1).sum())
            cause += f", and {known:,} of the {len(features):,} bars have every feature"
    empty = [] if features is None else [str(c) for c in features if features[c].isna().all()]
    if empty:
        verb = "is" if len(empty) == 1 else "are"
        cause += f" ({', '.join(empty)} {verb} NaN on every bar)"
    return f"{MODEL_NEVER_TRAINED}: the model never trained: {cause}; it predicted nothing"


def run_health(statuses: Sequence[str], untrained: str | None) -> str | None:
    """Return the run's health: the worst of its monitors' ``statuses``, CRITICAL when the
    model never trained (``untrained``, `never_trained`); None: no monitor and a model
    that trained (nothing to judge)."""
    known = [s for s in statuses if s in _RANKS] + (["CRITICAL"] if untrained else [])
    return max(known, key=_RANKS.index) if known else None


def worst_health_at(
    changes: Sequence[HealthChange], statuses: Sequence[str], untrained: str | None
) -> dict[str, str]:
    """Return ``{"health_worst_at": "MONITOR at TIME (bar N, METRIC VALUE)"}``: the first
    change to the run's worst status when it is not the one at the end (``statuses``);
    empty otherwise (a run's metrics.json keeps the keys it had)."""
    worst = run_health([str(c.status) for c in changes] + list(statuses), untrained)
    if worst is None or worst == run_health(statuses, untrained):
        return {}
    first = next((c for c in changes if c.status == worst), None)
    if first is None:
        return {}
    label = f"{first.monitor}[{first.symbol}]" if first.symbol else first.monitor
    when = str(first.timestamp)[:16].replace("T", " ")
    return {
        "health_worst_at": (
            f"{label} at {when} (bar {first.bar:,}, {first.metric} {first.value:.4g})"
        )
    }


def health_halt(action: HealthAction) -> Halt:
    """Return the halt a rule's ``halt`` action causes."""
    return Halt(
        action.bar,
        action.timestamp,
        HEALTH_HALT,
        action.reason,
        {"value": action.value, "threshold": action.threshold},
    )


def check_health_rules(
    config: StrategyConfig, monitors: Sequence[object | None], model: object | None
) -> list[Problem]:
    """Return the problems of ``config.health`` and of the monitors' names.

    Args:
        config: The validated strategy.
        monitors: The built monitors, in file order (None where building one failed,
            already reported).
        model: The built model (None if building it failed).

    Returns:
        One problem per monitor whose name another one has, per rule naming an unknown
        monitor or metric (with a did-you-mean), or a monitor without metrics, and per
        ``retrain`` rule with a model that cannot retrain.
    """
    problems: list[Problem] = []
    by_name: dict[str, int] = {}
    for index, monitor in enumerate(monitors):
        if not isinstance(monitor, Monitor):  # its build failed, already reported
            continue
        name = monitor.name
        if name in by_name:
            path = f"monitoring.{index}.name"
            problems.append(
                Problem(
                    config.locate(path),
                    path,
                    f"monitor name '{name}' is already used by monitoring.{by_name[name]}; "
                    "set name: to tell them apart",
                )
            )
        else:
            by_name[name] = index
    for i, rule in enumerate(config.health):
        problem = _metric_problem(rule.metric, by_name, monitors, config)
        if problem is not None:
            path = f"health.{i}.metric"
            problems.append(Problem(config.locate(path), path, problem))
        if rule.action == "retrain" and model is not None and not isinstance(model, Retrainable):
            path = f"health.{i}.action"
            item = config.model
            problems.append(
                Problem(
                    config.locate(path),
                    path,
                    f"retrain needs a model that can retrain; model kind '{item.kind}' "
                    f"(plugin '{item.registered.plugin.name}') cannot (use warn or halt)",
                )
            )
    return problems


def _metric_problem(
    metric: str,
    by_name: Mapping[str, int],
    monitors: Sequence[object | None],
    config: StrategyConfig,
) -> str | None:
    name, _, key = metric.partition(".")
    if name not in by_name:
        if any(monitor is None for monitor in monitors):
            return None  # a monitor failed to build (reported); it may be this one
        known = ", ".join(by_name) or "none"
        return f"unknown monitor '{name}'{did_you_mean(name, by_name)}; monitors: {known}"
    index = by_name[name]
    monitor = monitors[index]
    kind = config.monitoring[index].kind
    if not isinstance(monitor, MonitorMetrics):
        return f"monitor '{name}' (kind {kind}) has no metrics for health rules"
    names = tuple(monitor.metric_names)
    if key not in names:
        return (
            f"monitor '{name}' (kind {kind}) has no metric '{key}'{did_you_mean(key, names)}; "
            f"its metrics: {', '.join(names)}"
        )
    return None


@dataclass
class _State:
    armed: bool = True
    fired: int | None = None


class HealthRules:
    """Decide, bar by bar, which rules fire.

    Args:
        rules: The strategy's rules (checked by `check_health_rules`).
        monitors: The built monitors; each rule reads the one its metric names.
    """

    def __init__(self, rules: Sequence[HealthRule], monitors: Sequence[Monitor]) -> None:
        by_name = {monitor.name: monitor for monitor in monitors}
        self.rules = tuple(rules)
        self._reads: list[tuple[MonitorMetrics, str]] = []
        for rule in self.rules:
            name, _, key = rule.metric.partition(".")
            monitor = by_name[name]
            assert isinstance(monitor, MonitorMetrics)  # checked when the strategy was built
            self._reads.append((monitor, key))
        self._states = [_State() for _ in self.rules]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def check(self, bar: Bar, *, halted: bool = False, symbol: str = "") -> list[HealthAction]:
        """Return the rules that fire at ``bar``, in file order (after the monitors saw it).

        While trading is ``halted``, ``halt`` rules are not checked (and do not fire).
        ``symbol`` is stamped on the actions (the market whose monitors they read).
        """
        fired: list[HealthAction] = []
        values: dict[int, Mapping[str, float]] = {}
        for i, (rule, (monitor, key), state) in enumerate(
            zip(self.rules, self._reads, self._states, strict=True)
        ):
            if halted and rule.action == "halt":
                continue
            metrics = values.get(id(monitor))
            if metrics is None:
                metrics = values[id(monitor)] = monitor.metrics()
            value = float(metrics[key])
            threshold = rule.threshold
            true = value > threshold if rule.condition == "above" else value < threshold
            if not true:  # NaN included
                state.armed = True
                continue
            cooled = state.fired is None or bar.index - state.fired >= rule.cooldown
            if not (state.armed and cooled):
                continue
            state.armed, state.fired = False, bar.index
            fired.append(
                HealthAction(
                    bar=bar.index,
                    timestamp=bar.timestamp,
                    rule=i,
                    metric=rule.metric,
                    condition=rule.condition,
                    threshold=threshold,
                    value=value,
                    action=rule.action,
                    symbol=symbol,
                )
            )
        return fired


def retrains(trainings: Sequence[ModelTraining], index: pd.DatetimeIndex) -> list[dict[str, Any]]:
    """Return when and why the model was retrained, for ``metrics.json``.

    A retrain is a training whose reason is not ``scheduled`` and that was not skipped;
    it trained at the close of the bar before the first one it predicts.
    """
    return [
        {
            "bar": t.predict_start - 1,
            "timestamp": index[t.predict_start - 1].isoformat(),
            "reason": t.reason,
        }
        for t in trainings
        if t.reason != "scheduled" and not t.skipped
    ]


def action_counts(
    rules: Sequence[HealthRule], actions: Sequence[HealthAction]
) -> list[dict[str, Any]]:
    """Return each rule with how many times it fired, for ``metrics.json``."""
    fired = [0] * len(rules)
    for action in actions:
        fired[action.rule] += 1
    return [
        {
            "rule": i,
            "metric": rule.metric,
            "condition": rule.condition,
            "threshold": rule.threshold,
            "action": rule.action,
            "fired": fired[i],
        }
        for i, rule in enumerate(rules)
    ]
