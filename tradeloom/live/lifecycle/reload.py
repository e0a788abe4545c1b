"""Hot reload: notice an edited strategy file, validate it, and say what may be swapped.

A live or paper run keeps a `StrategyWatcher` on its strategy file and calls
`StrategyWatcher.check` (at each bar close, or on a timer). The answer is:

- None: the file's bytes are as last checked, or only comments and layout changed.
- `ReloadRefused`: the new file is invalid (it is read by the same safe reader as at the
  start: YAML, control characters, size, validation, a factory refusing its params), or
  it changes a section that cannot be swapped while the run holds positions (``data``,
  ``features``, ``execution``...), or validating it failed in any other way;
  the running configuration keeps running. The same content is not reported again. A
  changed ``plugins:`` list is refused before any of its modules is imported: a reload
  imports nothing.
- `Reload`: a valid file whose changes are all swappable; the caller applies it at the
  next bar boundary with `Reload.apply`, positions and open orders kept, and journals
  `Reload.changes`. A changed ``model`` section is a model swap: the runner checks the
  new model (`tradeloom.live.lifecycle.model_swap`) and refuses the whole reload when it does not
  fit, or swaps it in with the rest. A changed ``challengers`` section adds or removes
  challengers from the next bar (`tradeloom.live.lifecycle.challenger_roster`), checked first too.

A change shows its values as a strategy file would, secrets as ``***``; no message holds
a secret's value.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import zip_longest
from pathlib import Path
from typing import Any

from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.errors import Problem, UserError
from tradeloom.files.reading import UnreadableFile, read_bytes
from tradeloom.plugins.manager import PluginImportError, Plugins
from tradeloom.plugins.protocols import SavedModelFile
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.redaction import REDACTED, redact, redact_text
from tradeloom.schemas import StrategyConfig, load_strategy
from tradeloom.schemas.messages import join_path, show
from tradeloom.schemas.secrets import secret_reference
from tradeloom.schemas.strategy import fill_implied_kinds
from tradeloom.schemas.yaml_loader import (
    OVERRIDE_LOCATION,
    SourceMap,
    YamlDocument,
    load_yaml,
    max_file_bytes,
)

__all__ = [
    "CHALLENGERS",
    "MODEL",
    "OBSERVERS",
    "PIPELINE_FIELDS",
    "RESTART_REASONS",
    "SWAPPABLE",
    "Reload",
    "ReloadRefused",
    "StrategyWatcher",
    "changes_while_down",
    "journaled_reload",
    "reload_to",
]

SWAPPABLE: frozenset[str] = frozenset(
    {
        "description",  # no effect on trading
        "signal",  # signal.regimes included
        "regime",
        "risk",  # sizing, rules, limits, max_holding_bars, stop_loss, take_profit
        "monitoring",
        "health",
        "live.retrain_cron",
        "live.allocation_deadline_seconds",  # the next rebalance's
        "live.position_tolerance",  # read at a restart only
        "challengers",  # added or removed from the next bar (`challenger_roster`)
    }
)
"""Key paths that may change while the run holds positions, with everything below them.

A changed key path is swappable when it or one of its ancestors is listed; any other
change (an unknown top-level section, another key of ``live:``) refuses the reload.
"""

OBSERVERS: frozenset[str] = frozenset(
    {
        "live.metrics",  # the Prometheus endpoint: its port and host
        "live.alerts",  # the webhooks told about the run
        "live.parity",  # the parity monitor, set up when the run starts
    }
)
"""Key paths of observers only (they never change a decision), set up when the run
starts: a restart takes any change below them; a hot reload still refuses one, since
the running endpoint or webhooks would not move until the restart."""

RESTART_REASONS: Mapping[str, str] = {
    "name": "it names the run directory and the client order ids",
    "seed": "it seeds every random source of the run",
    "plugins": "plugins are imported once, when the run starts",
    "data": "a different market or timeframe is a different run",
    "features": "the running model was trained on these features and needs a retrain from scratch",
    "model": "the running model was trained with these settings and needs a retrain from "
    "scratch (a running run swaps in a saved model: from_run: or path:)",
    "execution": "the venue holds the open orders and the cash",
    "live.capital": "the portfolio's accounting started from it",
    "live.stream": "the market data connection is opened when the run starts",
    "live.close_delay_seconds": "the clock's jobs and the bar stream are set up at the start",
    "live.poll_seconds": "the clock's jobs are set up when the run starts",
    "live.health_check_seconds": "the clock's jobs are set up when the run starts",
    "live.stale_after_bars": "the stale-data alarm is set up when the run starts",
    "journal": "the run's journal lives there (its run directory's journal.json names it)",
    "allocation": "the run's targets and rebalances are the journal's decisions under it",
}
"""Why a change below each key path that is not swappable needs a restart (the most
specific path listed wins; any other is not known to be safe)."""

PIPELINE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "signal": ("signal",),
    "risk": ("sizer", "rules"),
    "monitoring": ("monitors",),
}
"""The `Pipeline` fields rebuilt when a section changes; other sections are config only."""

MODEL = "model"
"""The section a hot reload swaps as a model swap (`tradeloom.live.lifecycle.model_swap`): the
runner checks the new model first; a restart never takes it from a file edited while the
run was down (`changes_while_down`): a swap is journaled, and the journal says which
model is in force."""

CHALLENGERS = "challengers"
"""The section whose entries a hot reload adds to or removes from the running run's
challengers (`tradeloom.live.lifecycle.challenger_roster`): the runner checks them first and
refuses the whole reload when one cannot be added."""

_log = logger("tradeloom.live")

_UNKNOWN_REASON = "it is not known to be safe to swap while the strategy runs"

# A file modified this recently may be modified again within the same mtime tick, so its
# stat is not trusted to mean "unchanged" at the next check (git's "racy clean" problem).
_RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Reload:
    """A valid new strategy whose changes can all be swapped at a bar boundary.

    Attributes:
        config: The new strategy.
        pipeline: Every component of the new strategy, freshly built; only the layers of
            `changed` are to be taken from it (see `apply`).
        changed: The top-level sections that changed, in file order (``signal``, ``risk``).
        changes: One line per changed key path, for the journal:
            ``signal.threshold: 0.3 -> 0.35``; secrets as ``***``.
    """

    config: StrategyConfig
    pipeline: Pipeline
    changed: tuple[str, ...]
    changes: tuple[str, ...]

    def describe(self) -> str:
        """Return one line for the log: ``signal, risk changed``."""
        return f"{', '.join(self.changed)} changed"

    def apply(self, running: Pipeline) -> Pipeline:
        """Return ``running`` with the changed layers swapped for the new ones.

        The new config replaces the running one; `signal`, `sizer` and `rules`, and
        `monitors` are taken from the new pipeline when their section changed. The data
        source, features, model and venue (and with them the trained model, the open
        orders and the cash) are always the running ones. Apply every `Reload` in the
        order `StrategyWatcher.check` returned them.
        """
        swapped = {
            name: getattr(self.pipeline, name)
            for section in self.changed
            for name in PIPELINE_FIELDS.get(section, ())
        }
        return replace(running, config=self.config, **swapped)


@dataclass(frozen=True)
class ReloadRefused:
    """A new strategy file that is not applied; the running configuration keeps running.

    Attributes:
        errors: One line per problem, ``FILE:LINE:COL key.path: message``.
    """

    errors: tuple[str, ...]

    def describe(self) -> str:
        """Return one line for the log, every problem included."""
        return f"reload refused, the running strategy is unchanged: {'; '.join(self.errors)}"


class StrategyWatcher:
    """Watch a running strategy's file and validate each new version of it.

    Args:
        path: The strategy file, as the run loaded it (locations in messages use it).
        current: The strategy the run is running.
        overrides: The ``--set`` overrides the run was started with; applied to every
            new version, so an overridden key keeps its value whatever the file says.
        kept: The ``model`` sections the file may still say, the section they are built
            as (a restart's: the copy kept of the model swapped in,
            `tradeloom.live.lifecycle.model_swap.restart_document`), until a reload changes it, and
            where that section is kept (its refusals are located there, not in the file).
    """

    def __init__(
        self,
        path: Path,
        current: StrategyConfig,
        overrides: Sequence[str] = (),
        plugins: Plugins | None = None,
        kept: tuple[list[Any], Any, str] | None = None,
    ) -> None:
        self.path = path
        self.current = current
        self.overrides = tuple(overrides)
        self.plugins = plugins
        self.kept = kept
        self._stat: tuple[int, int, int] | None = None
        # None: the first check reads the file and compares it with `current`, so an edit
        # made between the run's start and the watcher's is not missed.
        self._digest: str | None = None
        # The content last refused (its digest) and the refusal's lines; None: the content
        # read last was not refused (`refused`).
        self._refusal: tuple[str | None, tuple[str, ...]] | None = None
        # What `current` and `kept` were before the `Reload` `check` returned last took
        # its version as current; None: the last check returned none (`refused`).
        self._before: tuple[StrategyConfig, tuple[list[Any], Any, str] | None] | None = None

    def check(self) -> Reload | ReloadRefused | None:
        """Look at the file once; return what changed since the last check.

        Returns:
            None when the file's bytes are as last checked or its document is the running
            one; `ReloadRefused` when the new version cannot be applied (reported once
            per content; read again after `look_again`, its refusal is to be reported
            only when it changed: `refused`); `Reload` otherwise, which then becomes the
            watcher's current strategy (until the runner refuses it: `refused`).
        """
        self._before = None
        try:
            stat = os.stat(self.path)
            if self._stat == _signature(stat):
                return None
            # the safe reader: a FIFO put in its place would hang a plain read forever
            content = read_bytes(self.path, "a strategy file", limit=max_file_bytes())
        except OSError as exc:
            return self._unreadable(exc)
        except UnreadableFile as exc:
            return self._refused_once(str(exc))
        self._stat = None if time.time_ns() - stat.st_mtime_ns < _RACY_NS else _signature(stat)
        digest = hashlib.sha256(content).hexdigest()
        if digest == self._digest:
            return None
        self._read(digest)
        return self._reload()

    def look_again(self) -> None:
        """Read the file again at the next `check`, its bytes unchanged too: a version
        refused for a passing reason (a canary in progress) is taken once it has passed,
        rather than waiting for another edit."""
        self._stat = None
        self._digest = None

    def refused(self, refused: ReloadRefused) -> bool:
        """Take ``refused``, the refusal of the version `check` read last (its own, or
        the runner's refusal of the `Reload` it returned, whose version then stops being
        the current one: the next version is compared with the strategy running); and
        return whether to report it: not when that content, read again after
        `look_again`, is refused as it was last time, whatever refused it (one
        ``config_reload_refused`` row per content and reason)."""
        if self._before is not None:
            self.current, self.kept = self._before
            self._before = None
        refusal = (self._digest, tuple(str(e) for e in refused.errors))
        if refusal == self._refusal:
            return False
        self._refusal = refusal
        return True

    def _read(self, digest: str) -> None:
        """Take ``digest`` as the content read last; a refusal of other content is
        forgotten (that content saved again later is news)."""
        self._digest = digest
        if self._refusal is not None and self._refusal[0] != digest:
            self._refusal = None

    def _reload(self) -> Reload | ReloadRefused | None:
        try:
            return self._validate()
        except Exception as exc:  # a bug must not end a run that trades: refuse the edit
            _log.exception("config_reload_failed", error=f"{type(exc).__name__}: {exc}")
            return _refused([f"{self.path}: reload failed: {type(exc).__name__}: {exc}"])

    def _running_plugins(self, modules: Sequence[str]) -> Plugins:
        # A reload imports nothing: the running plugins serve the same list, and a
        # changed list is refused before any module of it is imported.
        running = [m for m in self.current.plugins if m]
        for index, (old, new) in enumerate(zip_longest(running, modules)):
            if old != new:
                raise _PluginsChanged(index, new if new is not None else str(old))
        if self.plugins is None:
            from tradeloom.plugins.manager import load_plugins

            self.plugins = load_plugins(modules)
        return self.plugins

    def _validate(self) -> Reload | ReloadRefused | None:
        try:
            document = load_yaml(self.path)
            if (
                self.kept is not None
                and fill_implied_kinds(document.data).get(MODEL) in self.kept[0]
            ):
                _, section, where = self.kept
                located = document.source_map.from_elsewhere(MODEL, where)
                document = YamlDocument({**document.data, MODEL: section}, located)
            config, _ = load_strategy(
                self.path, self.overrides, load_plugins=self._running_plugins, document=document
            )
        except UserError as exc:
            return _refused(exc.lines())
        outcome = reload_to(self.current, config)
        if not isinstance(outcome, ReloadRefused):
            self._before = (self.current, self.kept)
            self.current = config
            if outcome is not None and MODEL in outcome.changed:
                self.kept = None  # the file names the model in force now
        return outcome

    def _unreadable(self, exc: OSError) -> ReloadRefused | None:
        # An editor saving by rename leaves no file for a moment: report it once.
        reason = "no such file" if isinstance(exc, FileNotFoundError) else "cannot read"
        detail = "" if isinstance(exc, FileNotFoundError) else f": {exc.strerror or exc}"
        return self._refused_once(f"{self.path}: {reason}{detail}")

    def _refused_once(self, line: str) -> ReloadRefused | None:
        self._stat = None
        digest = f"unreadable: {line}"
        if digest == self._digest:
            return None
        self._read(digest)
        return _refused([line])


_ABSENT = object()


class _PluginsChanged(PluginImportError):
    def __init__(self, index: int, module: str) -> None:
        UserError.__init__(
            self,
            f"'{module}' is not imported while the strategy runs: plugins are imported once, "
            "when the run starts; restart the run to change them",
        )
        self.index = index
        self.module = module
        self.reason = "plugins cannot change while the strategy runs"


def _signature(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _refused(lines: Sequence[str]) -> ReloadRefused:
    return ReloadRefused(tuple(redact_text(line) for line in lines))


def _diff(old: Any, new: Any, path: str) -> Iterator[tuple[str, str, str]]:
    # (key path, old value, new value) for each leaf that differs, values as written
    # A section added or removed is compared with an empty one, so each of its keys is
    # named (risk.limits.max_order_notional, not risk); an empty one is a change itself.
    if old is _ABSENT and isinstance(new, Mapping | list) and new:
        old = type(new)()
    elif new is _ABSENT and isinstance(old, Mapping | list) and old:
        new = type(old)()
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in [*new, *(key for key in old if key not in new)]:
            yield from _diff(old.get(key, _ABSENT), new.get(key, _ABSENT), join_path(path, key))
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            before = old[index] if index < len(old) else _ABSENT
            after = new[index] if index < len(new) else _ABSENT
            yield from _diff(before, after, join_path(path, index))
    elif not _same(old, new):
        key = path.rpartition(".")[2]
        yield path, _render(old, key), _render(new, key)


def _same(old: Any, new: Any) -> bool:
    if type(old) is not type(new) and (isinstance(old, bool) or isinstance(new, bool)):
        return False  # true == 1 in Python, not in a strategy file
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old):
        return math.isnan(new)
    return bool(old == new)


def _render(value: Any, key: str) -> str:
    if value is _ABSENT:
        return "absent"
    if secret_reference(value) is not None:
        return REDACTED
    if isinstance(value, Mapping):
        items = ", ".join(f"{k}: {_render(v, str(k))}" for k, v in value.items())
        return f"{{{items}}}"
    if isinstance(value, list):
        return f"[{', '.join(_render(item, key) for item in value)}]"
    if isinstance(value, str) and redact({key: value})[key] == REDACTED:
        return REDACTED  # a credential-named key (api_key, secret...), whatever its value
    return show(value)


def _ancestors(path: str) -> list[str]:
    # the path and its ancestors, the most specific first
    parts = path.split(".")
    return [".".join(parts[:end]) for end in range(len(parts), 0, -1)]


def _swappable(path: str) -> bool:
    return any(prefix in SWAPPABLE for prefix in _ancestors(path))


def changes_while_down(
    previous: Mapping[str, Any], config: StrategyConfig, overrides: Sequence[str] = ()
) -> list[Problem]:
    """Return a problem per change since ``previous`` a running strategy cannot take.

    A restart checks the file against the document the run last traded under (its
    first start's, or its last hot reload's): a change of what cannot be swapped while
    running (the data, the features, the model...) would have the replay and the model
    disagree with the journal, so the restart is refused instead. The observers'
    settings (`OBSERVERS`) change freely. A change that came from ``overrides`` (the
    ``--set`` values of this start) is located at the override, ``--set KEY=VALUE``.
    """
    problems = []
    for path, old, new in _diff(previous, config.document, ""):
        if _swappable(path) or _observed(path):
            continue
        reasons = (RESTART_REASONS[p] for p in _ancestors(path) if p in RESTART_REASONS)
        reason = next(reasons, _UNKNOWN_REASON)
        message = (
            f"changed since the run last traded ({old} -> {new}): {reason}; put it back, "
            "or start a new run (another --out)"
        )
        location, named = config.locate(path), path
        given = _override_of(path, overrides) if location == OVERRIDE_LOCATION else None
        if given is not None:
            key, _, raw = given.partition("=")
            leaf = key.strip().rpartition(".")[2]
            if redact({leaf: raw})[leaf] == REDACTED:  # a credential-named key's value
                raw = REDACTED
            location = redact_text(f"{OVERRIDE_LOCATION} {key.strip()}={raw}")
            named = "" if key.strip() == path else path
        problems.append(Problem(location, named, redact_text(message)))
    return problems


def _override_of(path: str, overrides: Sequence[str]) -> str | None:
    # the last --set whose key is the path or one of its ancestors (the one that won)
    ancestors = set(_ancestors(path))
    found = [text for text in overrides if text.partition("=")[0].strip() in ancestors]
    return found[-1] if found else None


def _observed(path: str) -> bool:
    return any(prefix in OBSERVERS for prefix in _ancestors(path))


def _restart_problem(config: StrategyConfig, path: str, old: str, new: str) -> str:
    reasons = (RESTART_REASONS[prefix] for prefix in _ancestors(path) if prefix in RESTART_REASONS)
    reason = next(reasons, _UNKNOWN_REASON)
    message = (
        f"cannot change while the strategy runs ({old} -> {new}): {reason}; "
        "restart the run to change it"
    )
    return str(Problem(config.locate(path), path, message))


def reload_to(
    current: StrategyConfig, config: StrategyConfig, *, restart: bool = False
) -> Reload | ReloadRefused | None:
    """Return the `Reload` from ``current`` to ``config`` (None: the same document).

    ``restart``: the swap is a restart's (replaying the journal's documents, then taking
    the file as it is now), which sets the observers (`OBSERVERS`) up afterwards from
    the file now: a change of theirs is taken too.
    """
    changes = list(_diff(current.document, config.document, ""))
    if not changes:
        return None
    refusals = [
        _restart_problem(config, path, old, new)
        for path, old, new in changes
        if not _swappable(path)
        and not (restart and _observed(path))
        and not (not restart and _ancestors(path)[-1] == MODEL)
    ]
    if refusals:
        return _refused(refusals)
    try:
        pipeline = build_pipeline(config)
    except UserError as exc:
        return _refused(exc.lines())
    if not isinstance(pipeline.model, SavedModelFile):  # a model that trains: not swapped
        trained = [(p, o, n) for p, o, n in changes if _ancestors(p)[-1] == MODEL]
        if trained:
            return _refused([_restart_problem(config, *change) for change in trained])
    return Reload(
        config=config,
        pipeline=pipeline,
        changed=tuple(dict.fromkeys(path.split(".", 1)[0] for path, _, _ in changes)),
        changes=tuple(redact_text(f"{path}: {old} -> {new}") for path, old, new in changes),
    )


def journaled_reload(
    current: StrategyConfig, document: Mapping[str, Any], plugins: Plugins
) -> Reload | None:
    """Return the `Reload` from ``current`` to a journaled strategy ``document``.

    A restart replays each bar under the file in force at that bar: the start's document,
    then each ``config_reloaded`` row's. The document is validated as the file was (its
    secrets are ``${NAME}`` references), against the running plugins.

    Raises:
        UserError: The document no longer validates, or changes a section that cannot
            be swapped (a journal of another tradeloom, or edited).
    """
    loaded = YamlDocument(dict(document), SourceMap(f"{current.source} (journaled)", {}))
    config, _ = load_strategy(current.source, load_plugins=lambda modules: plugins, document=loaded)
    outcome = reload_to(current, config, restart=True)
    if isinstance(outcome, ReloadRefused):
        raise UserError(f"the journal's strategy document cannot be replayed: {outcome.errors[0]}")
    return outcome
