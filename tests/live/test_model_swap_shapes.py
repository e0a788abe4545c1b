"""A model swap and a promotion in the other shapes a run takes (issue 70, item 4).

A universe of three markets whose models are per symbol, live on the emulator: a swap
from the registry puts the new model in for every symbol at one bar boundary (each its
own copy), after which the run decides what a fresh run of that model decides on the
same bars; a kill -9 right after the swap was committed restarts with the new model for
every symbol; a registry that saved a model per symbol is refused in one line by the
command and, asked anyway, journaled as refused while every symbol trades on with its
own. A universe's gated challenger is promoted for every symbol, and a kill -9 right
after the promotion restarts with it, deciding as the run that was never killed.

A portfolio file's strategy swaps its model alone (``--strategy NAME``; without it, or
with a name the file has not, the swap is refused in one line): the strategy decides
with the registry's model from the next bar on, the other keeps its own, and a kill -9
restarts each with its own, sending no client order id twice.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.live import fault_shapes
from tests.live.live_emulated import EmulatedRun, crash, make_bars, tick_until, trained_registry
from tests.live.test_challengers import universe
from tests.live.test_promotion_gate import fills_of, gated, play
from tests.live.test_universe_paper import STRATEGY as UNIVERSE
from tests.live.test_universe_paper import SYMBOLS
from tradeloom.cli.main import main
from tradeloom.engine.control import ControlInbox, ControlRequest
from tradeloom.engine.control_files import _write_request
from tradeloom.journal import read_rows
from tradeloom.live.lifecycle import promotion
from tradeloom.live.lifecycle.model_swap import member_problem, precheck
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.plugins.model.loading import ModelRequest, load_saved_model
from tradeloom.plugins.model.saved_model import SavedModel
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator

HISTORY = 100
SWAP_AT = 108
"""The bar the swap is asked at: before any symbol's own model trained its first fold
(nothing decided yet: what is decided after the swap is the new model's alone)."""
LAST = 140

PER_SYMBOL = UNIVERSE.replace("  - {kind: cross_rank, of: log_return_6}\n", "").replace(
    "POOLING", "per_symbol"
)
"""The universe, each symbol its own model, on the registry's features (no cross-rank)."""

_MODEL = PER_SYMBOL[PER_SYMBOL.index("model:\n") : PER_SYMBOL.index("signal:")]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backtest's run directory whose folds were saved (the model registry)."""
    return trained_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@contextmanager
def live_universe(
    folder: Path, monkeypatch: pytest.MonkeyPatch, text: str, history: int = HISTORY
) -> Iterator[EmulatedRun]:
    """An emulator playing the three markets from bar ``history``, ``text`` pointed at it."""
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    monkeypatch.chdir(folder)
    strategy = folder / "strategy.yaml"
    strategy.write_text(text)
    markets = {symbol: make_bars(n=LAST + 10, seed=5 + k) for k, symbol in enumerate(SYMBOLS)}
    with (
        ExchangeEmulator(
            markets, {"USDT": Decimal("100000")}, start=history, include_open_kline=False
        ) as emu,
        use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False})),
        use_pro_client_factory("binance", None),
    ):
        yield EmulatedRun(emu, strategy, markets[SYMBOLS[0]])


def _decisions(journal: Path, after: int) -> dict[str, list[Any]]:
    """What the run decided after bar ``after``, symbol by symbol, without client order
    ids (they name the run)."""
    kinds = {
        "live_bar": ("probability",),
        "signal": ("direction", "confidence"),
        "order": ("side", "reason", "quantity"),
        "fill": ("side", "quantity", "price"),
    }
    return {
        kind: [
            (r.bar, r.symbol, *(r.values[k] for k in keys))
            for r in read_rows(journal, [kind])
            if r.bar > after
        ]
        for kind, keys in kinds.items()
    }


def _fresh(registry: Path, folder: Path) -> dict[str, list[Any]]:
    """The decisions of a fresh run of the registry's model alone on the same bars, its
    history the bars the swapped run had closed when it swapped."""
    text = PER_SYMBOL.replace(_MODEL, f"model: {{from_run: {registry}}}\n")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        live_universe(folder, monkeypatch, text, history=SWAP_AT) as run,
    ):
        runner = run.runner(folder / "fresh")
        runner.start()
        try:
            tick_until(run, runner, LAST)
        finally:
            runner.stop("done")
    return _decisions(folder / "fresh" / "journal.sqlite", SWAP_AT - 1)


def _sha(registry: Path) -> str:
    loaded = load_saved_model(ModelRequest(from_run=registry), feature_spec=None, columns=())
    return loaded.sha256


def _per_symbol_registry(registry: Path, folder: Path) -> Path:
    """A run directory that saved a model per symbol (``models/BTC-USDT/`` ...)."""
    for symbol in SYMBOLS:
        shutil.copytree(registry / "models", folder / "models" / symbol.replace("/", "-"))
    return folder


class _Killed(BaseException):
    """The process dies (kill -9) where this is raised."""


def _journal_rows(journal: Path, kind: str) -> list[dict[str, Any]]:
    return [{"bar": r.bar, **r.values} for r in read_rows(journal, [kind])]


def test_a_universe_swaps_every_symbols_model_at_one_bar_and_a_kill_keeps_them(
    registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli_logging: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fresh = _fresh(registry, tmp_path / "fresh-run")
    folder = tmp_path / "swapped"
    run_dir = folder / "run"
    journal = run_dir / "journal.sqlite"
    per_symbol = _per_symbol_registry(registry, tmp_path / "per-symbol")
    sha = _sha(registry)
    with live_universe(folder, monkeypatch, PER_SYMBOL) as run:
        runner = run.runner(run_dir)
        runner.start()
        tick_until(run, runner, SWAP_AT)
        swap_bar = len(runner.session_or_fail.history) - 1
        owned = list(runner.session_or_fail.models)
        assert len({id(m) for m in owned}) == len(SYMBOLS)  # each symbol its own

        # a registry of a model per symbol: refused in one line, nothing asked
        capsys.readouterr()
        assert main(["swap", str(run_dir), "--model", str(per_symbol)]) == 2
        (err,) = [line for line in capsys.readouterr().err.splitlines() if "swap" in line]
        assert err.startswith(f"{run_dir}: model swap refused: ")
        assert f"{per_symbol} saved a model per symbol (models/BTC-USDT/" in err
        assert not list(run_dir.glob("control/*.json"))
        # asked anyway (written by hand): journaled as refused, every symbol keeps its own
        extra = {"model": str(per_symbol), "fold": None}
        _write_request(run_dir, "swap", "per symbol", by="api", extra=extra)
        assert runner.tick() == 0
        assert runner.session_or_fail.models == owned
        (refused,) = _journal_rows(journal, "model_swap_refused")
        (line,) = refused["errors"]
        assert "saved a model per symbol" in line

        # the registry's model: every symbol's at this bar boundary; killed right after
        # the swap was committed, its request file not yet done
        extra = {"model": str(registry), "fold": None}
        _write_request(run_dir, "swap", "the challenger", by="cli", extra=extra)

        def dies(inbox: ControlInbox, request: ControlRequest) -> None:
            raise _Killed

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ControlInbox, "done", dies)
            with pytest.raises(_Killed):
                runner.tick()
        crash(runner)
        (swapped,) = _journal_rows(journal, "model_swapped")
        assert (swapped["bar"], swapped["sha256"], swapped["strategy"]) == (swap_bar, sha, "")

        again: LiveRunner = run.runner(run_dir)
        again.start()
        models = again.session_or_fail.models
        assert len({id(m) for m in models}) == len(SYMBOLS)  # each symbol its own copy
        kept = str(run_dir / swapped["file"])
        assert [m.loaded_from for m in models] == [{"source": kept, "sha256": sha}] * 3
        tick_until(run, again, LAST)
        again.stop("test over")
        ids = [o.client_order_id for o in run.emulator.exchange.orders()]
        assert run.emulator.errors == []
    assert len(_journal_rows(journal, "model_swapped")) == 1  # its request answered once
    assert len(ids) == len(set(ids)) and ids
    after = _decisions(journal, swap_bar)
    assert after == fresh
    assert {symbol for _, symbol, *_ in after["order"]} == set(SYMBOLS)  # all traded


GATE = {"min_bars": 6, "alpha": 0.5}
"""A low bar: on these two markets the champion that trades loses to the challenger that
does not (its book flat), which is promoted within the run (at its 6th bar); the
registry's model then trades on the champion's signal."""

BARS = 24


def test_a_universes_challenger_is_promoted_for_every_symbol_and_a_kill_keeps_it(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = universe(gated(registry, GATE, better=False))
    code, promoted = play(tmp_path / "promoted", document, BARS)
    assert code == 0
    (verdict,) = [v for v in _journal_rows(promoted / "journal.sqlite", "challenger_gate")
                  if v["verdict"] == "promote"]  # fmt: skip
    (swapped,) = _journal_rows(promoted / "journal.sqlite", "model_swapped")
    assert (swapped["bar"], swapped["by"]) == (verdict["bar"], "gate")
    after = [f for f in fills_of(promoted) if f[0] > swapped["bar"]]
    assert after, "the promoted model never traded"
    from tradeloom.engine.status import read_run  # issue 81: status names it, every symbol's

    assert read_run(promoted).status.models == {
        "": "on each of its 2 symbols, challenger saved's model with its signal rule "
        f"threshold (threshold 0.49), since bar {swapped['bar']} "
        f"(by gate, sha256 {swapped['sha256'][:12]})"
    }

    promote = promotion.promote_passed
    played = [0]

    def dying(books: Any, *args: Any) -> None:
        played[0] += 1
        before = len(books.shadows)
        promote(books, *args)
        if len(books.shadows) < before:  # promoted, committed: kill -9 now
            store: Any = books.journal
            store._buffer.clear()
            store._buffered = 0
            store._db.close()
            raise KeyboardInterrupt("kill -9")

    folder = tmp_path / "killed"
    with monkeypatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, run = play(folder, document, BARS)
    assert died != 0
    code, run = play(folder, document, BARS - played[0])
    assert code == 0
    journal = run / "journal.sqlite"
    assert _journal_rows(journal, "model_swapped") == [swapped]  # once
    # the promoted model decides every symbol after the restart, as in the run not killed
    assert fills_of(run) == fills_of(promoted)
    probabilities = [
        (r.bar, r.symbol, r.values["probability"]) for r in read_rows(journal, ["live_bar"])
    ]
    expected = [
        (r.bar, r.symbol, r.values["probability"])
        for r in read_rows(promoted / "journal.sqlite", ["live_bar"])
    ]
    assert probabilities == expected


PORTFOLIO = fault_shapes.SHAPES["portfolio"]
MEMBER = fault_shapes.SWAPPED_MEMBER
OTHER = "swing_eth"


def test_a_portfolio_files_strategy_swaps_its_model_alone_and_a_kill_keeps_both(
    registry: Path, cli_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = _sha(registry)
    with fault_shapes.shape_run(PORTFOLIO) as run:
        run_dir, journal = run.run_dir, run.journal
        runner = fault_shapes.start(run)
        while run.position < SWAP_AT:
            run.advance()
            runner.tick()
        swap_bar = len(runner.session_or_fail.history) - 1
        members = {m.owner: m for m in runner.session_or_fail.members}  # type: ignore[attr-defined]
        other = members[OTHER].p.model

        # the command names the strategy, or is refused in one line, nothing asked
        capsys.readouterr()
        assert main(["swap", str(run_dir), "--model", str(registry)]) == 2
        assert main(["swap", str(run_dir), "--model", str(registry), "--strategy", "x"]) == 2
        said = [line for line in capsys.readouterr().err.splitlines() if "swap" in line]
        assert said == [
            f"{run_dir}: model swap refused: the run trades a portfolio file's strategies "
            f"({MEMBER}, {OTHER}): name the one whose model to swap (--strategy NAME)",
            f"{run_dir}: model swap refused: --strategy x: the portfolio file has no such "
            f"strategy (its strategies: {MEMBER}, {OTHER})",
        ]
        assert not list(run_dir.glob("control/*.json"))
        assert precheck(run_dir, registry, None, MEMBER) == []
        # a request without the strategy (written by hand) is journaled as refused
        extra: dict[str, Any] = {"model": str(registry), "fold": None}
        _write_request(run_dir, "swap", "which one?", by="api", extra=extra)
        _write_request(
            run_dir, "swap", "the challenger", by="cli", extra={**extra, "strategy": MEMBER}
        )
        assert runner.tick() == 0
        (refused,) = _journal_rows(journal, "model_swap_refused")
        assert "name the one whose model to swap" in refused["errors"][0]
        (swapped,) = _journal_rows(journal, "model_swapped")
        assert (swapped["bar"], swapped["strategy"], swapped["sha256"]) == (swap_bar, MEMBER, sha)
        assert members[MEMBER].p.model.loaded_from["sha256"] == sha  # type: ignore[attr-defined]
        assert members[OTHER].p.model is other  # the other keeps its own
        for _ in range(4):
            run.advance()
            runner.tick()

        fault_shapes.kill(runner, run)
        runner = fault_shapes.start(run)
        fault_shapes.check_in_force(run, runner)  # its member's kept copy
        # checked against the model in force of that strategy, its kept copy: the same
        # model, refused as the process refuses it (issue 81), naming that strategy's row
        assert precheck(run_dir, registry, None, MEMBER) == [
            f"model: it is the model in force already (sha256 {sha}, the journal's "
            f"model_swapped row of bar {swap_bar}, by cli)"
        ]
        restarted = {m.owner: m for m in runner.session_or_fail.members}  # type: ignore[attr-defined]
        assert not hasattr(restarted[OTHER].p.model, "loaded_from")  # trained in the run
        while run.position < SWAP_AT + 20:
            run.advance()
            runner.tick()
        # the swapped strategy's probabilities after the swap are the registry model's
        saved = SavedModel(
            load_saved_model(ModelRequest(from_run=registry), feature_spec=None, columns=())
        )
        history = restarted[MEMBER].history
        book = f"{MEMBER}:BTC/USDT"
        decided = [
            (r.bar, r.values["probability"])
            for r in read_rows(journal, ["live_bar"])
            if r.symbol == book and r.bar > swap_bar
        ]
        assert len(decided) >= 15
        for bar, probability in decided:
            predicted = saved.predict_row(history.feature_row(bar)[0])
            assert probability == predicted or (probability is None and math.isnan(predicted))
        runner.stop("test over")
        fault_shapes.check(run, runner)  # no client order id twice, positions the venue's
        assert len(_journal_rows(journal, "model_swapped")) == 1


def test_a_strategy_run_alone_refuses_a_swap_that_names_a_strategy() -> None:
    assert member_problem("trend_btc", ()) == (
        "--strategy trend_btc: the run trades one strategy file, not a portfolio file's; "
        "leave --strategy out"
    )
