"""Every shipped strategy file's paper run replays with no difference (issue 81): each file
in ``strategies/`` and ``examples/`` runs on paper on the simulated clock for a few bars,
shortened as tests/cli/test_cli.py shortens its backtests, and ``tradeloom parity`` replays
it with its calendar, data settings, series, order book and funding (a replay that read
its bars without them could not replay some of these at all).

Besides: ``paper_binance.yaml`` (kind ccxt) downloads its history from the loopback
exchange emulator; the example plugin's two files load the plugin from its source folder
(``plugins:``, as a strategy lists its own modules) instead of a venv with it installed;
three files are not paper files: a paper run refuses ``informative_pair.yaml``'s
informative pair (tests/engine/test_informative.py) and ``order_book_fills.yaml``'s
``fill: book`` (fills against a recorded book are a backtest's:
tests/plugins/execution/test_book_venue.py), and ``leaky_strategy.yaml``'s feature reads
the next bar, which no bar stepped live can (its warm-up refuses it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import walk_bars
from tradeloom.cli.main import main
from tradeloom.journal import read_rows
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.testing import ExchangeEmulator

ROOT = Path(__file__).resolve().parents[2]
BARS = 600
"""A synthetic market's bars: the simulated clock plays from the middle (300)."""
WINDOW = 200
"""A walk-forward fold's rows and its retraining interval: the first fold predicts before
the clock's first bar."""
PLAYED = 8
"""Bars each paper run plays."""
LLM_WAITS = {"backoff_seconds": 0.001, "requests_per_minute": 1_000_000}
"""An LLM client's waits: before its first retry (the file's: 1 s, doubled at each retry)
and between two requests' starts (6,000 a minute). No model answers in this test: the
first documents are asked until ``max_attempts`` connections in a row are refused (the
waits between a document's retries until then are still waited), then the breaker
holds the others back, each journaled unscored at once ("endpoint unreachable, not
asked: ... Connection refused ..."); before the breaker, every document waited out its
attempts: 53 of news_llm's 54 s."""
PAPER = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "-q"]
NOT_PAPER = {"informative_pair.yaml", "leaky_strategy.yaml", "order_book_fills.yaml"}
PLUGIN = ROOT / "examples" / "tradeloom-example-plugin"
FILES = [
    path
    for path in sorted((ROOT / "strategies").glob("*.yaml")) + sorted(ROOT.glob("examples/*.yaml"))
    if path.name not in NOT_PAPER
]


def _overrides(document: dict[str, Any]) -> list[str]:
    """``--set`` words making a synthetic-data strategy short: `BARS` bars, folds of
    `WINDOW` rows, small estimators on one thread."""
    if "strategies" in document or document["data"]["kind"] != "synthetic":
        return []
    sets = [f"data.bars={BARS}"]
    model = document["model"]
    if "walk_forward" in model:
        sets += [f"model.walk_forward.{k}={WINDOW}" for k in ("train_window", "retrain_every")]
        if "min_train_rows" in model["walk_forward"]:
            sets.append(f"model.walk_forward.min_train_rows={WINDOW}")
    if "calibration" in model:
        sets.append(f"model.calibration.holdout={WINDOW // 3}")
    params = model.get("params") or {}
    sets += [f"model.params.{k}=10" for k in ("n_estimators", "max_iter") if k in params]
    sets += ["model.params.n_jobs=1"] if "n_jobs" in params else []
    for i, feature in enumerate(document.get("features") or []):
        if "client" in feature:  # an LLM no one serves here: every document unscored
            sets += [f"features.{i}.client.{k}={v}" for k, v in LLM_WAITS.items()]
    return [word for s in sets for word in ("--set", s)]


@contextmanager
def _served(
    document: dict[str, Any], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """An exchange-data file's binance on the loopback emulator, its cache in ``folder``."""
    if (document.get("data") or {}).get("kind") != "ccxt":  # a portfolio file's: its members'
        yield
        return
    assert document["data"]["exchange"] == "binance", "the emulator is a Binance spot venue"
    monkeypatch.setenv("TRADELOOM_CACHE", str(folder / "cache"))
    bars = walk_bars(BARS, 5, step=60)
    with ExitStack() as stack:
        emulator = stack.enter_context(
            ExchangeEmulator({"BTC/USDT": bars}, {"USDT": Decimal(100_000)}, start=BARS - 1,
                             include_open_kline=False)
        )  # fmt: skip
        stack.enter_context(
            use_client_factory(
                "binance", lambda s: emulator.client(**{**s, "enableRateLimit": False})
            )
        )
        stack.enter_context(use_pro_client_factory("binance", None))
        yield


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_files_paper_run_is_replayed_with_no_difference(
    path: Path,
    ram_tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(ROOT)  # the run names its file relative to here, as a user's would
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    file = path.relative_to(ROOT)
    features = document.get("features") or []  # a portfolio file's are its members'
    if any(f.get("kind") == "range_position" for f in features):
        monkeypatch.syspath_prepend(str(PLUGIN))  # the example plugin, from its source
        file = ram_tmp_path / path.name
        file.write_text(
            path.read_text(encoding="utf-8") + "\nplugins: [tradeloom_example.plugin]\n"
        )
    run = ram_tmp_path / "paper"
    words = ["run", str(file), *PAPER, "--max-bars", str(PLAYED), "--out", str(run)]
    with _served(document, ram_tmp_path, monkeypatch):
        assert main([*words, *_overrides(document)]) == 0, capsys.readouterr().err
    assert len(list(read_rows(run / "journal.sqlite", ["live_bar"]))) >= PLAYED

    capsys.readouterr()
    code = main(["-q", "parity", str(run)])
    out, err = capsys.readouterr()
    said = [line for line in err.splitlines() if not line.startswith("{")]  # the replay's logs
    assert (code, said) == (0, []), out + err
    assert "no difference: every bar's probability, signal, order, fill and equity agree" in out


def test_the_leaky_files_paper_run_is_refused_in_one_line_and_journals_why(
    ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``leaky_strategy.yaml``'s feature reads the next bar: stepped bar by bar over the
    warm-up it is not its value over the whole history, so the run refuses to trade
    (exit 2, one line naming the column, as any refusal; before: a RuntimeError, exit 1),
    and its journal says why it stopped."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    file = ram_tmp_path / "leaky_strategy.yaml"
    source = ROOT / "examples" / "leaky_strategy.yaml"
    file.write_text(source.read_text(encoding="utf-8") + "\nplugins: [tradeloom_example.plugin]\n")
    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    run = ram_tmp_path / "paper"
    words = ["run", str(file), *PAPER, "--max-bars", str(PLAYED), "--out", str(run)]
    code = main([*words, *_overrides(document)])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
    assert (code, len(err)) == (2, 1), err
    assert re.fullmatch(
        r"features: column future_return_1 at bar 0 of the warm-up: stepped bar by bar nan, "
        r"computed over the whole history -?0\.\d+(e-\d+)?; a feature whose value reads "
        r"later bars cannot run live \(tradeloom check-lookahead FILE names what leaks\)",
        err[0],
    ), err
    assert main(["journal", "verify", str(run)]) == 0
    capsys.readouterr()
    assert main(["status", str(run)]) == 0
    assert "FeatureNotStepped" in capsys.readouterr().out


def test_a_portfolio_members_leak_is_refused_naming_the_member(
    ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same refusal from a portfolio file's start names the member strategy (two
    members may share a column's name)."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    source = ROOT / "examples" / "leaky_strategy.yaml"
    text = source.read_text(encoding="utf-8")
    for old, new in (("bars: 3000", f"bars: {BARS}"), ("train_window: 1000", "train_window: 200")):
        assert old in text, old
        text = text.replace(old, new)  # short, as `_overrides` makes the single file
    (ram_tmp_path / "leaky.yaml").write_text(text + "\nplugins: [tradeloom_example.plugin]\n")
    book = ram_tmp_path / "book.yaml"
    book.write_text(
        "name: book\ninitial_cash: 100000\nstrategies:\n  - {file: leaky.yaml, weight: 1.0}\n"
    )
    run = ram_tmp_path / "paper"
    code = main(["run", str(book), *PAPER, "--max-bars", str(PLAYED), "--out", str(run)])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
    assert (code, len(err)) == (2, 1), err
    assert err[0].startswith("leaky_example: features: column future_return_1 at bar 0 of the ")
