"""A promotion of a portfolio file's strategy's challenger puts its whole decision rule in
force for that strategy's books: its model, its ``signal:`` section and its ``sizing:``
(`tradeloom.live.lifecycle.promoted_signal`), on a paper portfolio on the simulated clock
(`tests.live.test_member_challengers`'s pair: ``alpha`` on BTC, ``beta`` on ETH, one
account). alpha's own rule never trades (its threshold is out of reach) and its file
sizes at `FILES`; its challenger ``saved`` decides with `TRADING` and sizes at `OWN`.
A run that swapped the model alone would leave alpha silent after the promotion: what
traded would not be what the gate evaluated."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.live.live_emulated import trained_registry
from tests.live.test_challengers import fills
from tests.live.test_member_challengers import CASH, GATED_BARS, WEIGHTS, gated, member, play, rows
from tests.live.test_promotion_gate import SILENT, TRADING
from tradeloom.cli.main import main
from tradeloom.live.lifecycle import promotion

pytestmark = pytest.mark.slow

OWN = {"kind": "fixed_fraction", "fraction": 0.2}
"""The challenger's own sizing."""

FILES = {"kind": "fixed_fraction", "fraction": 0.5}
"""alpha's file's ``risk.sizing``."""

ALPHA, BETA = "alpha:BTC/USDT", "beta:ETH/USDT"


def ruled(registry: Path) -> dict[str, Any]:
    """`gated`'s alpha, sized by `FILES`, its challenger by `OWN`."""
    document = gated(registry)
    document["risk"] = {**document["risk"], "sizing": FILES}
    document["challengers"][0]["sizing"] = OWN
    return document


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def promoted(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    code, run = play(tmp_path_factory.mktemp("promoted"), ruled(registry), bars=GATED_BARS)
    assert code == 0
    return run


def signals(run: Path, book: str) -> list[tuple[int, Any]]:
    return [(r["bar"], r["direction"]) for r in rows(run, "signal") if r["symbol"] == book]


def owns(sizes: list[float]) -> bool:
    """Whether ``sizes`` are entries, each `OWN` of alpha's share of the account."""
    return bool(sizes) and sizes == pytest.approx([OWN["fraction"] * WEIGHTS[0]] * len(sizes))


def fractions(run: Path, book: str, after: int = -1) -> list[float]:
    """The size of each accepted entry of ``book`` after bar ``after``, of the equity."""
    return [
        abs(r["target_fraction"])
        for r in rows(run, "risk_decision")
        if r["symbol"] == book and r["bar"] > after and r["outcome"] == "accepted"
    ]


def test_the_promotion_journals_the_challengers_rule_and_sizing(promoted: Path) -> None:
    [swap] = rows(promoted, "model_swapped")
    assert (swap["strategy"], swap["by"]) == ("alpha", "gate")
    assert json.loads(swap["signal"]) == TRADING
    assert json.loads(swap["sizing"]) == OWN


def test_the_members_bars_after_the_promotion_follow_the_challengers_rule(
    promoted: Path,
) -> None:
    [swap] = rows(promoted, "model_swapped")
    after = [
        r for r in rows(promoted, "live_bar") if r["symbol"] == ALPHA and r["bar"] > swap["bar"]
    ]
    expected = [r["bar"] for r in after if abs(r["probability"] - 0.5) * 2 >= TRADING["threshold"]]
    assert expected, "the challenger's rule would never trade here: proves nothing"
    assert [bar for bar, _ in signals(promoted, ALPHA)] == expected  # none before it


def test_the_members_entries_after_the_promotion_are_sized_by_the_challengers_sizing(
    promoted: Path,
) -> None:
    """Each of alpha's entries is `OWN` of its share of the account (its weight): the
    file's sizing (`FILES`) would size them at 0.3."""
    [swap] = rows(promoted, "model_swapped")
    sizes = fractions(promoted, ALPHA)
    assert sizes, "alpha traded nothing after the promotion: proves nothing"
    assert all(r["bar"] >= swap["bar"] for r in rows(promoted, "fill") if r["symbol"] == ALPHA)
    assert owns(sizes)


def test_the_other_strategy_keeps_its_rule_and_sizing(promoted: Path, tmp_path: Path) -> None:
    """beta decides as in the portfolio without alpha's challenger, and sizes by its own
    file's sizing against its weight."""
    code, run = play(tmp_path, member("alpha", "BTC/USDT", signal=SILENT), bars=GATED_BARS)
    assert code == 0
    assert signals(promoted, BETA) == signals(run, BETA) != []
    beta = member("beta", "ETH/USDT")["risk"]["sizing"]["fraction"]
    sizes = fractions(promoted, BETA)
    assert sizes and sizes == pytest.approx([beta * WEIGHTS[1]] * len(sizes), rel=1e-12)


def killed_and_restarted(folder: Path, document: dict[str, Any], tick: int, lose: bool) -> Path:
    """Play the pair with ``document`` as alpha in ``folder``, killed -9 at its ``tick``-th
    promotion stage (``lose``: with that tick's uncommitted rows lost), then restart it to
    the last bar: its run."""
    promote = promotion.promote_passed
    played = [0]

    def dying(books: Any, *args: Any) -> Any:
        played[0] += 1
        stage = promote(books, *args)
        if played[0] == tick:
            store: Any = books.journal
            if lose:
                store._buffer.clear()
                store._buffered = 0
            store._db.close()
            raise KeyboardInterrupt("kill -9")
        return stage

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, _ = play(folder, document, bars=GATED_BARS)
        assert died != 0
    code, run = play(folder, document, bars=GATED_BARS - played[0])
    assert code == 0
    return run


def test_a_kill_right_after_the_promotion_restarts_under_the_challengers_rule(
    registry: Path, promoted: Path, tmp_path: Path
) -> None:
    [swap] = rows(promoted, "model_swapped")
    first = rows(promoted, "challenger_started")[0]["first_bar"]
    run = killed_and_restarted(tmp_path, ruled(registry), swap["bar"] - first + 1, lose=False)
    assert rows(run, "model_swapped") == rows(promoted, "model_swapped")
    assert fills(run) == fills(promoted)
    assert signals(run, ALPHA) == signals(promoted, ALPHA)
    assert owns(fractions(run, ALPHA))


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(tick=st.integers(min_value=1, max_value=GATED_BARS - 1), lose=st.booleans())
def test_a_kill_at_any_tick_around_the_promotion_trades_as_the_run_left_alone(
    registry: Path, promoted: Path, tick: int, lose: bool
) -> None:
    """A kill -9 at any tick (``lose``: with that tick's uncommitted rows lost), before,
    at or after the promotion's: the restart journals the same promotion, decides the
    same signals and fills the same quantities as the uninterrupted run."""
    with tempfile.TemporaryDirectory() as folder:
        run = killed_and_restarted(Path(folder), ruled(registry), tick, lose)
        assert rows(run, "model_swapped") == rows(promoted, "model_swapped")
        assert signals(run, ALPHA) == signals(promoted, ALPHA)
        assert fills(run) == fills(promoted)
        assert fractions(run, ALPHA) == fractions(promoted, ALPHA)
        assert owns(fractions(run, ALPHA))


def test_parity_replays_the_members_promoted_rule_and_sizing(
    promoted: Path, tmp_path: Path
) -> None:
    """``tradeloom parity`` replays alpha's bars after the promotion with its challenger's
    rule and sizing (its ``model_swapped`` row's): no difference, the same fills."""
    run = tmp_path / "run"
    shutil.copytree(promoted, run)
    assert main(["parity", str(run), "--out", str(tmp_path / "p")]) == 0
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert report["causes"] == {} and report["differences_by_bar"] == []
    reference = tmp_path / "p" / "reference"  # its bars from the run's first live bar
    assert [f[1:] for f in fills(reference)] == [f[1:] for f in fills(run)]
    sizes = fractions(reference, ALPHA)
    assert sizes == fractions(run, ALPHA) and owns(sizes)


def test_a_swap_by_hand_puts_the_members_file_rule_back(registry: Path, tmp_path: Path) -> None:
    """``tradeloom swap --strategy alpha`` after the promotion journals '' and alpha
    decides by its file's rule again (silent: no signal after the swap's bar)."""
    document = ruled(registry)
    code, run = play(tmp_path, document, bars=GATED_BARS)
    assert code == 0
    assert rows(run, "model_swapped")  # the latest fold's, promoted: the first fold by hand
    asked = ["swap", str(run), "--strategy", "alpha", "--model", str(registry), "--fold", "0"]
    assert main(asked) == 0
    code, run = play(tmp_path, document, bars=6)
    assert code == 0
    promoted, by_hand = rows(run, "model_swapped")
    assert (by_hand["by"], by_hand["signal"], by_hand["sizing"]) == ("cli", "", "")
    between = [bar for bar, _ in signals(run, ALPHA) if promoted["bar"] < bar <= by_hand["bar"]]
    assert len(between) > 1, "the challenger's rule in force till the swap by hand"
    assert [bar for bar, _ in signals(run, ALPHA) if bar > by_hand["bar"]] == []


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        (
            "signal",
            {"kind": "threshold", "threshold": 0.02, "sides": "long"},
            "challengers.0.signal.sides: a promotion puts this challenger's signal section "
            "in force on the portfolio's account, which reads regimes, sides and top_k once "
            "for every strategy: make it the strategy's, or remove it here",
        ),
        (
            "sizing",
            {"kind": "volatility_target", "target": 0.1},
            "challengers.0.sizing.kind: sizing kind volatility_target keeps its estimate in "
            "the compiled core of a strategy run alone; a promotion puts this sizing in "
            "force for the strategy's books, which size in Python: use kelly or "
            "fixed_fraction",
        ),
    ],
)
def test_validate_refuses_a_member_challenger_the_account_cannot_trade(
    registry: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: dict[str, Any],
    why: str,
) -> None:
    alpha = ruled(registry)
    alpha["challengers"][0][key] = value
    (tmp_path / "alpha.yaml").write_text(yaml.safe_dump(alpha, sort_keys=False))
    beta = member("beta", "ETH/USDT")
    (tmp_path / "beta.yaml").write_text(yaml.safe_dump(beta, sort_keys=False))
    pair = {
        "name": "pair",
        "initial_cash": CASH,
        "strategies": [
            {"file": "alpha.yaml", "weight": WEIGHTS[0]},
            {"file": "beta.yaml", "weight": WEIGHTS[1]},
        ],
    }
    (tmp_path / "pair.yaml").write_text(yaml.safe_dump(pair, sort_keys=False))
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "pair.yaml")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{tmp_path / 'alpha.yaml'}:") and line.endswith(f" {why}")
