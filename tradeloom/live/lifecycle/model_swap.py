"""Swap a running run's model at a bar boundary: check it, keep its file, journal it.

A paper or live run of one strategy takes another model between two bars, asked three
ways: ``tradeloom swap RUN_DIR --model RUN [--fold N]``, the console and the HTTP API (a
``swap`` request in the run's mailbox, `tradeloom.engine.control.request_swap`), or a
hot reload whose file changed its ``model`` section (``by: reload``). The new model is
built as a strategy file builds it: the strategy in force with its ``model`` section
``{from_run: RUN, fold: N}``, so the saved model's own checks run first (the file's
hash, its metadata, its libraries, the strategy's features: `tradeloom.plugins.model.
loading`); then `swap_problems` checks what a running run needs of it:

- a saved model (`SavedModelFile`): trained already, its file's hash known (a model
  that trains on the run's bars needs a new run);
- the label the running model was trained with (`DescribedModel`);
- calibrated probabilities when the sizing reads them as probabilities
  (`NeedsCalibration`: fractional Kelly);
- one bar predicted: each symbol's feature row of the last bar gives a probability.

A refused swap says why in one line per problem, journaled (``model_swap_refused``, or a
hot reload's ``config_reload_refused``); the run trades on with its model. An accepted
one first copies the model's file and metadata into ``RUN_DIR/swapped/`` (`SWAPPED_DIR`,
the file named by its SHA-256), then swaps the model into the session and journals
``model_swapped`` (both hashes, who asked) in one commit, before the next bar: the new
model decides that bar. A restart runs the model of the journal's last ``model_swapped``
row, built from the kept copy (`restore_in_force`; a file that still names the run the
model came from is built with that copy too, `restart_document`), so it never depends
on the run the model came from; a kill -9 before that row's commit leaves the old model
in force and the request in the mailbox, asked again when the run restarts.

Every shape swaps so. A universe's symbols each decide with their own copy of the new
model from the same bar on (`LiveSession.use_model`; the model predicts every symbol's
last bar first, and a refusal leaves them all on their own). A portfolio file's request
names the strategy whose model it swaps (``--strategy NAME``, `member_problem` when it
names none of them): the swap is checked against that strategy's file, journaled with
its name (``model_swapped.strategy``), and a restart puts each strategy's last swapped
model back (`restore_models`).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tradeloom.engine.capabilities import uncalibrated
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import UserError
from tradeloom.files.digest import sha256_of
from tradeloom.journal import ModelSwapped, ModelSwapRefused
from tradeloom.journal.durable import sync_folder
from tradeloom.live.lifecycle.rules import (
    InForce,
    Lifecycle,
    in_force_of,
    in_force_origin,
    in_force_refusal,
    read_lifecycle,
    stage_in_progress,
    unkept_champion,
)
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.live.tick.row_windows import RowWindows
from tradeloom.plugins.protocols import (
    DescribedModel,
    LiveModel,
    LiveTrainer,
    Model,
    SavedModelFile,
    WindowedModel,
)
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.redaction import redact_text
from tradeloom.schemas import load_strategy
from tradeloom.schemas.strategy import fill_implied_kinds
from tradeloom.schemas.yaml_loader import SourceMap, YamlDocument

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.engine.events import Recorder
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.services import RunFiles
    from tradeloom.live.tick.session import LiveSession
    from tradeloom.plugins.manager import Plugins
    from tradeloom.schemas.config import StrategyConfig

__all__ = [
    "PORTFOLIO_KEY",
    "SWAPPED_DIR",
    "ModelSwap",
    "SwapRefused",
    "already_in_force",
    "build_swap",
    "checked_swap",
    "described",
    "in_force_document",
    "in_force_sha256",
    "is_kept",
    "journal_refusal",
    "journal_swap",
    "keep_file",
    "kept",
    "kept_by",
    "member_problem",
    "model_precheck",
    "model_problems",
    "precheck",
    "restart_document",
    "restore_in_force",
    "restore_models",
    "saved_section",
    "standing_for",
    "swap_problems",
    "with_kept",
]

SWAPPED_DIR = "swapped"
"""The folder of a run directory that keeps the files of the models swapped in."""

_log = logger("tradeloom.live")


@dataclass(frozen=True)
class ModelSwap:
    """A model checked and ready to decide from the next bar.

    Attributes:
        model: The built model.
        source: Where it came from, in words (a run and its fold, a file).
        sha256: Its file's SHA-256.
        file: The file it was loaded from.
        trusted: The third-party packages its file may name (``trusted_packages``).
    """

    model: Any
    source: str
    sha256: str
    file: Path
    trusted: tuple[str, ...]


@dataclass(frozen=True)
class SwapRefused:
    """A swap that does not happen; the run trades on with its model.

    Attributes:
        source: The model asked for, in words.
        errors: Why, one line each.
    """

    source: str
    errors: tuple[str, ...]

    def describe(self) -> str:
        """Return one line for the operator, every problem included."""
        return f"model swap refused, the run trades on with its model: {'; '.join(self.errors)}"


def saved_section(
    model: str | Path, fold: int | None, running: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the ``model`` section that loads fold ``fold`` (None: the latest) of the run
    directory ``model``, trusting the packages the running ``model`` section trusts."""
    section: dict[str, Any] = {"from_run": str(model)}
    if fold is not None:
        section["fold"] = fold
    trusted = running.get("trusted_packages")
    if isinstance(trusted, list) and trusted:
        section["trusted_packages"] = list(trusted)
    return section


def described(section: Mapping[str, Any]) -> str:
    """Return where a saved ``model`` section's model comes from, in words."""
    if "from_run" in section:
        fold = section.get("fold")
        return f"{section['from_run']} ({'latest fold' if fold is None else f'fold {fold}'})"
    return str(section.get("path", "?"))


def build_swap(
    config: StrategyConfig,
    plugins: Plugins,
    session: LiveSession,
    section: Mapping[str, Any],
    where: str | None = None,
) -> ModelSwap | SwapRefused:
    """Build the model of ``section`` against ``config``, the strategy in force in
    ``session`` (a portfolio file's: its member's), and check it (``where``: where the
    section came from, when the journal kept it, `kept_by`; its refusals are located
    there).

    The strategy in force with its ``model`` section replaced is validated and built as
    a hot reload builds a file (with the running plugins; it imports nothing), so the
    saved model's checks run; then `checked_swap`.
    """
    built = _built_model(config, plugins, section, where)
    if isinstance(built, SwapRefused):
        return built
    source = described(section)
    return checked_swap(session, built, source, section.get("trusted_packages", ()))


def kept_by(run_dir: Path, kind: str, bar: int) -> str:
    """Return where a ``model`` section the journal kept comes from, as its refusals are
    located: the run's journal and the row of ``kind`` at ``bar`` that holds its hash (a
    swap's ``model_swapped``, a canary's or a watch's start), never the strategy file."""
    return f"{run_dir}'s journal ({kind} row of bar {bar})"


def _built_model(
    config: StrategyConfig,
    plugins: Plugins,
    section: Mapping[str, Any],
    where: str | None = None,
) -> Model | SwapRefused:
    """Return the model of ``section`` built against the strategy ``config`` (the saved
    model's own checks: its file's hash, its features), or why not (`SwapRefused`);
    ``where``: where a section the journal kept came from (`kept_by`)."""
    document = {**config.document, "model": dict(section)}
    label = f"{config.source} (model swap)"
    source_map = SourceMap(label, {}) if where is None else _kept_map(label, where)
    loaded = YamlDocument(document, source_map)
    try:
        new, _ = load_strategy(config.source, document=loaded, load_plugins=lambda _: plugins)
        return build_pipeline(new).model
    except UserError as exc:
        return SwapRefused(described(section), tuple(redact_text(line) for line in exc.lines()))


def checked_swap(
    session: LiveSession, model: object, source: str, trusted: Sequence[str] = ()
) -> ModelSwap | SwapRefused:
    """Return ``model`` as a `ModelSwap` when `swap_problems` finds nothing, else why not
    (``trusted``: the packages its ``model`` section trusts)."""
    problems = swap_problems(session, model)
    if problems or not isinstance(model, SavedModelFile):
        return SwapRefused(source, tuple(problems))
    loaded = model.loaded_from
    return ModelSwap(
        model, source, str(loaded["sha256"]), Path(str(loaded["source"])), tuple(trusted)
    )


def swap_problems(session: LiveSession, model: object) -> list[str]:
    """Return why ``model`` cannot decide ``session``'s next bar in place of its model.

    It must be a saved model that predicts one bar, trained with the running model's
    label, calibrated when the sizing needs it (`model_problems`), and predict the last
    bar's features.
    """
    problems = model_problems(session.p.model, session.p.sizer, model)
    if not problems:
        assert isinstance(model, LiveModel)
        problem = _prediction_problem(session, model)
        if problem is not None:
            problems.append(problem)
    return problems


def model_problems(running: object, sizer: object, model: object) -> list[str]:
    """Return why ``model`` cannot take the place of ``running`` before a bar is seen: a
    saved model that predicts one bar, trained with ``running``'s label, calibrated
    when ``sizer`` needs it."""
    if not isinstance(model, LiveModel) or not isinstance(model, SavedModelFile):
        return [
            "model: a running run swaps in a saved model only (from_run: a run directory, "
            "or path: with sha256) that predicts one bar; a model that trains on the "
            "run's bars needs a new run"
        ]
    if isinstance(model, LiveTrainer):
        return ["model: the model trains on the run's bars; a running run takes a trained one"]
    problems = []
    if not isinstance(running, DescribedModel) or not isinstance(model, DescribedModel):
        problems.append(
            "model: the running model or the new one does not say its label "
            "(DescribedModel); a swap compares them"
        )
    elif running.label_record() != model.label_record():
        problems.append(
            f"model: trained with label {_shown(model.label_record())}, the running model "
            f"with {_shown(running.label_record())}; swap in a model trained with the "
            "running model's label"
        )
    elif uncalibrated(sizer, model):
        problems.append(
            "model: risk.sizing reads the probability as a probability (it needs a "
            "calibrated model) and the model is not calibrated; swap in one trained with "
            "model.calibration"
        )
    return problems


def _prediction_problem(session: LiveSession, model: LiveModel) -> str | None:
    history = session.history
    last = len(history) - 1
    rows = history.feature_row(last)
    many = len(history.symbols) > 1
    symbol_id = many and bool(getattr(model, "symbol_id", False))
    windowed = isinstance(model, WindowedModel)
    for s, symbol in enumerate(history.symbols):
        row = rows[s] if not symbol_id else np.append(rows[s], float(s))
        try:
            if windowed:  # the symbol's last rows (the model's own window, `RowWindows`)
                reads = cast(WindowedModel, model)
                block = RowWindows(history, int(reads.window)).of(s)
                if symbol_id:
                    block = np.column_stack([block, np.full(len(block), float(s))])
                probability = float(reads.predict_window(block))
            else:
                probability = float(model.predict_row(row))
        except Exception as exc:  # a third-party model may raise anything
            of = f" of {symbol}" if many else ""
            return (
                f"model: failed to predict the last bar{of} (bar {last}): "
                f"{type(exc).__name__}: {exc}"
            )
        if not math.isnan(probability) and not 0.0 <= probability <= 1.0:
            return f"model: predicted {probability!r} for the last bar, not a probability"
    return None


def _shown(label: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{key}: {label[key]}" for key in sorted(label)) + "}"


def precheck(
    run_dir: Path, model: Path, fold: int | None, strategy: str | None = None
) -> list[str]:
    """Return why the run in ``run_dir`` would refuse fold ``fold`` of the run ``model``,
    as far as it can be told without the running process, by the rules the process
    applies (`tradeloom.live.lifecycle.rules`): a canary or a watch in progress, then
    `model_problems` against the strategy in force as its journal says, then the model
    in force already; the process checks again, with the last bar.

    ``strategy`` names the portfolio file's member whose model to swap (`member_problem`:
    a portfolio file's run needs it, a strategy's run alone takes none).

    A strategy whose secrets are not set in this shell is not checked past the stage
    (none of its model's problems is returned): the running process has them.
    """
    lifecycle = read_lifecycle(run_dir)
    busy = stage_in_progress(lifecycle.canary, lifecycle.watch)
    if busy is not None:
        return [busy]

    def section_of(running: Mapping[str, Any]) -> dict[str, Any]:
        return saved_section(model, fold, running)

    return _against_in_force(run_dir, strategy, section_of)


def model_precheck(
    run_dir: Path, section: Mapping[str, Any], strategy: str | None, *, keep_champion: bool
) -> list[str]:
    """Return why the run in ``run_dir`` would refuse to swap in the model of ``section``
    (a challenger's, promoted by hand) for ``strategy`` (a portfolio file's member; None:
    a strategy run alone), as `precheck` tells it; with ``keep_champion`` (its gate
    declares a canary or a watch), also when the champion's model is not a saved file a
    rollback could swap back in (`tradeloom.live.lifecycle.rules.unkept_champion`)."""
    return _against_in_force(run_dir, strategy, lambda _: dict(section), keep_champion)


def _against_in_force(
    run_dir: Path,
    strategy: str | None,
    section_of: Callable[[Mapping[str, Any]], dict[str, Any]],
    keep_champion: bool = False,
) -> list[str]:
    """`model_problems` of the section ``section_of`` gives (from the running ``model``
    section) against the model in force of ``strategy``, then the model in force
    already (`in_force_refusal`) and, with ``keep_champion``, `unkept_champion`."""
    source, document, swapped = _journaled(run_dir)
    try:
        if PORTFOLIO_KEY in document:
            member = _member_of(source, strategy)
            if isinstance(member, str):
                return [member]
            source, document = member.source, dict(member.document)
            swapped = _member_in_force(run_dir).get(member.name)
        elif strategy is not None:
            return [member_problem(strategy, ())]
        running_section = document.get("model")
        section = section_of(running_section if isinstance(running_section, dict) else {})
        in_force = document if swapped is None else {**document, "model": kept(run_dir, swapped)}
        where = None if swapped is None else kept_by(run_dir, ModelSwapped.KIND, swapped.bar)
        running = _built(source, in_force, where)  # a swapped model: its kept copy
        new = _built(source, {**document, "model": section})
    except UserError as exc:
        lines = exc.lines()
        if all(_UNSET.search(line) for line in lines):
            return []
        return [redact_text(line) for line in lines]
    problems = model_problems(running.model, running.sizer, new.model)
    if not problems:
        now = InForce(_sha_of(running.model), in_force_origin(swapped))
        same = in_force_refusal(Lifecycle(in_force={"": now}), _sha_of(new.model))
        problems += [same] if same is not None else []
    unkept = unkept_champion(running.model) if keep_champion else None
    return problems + ([unkept] if unkept is not None else [])


def _sha_of(model: object) -> str:
    """The SHA-256 of a saved model's file ('' for a model that trains in the run)."""
    return str(model.loaded_from["sha256"]) if isinstance(model, SavedModelFile) else ""


PORTFOLIO_KEY = "strategies"
"""The key of a portfolio file's document (a strategy file has none)."""


def member_problem(strategy: str | None, members: Sequence[str]) -> str:
    """Return why ``strategy`` does not name a member of a portfolio file whose strategies
    are ``members`` (none: a strategy's run alone)."""
    if not members:
        return (
            f"--strategy {strategy}: the run trades one strategy file, not a portfolio "
            "file's; leave --strategy out"
        )
    listed = ", ".join(members)
    if strategy is None:
        return (
            f"the run trades a portfolio file's strategies ({listed}): name the one whose "
            "model to swap (--strategy NAME)"
        )
    return (
        f"--strategy {strategy}: the portfolio file has no such strategy (its strategies: {listed})"
    )


def _member_of(source: Path, strategy: str | None) -> StrategyConfig | str:
    """Return the member ``strategy`` of the portfolio file ``source``, or why it names
    none."""
    from tradeloom.schemas.portfolio_file import load_portfolio

    members = {config.name: config for config in load_portfolio(source).strategies}
    if strategy not in members:
        return member_problem(strategy, tuple(members))
    return members[strategy]


def _member_in_force(run_dir: Path) -> dict[str, ModelSwapped]:
    """Per member of a portfolio file's run, its journal's last ``model_swapped`` row."""
    from tradeloom.journal import journal_path, read_events

    last: dict[str, ModelSwapped] = {}
    for event in read_events(journal_path(run_dir), [ModelSwapped]):
        if isinstance(event, ModelSwapped) and event.strategy:
            last[event.strategy] = event
    return last


_UNSET = re.compile(r"environment variable \S+ is not set$")
"""A secret this shell does not have (`tradeloom.schemas.secrets.resolve_secrets`)."""


def in_force_document(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Return the strategy file a paper or live run started from and the document it
    trades under, by its journal: its start's, or its last hot reload's.

    Raises:
        UserError: The journal records no strategy document.
    """
    source, document, _ = _journaled(run_dir)
    return source, document


def _journaled(run_dir: Path) -> tuple[Path, dict[str, Any], ModelSwapped | None]:
    """`in_force_document`, and the journal's last ``model_swapped`` row (None: none)."""
    from tradeloom.journal import ConfigReloaded, RunStarted, journal_path, read_events

    document: dict[str, Any] | None = None
    swapped: ModelSwapped | None = None
    source = run_dir / "strategy.yaml"
    kinds = [RunStarted, ConfigReloaded, ModelSwapped]
    for event in read_events(journal_path(run_dir), kinds):
        if isinstance(event, RunStarted) and document is None:
            source, document = Path(event.source), event.document
        elif isinstance(event, ConfigReloaded):
            document = event.document
        elif isinstance(event, ModelSwapped) and not event.strategy:
            swapped = event  # a portfolio file's member's: `_member_in_force`
    if not document:
        raise UserError(
            f"{run_dir}: its journal does not record the strategy it trades (not started "
            "yet, or by an older tradeloom); a swap is checked against it"
        )
    return source, document, swapped


def kept(run_dir: Path, swapped: ModelSwapped) -> dict[str, Any]:
    """Return the ``model`` section of the copy ``swapped`` kept in ``run_dir``."""
    return {**swapped.model, "path": str(run_dir / swapped.file)}


def is_kept(section: object, swapped: ModelSwapped) -> bool:
    """Return whether the ``model`` section ``section`` loads the model ``swapped`` put
    in force (a saved file of its SHA-256, which its loading checks)."""
    return (
        isinstance(section, Mapping)
        and "path" in section
        and section.get("sha256") == swapped.sha256
    )


def restart_document(document: YamlDocument, run_dir: Path) -> YamlDocument:
    """Return the strategy file ``document`` as a restart of the run in ``run_dir`` builds
    it: when its journal swapped a model and the file's ``model`` section is one the run
    traded under since (`standing_for`), that section is the kept copy's (the file is
    not rewritten), so the restart never depends on the run the model came from."""
    stands = standing_for(run_dir)
    if stands is None or fill_implied_kinds(document.data).get("model") not in stands[0]:
        return document
    return with_kept(document, stands[1], stands[2])


def with_kept(document: YamlDocument, section: Any, where: str) -> YamlDocument:
    """Return ``document`` with the ``model`` section the journal kept, ``section``, in
    place of its own, located at ``where`` (`kept_by`), not at the file's lines."""
    return YamlDocument(
        {**document.data, "model": section}, document.source_map.from_elsewhere("model", where)
    )


def standing_for(run_dir: Path) -> tuple[list[Any], dict[str, Any], str] | None:
    """Return the ``model`` sections of the documents the run in ``run_dir`` traded under
    since its journal's last ``model_swapped`` row, the section of that row's kept copy,
    which they stand for, and where it is kept (`kept_by`); None: no swap (or no
    journal, or one not read here: the runner says what is wrong with it)."""
    from tradeloom.journal import (
        ConfigReloaded,
        JournalError,
        RunStarted,
        journal_path,
        read_events,
    )

    path = journal_path(run_dir)
    if not path.is_file():
        return None  # a first start
    document: dict[str, Any] = {}
    swapped: ModelSwapped | None = None
    since: list[Any] = []
    try:
        for event in read_events(path, [RunStarted, ConfigReloaded, ModelSwapped]):
            if isinstance(event, RunStarted) and not document:
                document = event.document or {}
            elif isinstance(event, ConfigReloaded):
                document = event.document or {}
                since.append(document.get("model"))
            elif isinstance(event, ModelSwapped) and not event.strategy:
                swapped, since = event, [document.get("model")]
    except JournalError:
        return None
    if swapped is None:
        return None
    return since, kept(run_dir, swapped), kept_by(run_dir, ModelSwapped.KIND, swapped.bar)


def _built(source: Path, document: Mapping[str, Any], where: str | None = None) -> Pipeline:
    label = f"{source} (model swap)"
    source_map = SourceMap(label, {}) if where is None else _kept_map(label, where)
    loaded = YamlDocument(dict(document), source_map)
    config, _ = load_strategy(source, document=loaded)
    return build_pipeline(config)


def _kept_map(label: str, where: str) -> SourceMap:
    """A document's source map whose ``model`` section the journal kept (`kept_by`)."""
    return SourceMap(label, {}).from_elsewhere("model", where)


def keep_file(run_dir: Path, swap: ModelSwap) -> dict[str, Any] | SwapRefused:
    """Copy the model's file and its metadata into ``RUN_DIR/swapped/`` (durably, before
    the swap is journaled); return the ``model`` section of the copy (its path relative
    to the run directory), or why the copy failed."""
    folder = run_dir / SWAPPED_DIR
    # the file's own suffix: a torch fold's ``.pt`` is loaded as weights, not unpickled
    target = folder / f"{swap.sha256}{swap.file.suffix or '.pkl'}"
    try:
        folder.mkdir(exist_ok=True)
        _copy(swap.file.with_suffix(".json"), target.with_suffix(".json"))
        _copy(swap.file, target)
        digest = sha256_of(target)
        sync_folder(folder)
    except OSError as exc:
        return SwapRefused(swap.source, (f"{folder}: the model file cannot be kept ({exc})",))
    if digest != swap.sha256:
        target.unlink(missing_ok=True)
        return SwapRefused(
            swap.source, (f"model: {swap.file} changed while it was kept; refusing to swap it",)
        )
    section: dict[str, Any] = {"path": f"{SWAPPED_DIR}/{target.name}", "sha256": swap.sha256}
    if swap.trusted:
        section["trusted_packages"] = list(swap.trusted)
    return section


def journal_swap(
    recorder: Recorder,
    session: LiveSession,
    swap: ModelSwap,
    kept: Mapping[str, Any],
    *,
    by: str,
    reason: str,
    request: str = "",
    strategy: str = "",
    signal: str = "",
    sizing: str = "",
) -> None:
    """Swap ``swap``'s model into ``session`` and journal it (``model_swapped``) at the
    last bar processed; the caller commits before the next bar runs. ``strategy``: the
    portfolio file's member ``session`` is ('' for a strategy run alone); ``signal``: the
    signal section and ``sizing`` the sizing section in force from the next bar ('' the
    file's; the caller puts them in force:
    `tradeloom.live.lifecycle.promoted_signal.rule_in_force`)."""
    previous, previous_sha = _running(session)
    session.use_model(swap.model)
    swapped = ModelSwapped(
        **recorder.at(len(session.history) - 1),
        strategy=strategy,
        by=by,
        reason=reason,
        source=swap.source,
        request=request,
        previous=previous,
        previous_sha256=previous_sha,
        sha256=swap.sha256,
        file=str(kept["path"]),
        model=dict(kept),
        signal=signal,
        sizing=sizing,
    )
    recorder.record(swapped)
    session.swapped = swapped
    _log.warning(
        "model_swapped",
        source=swap.source,
        sha256=swap.sha256,
        by=by,
        previous=previous,
        **({"member": strategy} if strategy else {}),
    )


def journal_refusal(
    recorder: Recorder,
    bar: int,
    refused: SwapRefused,
    *,
    by: str,
    reason: str,
    request: str,
    strategy: str = "",
    time: pd.Timestamp | None = None,
) -> None:
    """Journal a refused swap (``model_swap_refused``) at bar ``bar``, whose time is
    ``time`` (``strategy``: the portfolio file's member it was asked for)."""
    recorder.record(
        ModelSwapRefused(
            **recorder.at(bar, time),
            strategy=strategy,
            by=by,
            reason=reason,
            source=refused.source,
            request=request,
            errors=list(refused.errors),
        )
    )
    _log.error("model_swap_refused", source=refused.source, errors=list(refused.errors), by=by)


def in_force_sha256(session: LiveSession) -> str:
    """Return the SHA-256 of the file of the model in force ('' for one trained here)."""
    return _running(session)[1]


def already_in_force(session: LiveSession, swap: ModelSwap) -> str | None:
    """Return why ``swap`` changes nothing in ``session``: its file is the model in force
    (the same SHA-256: `tradeloom.live.lifecycle.rules.in_force_refusal`, the rule its
    commands read from the journal); None: it swaps in another model. A mailbox swap or
    a promotion is refused for it; a hot reload journals no swap for it (its file names
    the model in force)."""
    return in_force_refusal(Lifecycle(in_force={"": in_force_of(session)}), swap.sha256)


def restore_in_force(
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    swapped: ModelSwapped,
    config: StrategyConfig | None = None,
) -> None:
    """Decide with the model of the journal's last ``model_swapped`` row (a restart),
    built from the copy kept in the run directory against ``config`` (None: the file in
    force; a portfolio file's member: its strategy).

    Raises:
        RestartRefused: The kept copy is missing, changed, or no longer fits the strategy.
    """
    # its file's hash and the strategy's features only: the acceptance checks ran at the
    # swap, and the reloads since were checked against this model (`uncalibrated`)
    where = kept_by(files.run_dir, ModelSwapped.KIND, swapped.bar)
    built = _built_model(config or files.config, plugins, kept(files.run_dir, swapped), where)
    if isinstance(built, SwapRefused):
        of = f" of {swapped.strategy}" if swapped.strategy else ""
        raise RestartRefused(
            f"{files.run_dir}: the model{of} in force since bar {swapped.bar} ({swapped.file}, "
            f"swapped in from {swapped.source}) cannot be loaded again: {built.errors[0]}; "
            "put the file back (the journal's model_swapped row names it)"
        )
    session.use_model(built)
    session.swapped = swapped


def restore_models(
    files: RunFiles, plugins: Plugins, session: LiveSession, state: JournalState
) -> None:
    """Decide with the models in force at the journal's last committed bar (a restart):
    the last ``model_swapped`` row's (`restore_in_force`), or, in a portfolio file's run,
    each strategy's last, its other strategies keeping the models they had.

    Raises:
        RestartRefused: A kept copy is missing, changed, or no longer fits its strategy.
    """
    from tradeloom.live.tick.portfolio_session import PortfolioSession

    if state.swapped is not None:
        restore_in_force(files, plugins, session, state.swapped)
    if isinstance(session, PortfolioSession):
        for member in session.members:
            swapped = state.member_swaps.get(member.owner)
            if swapped is not None:
                restore_in_force(files, plugins, member, swapped, member.p.config)


def _running(session: LiveSession) -> tuple[str, str]:
    model = session.p.model
    if isinstance(model, SavedModelFile):
        loaded = model.loaded_from
        return f"{loaded['source']}", str(loaded["sha256"])
    return f"{type(model).__name__} trained in this run", ""


def _copy(source: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(source, "rb") as reader, open(temporary, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())
    os.replace(temporary, target)
