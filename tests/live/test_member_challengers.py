"""Challengers of a portfolio file's strategies on paper (``--clock simulated``, in
process; issue 70, item 4).

Two strategies on one account, the first (``alpha``) with challengers: each challenger's
book is, fill for fill, a paper run of that candidate alone on the same bars with the
capital the strategy had when it started (its weight times the account's equity); the
account's numbers are those of the portfolio without challengers; ``status`` shows the
strategy's own book and its challengers'; a gate promotes a better challenger by swapping
that strategy's model alone (with its own rule and sizing: `tests.live.test_promoted_member`);
a kill -9 and a restart keep every book and the promotion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.live.live_emulated import trained_registry
from tests.live.test_challengers import BARS, CHALLENGERS, books, crash_at, fills, strategy
from tests.live.test_promotion_gate import GATE, SILENT, TRADING
from tradeloom.cli.main import main
from tradeloom.engine.status import read_run
from tradeloom.journal import read_rows

CASH = 100_000.0
WEIGHTS = (0.6, 0.4)


def member(
    name: str, symbol: str, challengers: list[dict[str, Any]] | None = None, **kw: Any
) -> dict[str, Any]:
    """`tests.live.test_challengers.strategy` named ``name`` over ``symbol``."""
    document = strategy(challengers=challengers, **kw)
    data = {**document["data"], "symbol": symbol}
    if symbol != "BTC/USDT":
        data["seed_offset"] = 1  # another market (the synthetic one is keyed by the seed)
    return {**document, "name": name, "data": data}


def play(
    folder: Path,
    alpha: dict[str, Any],
    beta: dict[str, Any] | None = None,
    bars: int = BARS,
) -> tuple[int, Path]:
    """Run the portfolio of ``alpha`` (BTC) and ``beta`` (ETH) on paper on the simulated
    clock for ``bars`` bars (a restart when its run folder exists)."""
    folder.mkdir(parents=True, exist_ok=True)
    beta = beta or member("beta", "ETH/USDT")
    (folder / "alpha.yaml").write_text(yaml.safe_dump(alpha, sort_keys=False))
    (folder / "beta.yaml").write_text(yaml.safe_dump(beta, sort_keys=False))
    portfolio = {
        "name": "pair",
        "initial_cash": CASH,
        "strategies": [
            {"file": "alpha.yaml", "weight": WEIGHTS[0]},
            {"file": "beta.yaml", "weight": WEIGHTS[1]},
        ],
    }
    path = folder / "pair.yaml"
    path.write_text(yaml.safe_dump(portfolio, sort_keys=False))
    run = folder / "run"
    code = main(
        ["run", str(path), "--mode", "paper", "--clock", "simulated", "--speed", "max",
         "--max-bars", str(bars), "-q", "--out", str(run)]
    )  # fmt: skip
    return code, run


def alone(folder: Path, document: dict[str, Any], bars: int = BARS) -> tuple[int, Path]:
    """Run one strategy file alone on paper on the simulated clock."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    run = folder / "run"
    code = main(
        ["run", str(path), "--mode", "paper", "--clock", "simulated", "--speed", "max",
         "--max-bars", str(bars), "-q", "--out", str(run)]
    )  # fmt: skip
    return code, run


def rows(run: Path, kind: str) -> list[dict[str, Any]]:
    return [
        {"bar": r.bar, "symbol": r.symbol, **r.values}
        for r in read_rows(run / "journal.sqlite", [kind])
    ]


def book_fills(run: Path, book: str) -> list[tuple[Any, ...]]:
    """The account's fills of one book (``STRATEGY:SYMBOL``), without the book's name."""
    return [f[:1] + f[2:] for f in fills(run) if f[1] == book]


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A paper portfolio whose first strategy has two challengers, uninterrupted."""
    code, run = play(tmp_path_factory.mktemp("shadowed"), member("alpha", "BTC/USDT", CHALLENGERS))
    assert code == 0
    return run


def test_each_challenger_starts_with_its_strategys_share_of_the_account(shadowed: Path) -> None:
    started = rows(shadowed, "challenger_started")
    first = books(shadowed, "alpha/logit")[0][0]
    assert [(r["challenger"], r["strategy"], r["first_bar"]) for r in started] == [
        ("alpha/logit", "alpha", first),
        ("alpha/small", "alpha", first),
    ]
    assert [r["capital"] for r in started] == [pytest.approx(WEIGHTS[0] * CASH, rel=1e-12)] * 2
    assert {r["strategy"] for r in rows(shadowed, "challenger_bar")} == {"alpha"}
    assert {r["strategy"] for r in rows(shadowed, "challenger_fill")} == {"alpha"}


@pytest.mark.parametrize("name", ["logit", "small"])
def test_a_strategys_challenger_is_a_paper_run_of_its_candidate_alone(
    shadowed: Path, tmp_path: Path, name: str
) -> None:
    entry = next(c for c in CHALLENGERS if c["name"] == name)
    (capital,) = [
        r["capital"]
        for r in rows(shadowed, "challenger_started")
        if r["challenger"] == f"alpha/{name}"
    ]
    document = member(
        "alpha",
        "BTC/USDT",
        model=entry["model"],
        signal=entry.get("signal"),
        sizing=entry.get("sizing"),
    )
    document["execution"] = {**document["execution"], "initial_cash": capital}
    code, candidate = alone(tmp_path, document)
    assert code == 0
    scoped = f"alpha/{name}"
    assert fills(shadowed, "challenger_fill", scoped) == fills(candidate)
    equity = [b[5] for b in books(shadowed, scoped)]
    assert equity == pytest.approx(read_run(candidate).curve["equity"].tolist(), rel=1e-12)
    probabilities = [b[1][0] for b in books(shadowed, scoped)]
    live = [r["probability"] for r in rows(candidate, "live_bar")]
    assert probabilities == live
    assert sum(1 for _ in fills(candidate)) > 0 or name == "logit"


def test_the_account_is_unchanged_by_a_strategys_challengers(
    shadowed: Path, tmp_path: Path
) -> None:
    code, plain = play(tmp_path, member("alpha", "BTC/USDT"))
    assert code == 0
    assert fills(shadowed) == fills(plain) != []
    assert read_run(shadowed).curve["equity"].tolist() == read_run(plain).curve["equity"].tolist()


def test_the_strategys_own_equity_is_its_capital_and_its_books_pnl(shadowed: Path) -> None:
    """``champion_equity`` = the capital + the cash alpha's fills moved + its position at
    the close, recomputed from the journal's rows."""
    closes = {
        r["bar"]: r["close"] for r in rows(shadowed, "live_bar") if r["symbol"] == "alpha:BTC/USDT"
    }
    flow, held = 0.0, 0.0
    own = [r for r in rows(shadowed, "fill") if r["symbol"] == "alpha:BTC/USDT"]
    assert own, "alpha never traded"
    capital = WEIGHTS[0] * CASH
    for bar in (b[0] for b in books(shadowed, "alpha/logit")):
        for fill in [f for f in own if f["bar"] == bar]:
            flow -= fill["side"] * fill["quantity"] * fill["price"] + fill["fee"]
            held += fill["side"] * fill["quantity"]
        (row,) = [
            r
            for r in rows(shadowed, "challenger_bar")
            if r["bar"] == bar and r["challenger"] == "alpha/logit"
        ]
        expected = capital + flow + (held * closes[bar] if held else 0.0)
        assert row["champion_equity"] == pytest.approx(expected, rel=1e-9)


def test_status_shows_each_strategys_book_and_its_challengers(
    shadowed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["status", str(shadowed), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    shown = {b["name"]: b for b in status["books"]}
    assert list(shown) == ["champion", "alpha", "alpha/logit", "alpha/small"]
    capital = WEIGHTS[0] * CASH
    last = [r for r in rows(shadowed, "challenger_bar") if r["challenger"] == "alpha/small"][-1]
    assert shown["alpha"]["equity"] == last["champion_equity"]
    assert shown["alpha"]["total_return"] == pytest.approx(last["champion_equity"] / capital - 1)
    assert shown["alpha/small"]["equity"] == last["equity"]
    assert shown["alpha/small"]["total_return"] == pytest.approx(last["equity"] / capital - 1)
    first = books(shadowed, "alpha/small")[0][0]
    alpha_fills = [f for f in fills(shadowed) if f[1] == "alpha:BTC/USDT" and f[0] >= first]
    assert shown["alpha"]["fills"] == len(alpha_fills)
    capsys.readouterr()
    assert main(["status", str(shadowed)]) == 0
    text = capsys.readouterr().out
    names = {line.split()[0] for line in text.splitlines() if line.split()}
    assert {"alpha", "alpha/logit", "alpha/small"} <= names


def test_a_restart_after_a_kill_keeps_every_book(
    shadowed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = books(shadowed, "alpha/small")[0][0]
    filled = [f[0] for f in fills(shadowed, "challenger_fill", "alpha/small") if f[0] > first]
    assert filled, "small never filled after its first bar"
    crashed = filled[0] - first + 1
    document = member("alpha", "BTC/USDT", CHALLENGERS)
    with monkeypatch.context() as dying:
        crash_at(dying, crashed, "alpha/small", fills_kept=True)
        died, _ = play(tmp_path, document)
    assert died != 0
    run = tmp_path / "run"
    assert books(run, "alpha/small")[-1][0] == filled[0] - 1
    code, run = play(tmp_path, document, bars=BARS - crashed)
    assert code == 0
    for name in ("alpha/logit", "alpha/small"):
        assert books(run, name) == books(shadowed, name)
        assert fills(run, "challenger_fill", name) == fills(shadowed, "challenger_fill", name)
    assert fills(run) == fills(shadowed)
    assert len(rows(run, "challenger_started")) == 2  # started once


# --- a gate promotes a strategy's better challenger ---------------------------------------

GATED_BARS = 24


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_registry(tmp_path_factory.mktemp("registry"))


def gated(registry: Path) -> dict[str, Any]:
    """alpha trades nothing; its challenger ``saved`` (the registry's model) trades."""
    entry = {
        "name": "saved",
        "model": {"kind": "saved", "from_run": str(registry)},
        "signal": TRADING,
        "promote_when": GATE,
    }
    return member("alpha", "BTC/USDT", [entry], signal=SILENT)


@pytest.fixture(scope="module")
def promoted(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    code, run = play(tmp_path_factory.mktemp("promoted"), gated(registry), bars=GATED_BARS)
    assert code == 0
    return run


def test_a_gate_swaps_only_its_strategys_model(
    promoted: Path, registry: Path, tmp_path: Path
) -> None:
    verdicts = rows(promoted, "challenger_gate")
    assert [(v["challenger"], v["strategy"], v["verdict"]) for v in verdicts] == [
        ("alpha/saved", "alpha", "waiting"),
        ("alpha/saved", "alpha", "promote"),
    ]
    bar = verdicts[-1]["bar"]
    swapped = rows(promoted, "model_swapped")
    assert [(s["bar"], s["by"], s["request"], s["strategy"]) for s in swapped] == [
        (bar, "gate", "challenger:alpha/saved", "alpha")
    ]
    assert (promoted / swapped[0]["file"]).is_file()
    assert max(r["bar"] for r in rows(promoted, "challenger_bar")) == bar  # its shadow stopped
    # beta decides as in the portfolio without challengers: its model is its own
    code, plain = play(
        tmp_path / "plain", member("alpha", "BTC/USDT", signal=SILENT), bars=GATED_BARS
    )
    assert code == 0
    assert probabilities(promoted, "beta:ETH/USDT") == probabilities(plain, "beta:ETH/USDT")
    # (its sizes are its share of the one account, which alpha's trades move)
    theirs = [f[:2] + f[3:4] for f in book_fills(plain, "beta:ETH/USDT")]
    assert [f[:2] + f[3:4] for f in book_fills(promoted, "beta:ETH/USDT")] == theirs != []
    assert (
        probabilities(promoted, "alpha:BTC/USDT")[: bar - first_live(promoted) + 1]
        == (probabilities(plain, "alpha:BTC/USDT")[: bar - first_live(plain) + 1])
    )
    # after the swap alpha decides with the challenger's model: a run of it alone
    saved = gated(registry)
    code, candidate = alone(
        tmp_path / "alone",
        {**saved, "model": saved["challengers"][0]["model"], "challengers": []},
        bars=GATED_BARS,
    )
    assert code == 0
    after = [(b, p) for b, p in probabilities(promoted, "alpha:BTC/USDT", with_bar=True) if b > bar]
    theirs = dict(probabilities(candidate, "BTC/USDT", with_bar=True))
    assert after and after == [(b, theirs[b]) for b, _ in after]


def test_status_and_the_console_name_each_strategys_model_in_force(promoted: Path) -> None:
    """Issue 81: ``tradeloom status`` names the model in force of each strategy (the
    console's words: `tradeloom.engine.model_in_force`, one rule), with where its hash
    lives (the promotion's model_swapped row)."""
    from tradeloom.engine.status import read_run
    from tradeloom.engine.status_text import format_status
    from tradeloom.live.lifecycle.promotion_stage import promotion_choices

    [swapped] = rows(promoted, "model_swapped")
    alpha = (  # with the challenger's own rule, in force for alpha's books since
        "challenger alpha/saved's model with its signal rule threshold (threshold 0.02), "
        f"since bar {swapped['bar']} (by gate, sha256 {swapped['sha256'][:12]})"
    )
    beta = (
        "the strategy's own sklearn model (sklearn.ensemble.RandomForestClassifier), "
        "trained in the run"
    )
    assert promotion_choices(promoted).in_force == f"alpha: {alpha}; beta: {beta}"
    status = read_run(promoted).status
    assert status.models == {"alpha": alpha, "beta": beta}
    lines = format_status(status).splitlines()
    at = lines.index(f"model      alpha: {alpha}")
    assert lines[at + 1] == f"           beta: {beta}"


def test_a_portfolio_files_promotions_are_refused_by_the_processs_rules(
    promoted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 81: ``tradeloom promote`` and ``rollback`` on a portfolio file's run refuse,
    in one line and exit 2, what its process would (`tradeloom.live.lifecycle.rules`,
    over every strategy's challengers), nothing asked."""
    capsys.readouterr()
    for args, said in (
        (
            ["promote", str(promoted), "--challenger", "alpha/saved"],
            "promotion refused: --challenger: challenger alpha/saved was promoted already; "
            "it is no longer in shadow",
        ),
        (
            ["promote", str(promoted), "--challenger", "saved"],
            "promotion refused: --challenger: the portfolio file's strategies have no "
            "challenger saved (they have: alpha/saved; name one STRATEGY/NAME)",
        ),
        (
            ["rollback", str(promoted)],
            "rollback refused: rollback: no canary or watch is in progress",
        ),
    ):
        assert main(args) == 2
        assert capsys.readouterr().err == f"{promoted}: {said}\n"
    assert not list((promoted / "control").glob("*.json"))


def probabilities(run: Path, symbol: str, *, with_bar: bool = False) -> list[Any]:
    """The journaled probability of one book at each live bar (with the bar)."""
    found = [(r["bar"], r["probability"]) for r in rows(run, "live_bar") if r["symbol"] == symbol]
    return found if with_bar else [p for _, p in found]


def first_live(run: Path) -> int:
    return min(r["bar"] for r in rows(run, "live_bar"))


def test_a_kill_after_the_promotion_keeps_it(
    promoted: Path, registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bar = rows(promoted, "model_swapped")[0]["bar"]
    first = rows(promoted, "challenger_started")[0]["first_bar"]
    crashed = bar - first + 4  # a few bars after the promotion
    document = gated(registry)
    with monkeypatch.context() as dying:
        crash_at(dying, crashed, "alpha/saved", fills_kept=False)
        died, _ = play(tmp_path, document, bars=GATED_BARS)
    assert died != 0
    code, run = play(tmp_path, document, bars=GATED_BARS - crashed)
    assert code == 0
    assert rows(run, "model_swapped") == rows(promoted, "model_swapped")  # promoted once
    assert fills(run) == fills(promoted)
    assert rows(run, "challenger_bar") == rows(promoted, "challenger_bar")


def test_promote_by_hand_names_the_strategy_and_its_challenger(
    shadowed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["promote", str(shadowed), "--challenger", "small"]) == 2
    err = capsys.readouterr().err
    assert "the portfolio file's strategies have no challenger small" in err
    assert "alpha/logit, alpha/small" in err


@pytest.mark.parametrize(
    ("stage", "declared", "why"),
    [
        (
            "canary",
            {"fraction": 0.5, "bars": 4},
            "a canary sizes its entries in the compiled core of a strategy run alone (a "
            "portfolio's books size in Python) and rolls back on the run's drawdown (which "
            "its strategies share)",
        ),
        (
            "watch",
            {"bars": 4, "rollback_when": {"max_drawdown": 0.1}},
            "its rollback rules read the run's drawdown and the run's replay (which its "
            "strategies share)",
        ),
    ],
)
def test_a_canary_or_a_watch_in_a_portfolio_files_strategy_is_refused(
    registry: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    stage: str,
    declared: dict[str, object],
    why: str,
) -> None:
    saved = {"kind": "saved", "from_run": str(registry)}
    entry = {"name": "saved", "model": saved, "promote_when": {"min_bars": 5, stage: declared}}
    folder = tmp_path
    alpha = member("alpha", "BTC/USDT", [entry], model=saved)
    (folder / "alpha.yaml").write_text(yaml.safe_dump(alpha, sort_keys=False))
    (folder / "beta.yaml").write_text(yaml.safe_dump(member("beta", "ETH/USDT"), sort_keys=False))
    (folder / "pair.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "pair",
                "initial_cash": CASH,
                "strategies": [
                    {"file": "alpha.yaml", "weight": 0.5},
                    {"file": "beta.yaml", "weight": 0.5},
                ],
            }
        )
    )
    capsys.readouterr()
    assert main(["validate", str(folder / "pair.yaml")]) == 2
    lines = (folder / "alpha.yaml").read_text().splitlines()
    # located at the canary's mapping: its first key's line and column
    at = next(n for n, line in enumerate(lines, 1) if line.strip() == f"{stage}:") + 1
    column = len(lines[at - 1]) - len(lines[at - 1].lstrip())
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{folder / 'alpha.yaml'}:{at}:{column + 1} challengers.0.promote_when.{stage}: a "
        f"portfolio file's strategy promotes its challenger without a {stage}: {why}; "
        f"remove {stage} here"
    ]


def test_promote_by_hand_swaps_that_strategys_model(registry: Path, tmp_path: Path) -> None:
    document = gated(registry)
    document["challengers"][0]["promote_when"] = {"min_bars": 1000}  # never passes alone
    code, run = play(tmp_path, document, bars=6)
    assert code == 0
    assert main(["promote", str(run), "--challenger", "alpha/saved", "--reason", "by hand"]) == 0
    code, run = play(tmp_path, document, bars=4)  # the request waits for the next start
    assert code == 0
    (swapped,) = rows(run, "model_swapped")
    assert (swapped["strategy"], swapped["by"], swapped["reason"]) == ("alpha", "cli", "by hand")
    assert swapped["request"].startswith("challenger:alpha/saved@")
    assert max(r["bar"] for r in rows(run, "challenger_bar")) == swapped["bar"]
    assert rows(run, "model_swap_refused") == []


def test_a_restart_refuses_a_strategys_challenger_changed_while_down(
    shadowed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    shutil.copytree(shadowed, tmp_path / "run")
    changed = [
        {**CHALLENGERS[0], "signal": {"kind": "threshold", "threshold": 0.3}},
        CHALLENGERS[1],
    ]
    capsys.readouterr()
    code, _ = play(tmp_path, member("alpha", "BTC/USDT", changed), bars=2)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(str(tmp_path / "alpha.yaml"))
    assert err[0].endswith(
        " challengers.0: challenger 'logit' changed while it runs (its book is one "
        "candidate's): put it back, or remove it and add the new one under another name"
    )


def added_while_down(folder: Path) -> Path:
    """A run of ``alpha`` with ``logit``, restarted with ``small`` added to its file."""
    logit, small = CHALLENGERS
    code, run = play(folder, member("alpha", "BTC/USDT", [logit]), bars=6)
    assert code == 0
    code, run = play(folder, member("alpha", "BTC/USDT", [logit, small]), bars=4)
    assert code == 0
    return run


def journaled_rows(run: Path) -> int:
    return sum(1 for _ in read_rows(run / "journal.sqlite"))


def test_each_started_challenger_journals_its_entry(tmp_path: Path) -> None:
    run = added_while_down(tmp_path)
    started = {r["challenger"]: r["entry"] for r in rows(run, "challenger_started")}
    assert started == {"alpha/logit": CHALLENGERS[0], "alpha/small": CHALLENGERS[1]}


def test_a_restart_refuses_a_challenger_added_while_down_then_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = added_while_down(tmp_path)
    before = journaled_rows(run)
    changed = {**CHALLENGERS[1], "signal": {"kind": "threshold", "threshold": 0.3}}
    capsys.readouterr()
    code, _ = play(tmp_path, member("alpha", "BTC/USDT", [CHALLENGERS[0], changed]), bars=4)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(str(tmp_path / "alpha.yaml"))
    assert err[0].endswith(
        " challengers.1: challenger 'small' changed while it runs (its book is one "
        "candidate's): put it back, or remove it and add the new one under another name"
    )
    assert journaled_rows(run) == before  # refused before anything is journaled


def test_a_restart_refuses_a_removed_challengers_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logit, small = CHALLENGERS
    code, run = play(tmp_path, member("alpha", "BTC/USDT", [logit, small]), bars=6)
    assert code == 0
    code, run = play(tmp_path, member("alpha", "BTC/USDT", [logit]), bars=4)
    assert code == 0
    assert [r["challenger"] for r in rows(run, "challenger_removed")] == ["alpha/small"]
    last = max(r["bar"] for r in rows(run, "challenger_bar") if r["challenger"] == "alpha/small")
    assert last < max(r["bar"] for r in rows(run, "challenger_bar"))  # its book ended
    before = journaled_rows(run)
    capsys.readouterr()
    code, _ = play(tmp_path, member("alpha", "BTC/USDT", [logit, small]), bars=4)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(str(tmp_path / "alpha.yaml"))
    assert err[0].endswith(
        " challengers.1.name: 'small' named a challenger this run had (the journal's rows "
        "of that name are its book): give the new one another name"
    )
    assert journaled_rows(run) == before


def test_an_unchanged_restart_continues_each_book(tmp_path: Path) -> None:
    run = added_while_down(tmp_path)
    code, run = play(tmp_path, member("alpha", "BTC/USDT", CHALLENGERS), bars=4)
    assert code == 0
    started = [(r["challenger"], r["first_bar"]) for r in rows(run, "challenger_started")]
    assert [name for name, _ in started] == ["alpha/logit", "alpha/small"]  # once each
    assert rows(run, "challenger_removed") == []
    for name, first in started:
        bars = [r["bar"] for r in rows(run, "challenger_bar") if r["challenger"] == name]
        assert bars == list(range(first, first + len(bars)))  # no bar missed or run twice
    final = max(r["bar"] for r in rows(run, "challenger_bar"))
    assert {max(r["bar"] for r in rows(run, "challenger_bar") if r["challenger"] == n)
            for n, _ in started} == {final}  # fmt: skip
