"""Challengers in shadow on a paper run (``--clock simulated``, in process): each keeps its
own book in the journal; a challenger's book is, fill for fill, a paper run of that
candidate alone on the same bars; the champion's numbers are those of a run without
challengers; a kill -9 between the champion's bar and the challengers' loses nothing and
counts nothing twice; ``tradeloom status`` shows the three books side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradeloom.cli.main import main
from tradeloom.engine.status import read_run
from tradeloom.journal import ChallengerBar, read_rows
from tradeloom.live.lifecycle import challengers
from tradeloom.live.lifecycle.challengers import ShadowBooks
from tradeloom.live.tick.session import LiveSession

BARS = 14
"""Bars each run trades live: the first fold retrains at its 40th, a few fills each."""

MODEL: dict[str, Any] = {
    "kind": "sklearn",
    "estimator": "sklearn.ensemble.RandomForestClassifier",
    "params": {"n_estimators": 10, "max_depth": 3, "min_samples_leaf": 10, "n_jobs": 1},
    "label": {"horizon": 3},
    "walk_forward": {"train_window": 120, "retrain_every": 40},
}

LOGIT: dict[str, Any] = {
    "kind": "sklearn",
    "estimator": "sklearn.linear_model.LogisticRegression",
    "label": {"horizon": 3},
    "walk_forward": {"train_window": 120, "retrain_every": 40},
}

SMALL: dict[str, Any] = {**MODEL, "params": {"n_estimators": 5, "max_depth": 2, "n_jobs": 1}}

CHALLENGERS = [
    {"name": "logit", "model": LOGIT, "signal": {"kind": "threshold", "threshold": 0.005}},
    {
        "name": "small",
        "model": SMALL,
        "signal": {"kind": "threshold", "threshold": 0.02},
        "sizing": {"kind": "fixed_fraction", "fraction": 0.2},
    },
]


def strategy(
    model: dict[str, Any] = MODEL,
    challengers: list[dict[str, Any]] | None = None,
    *,
    signal: dict[str, Any] | None = None,
    sizing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "shadow_demo",
        "seed": 3,
        "data": {"kind": "synthetic", "bars": 320},
        "features": [
            {"kind": "log_return", "period": 1},
            {"kind": "log_return", "period": 6},
            {"kind": "rsi", "window": 14},
        ],
        "model": model,
        "signal": signal or {"kind": "threshold", "threshold": 0.04},
        "risk": {"sizing": sizing or {"kind": "fixed_fraction", "fraction": 0.5}},
        "execution": {"kind": "simulated", "fee_bps": 10, "slippage_bps": 5, "initial_cash": 50000},
    }
    if challengers is not None:
        document["challengers"] = challengers
    return document


def universe(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` over two markets on one clock."""
    return {**document, "data": {**document["data"], "symbols": ["BTC/USDT", "ETH/USDT"]}}


def play(folder: Path, document: dict[str, Any], bars: int = BARS) -> tuple[int, Path]:
    """Run ``document`` on paper on the simulated clock for ``bars`` bars (a restart when
    its run folder exists); return the exit code and the run folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    run = folder / "run"
    code = main(
        ["run", str(path), "--mode", "paper", "--clock", "simulated", "--speed", "max",
         "--max-bars", str(bars), "-q", "--out", str(run)]
    )  # fmt: skip
    return code, run


def fills(run: Path, kind: str = "fill", challenger: str | None = None) -> list[tuple[Any, ...]]:
    """Each fill as ``(bar, symbol, side, quantity, price, fee, slippage)``, in order."""
    return [
        (
            r.bar,
            r.symbol,
            r.values["side"],
            r.values["quantity"],
            r.values["price"],
            r.values["fee"],
            r.values["slippage"],
        )
        for r in read_rows(run / "journal.sqlite", [kind])
        if challenger is None or r.values["challenger"] == challenger
    ]


def books(run: Path, name: str) -> list[tuple[Any, ...]]:
    """A challenger's book at each bar: ``(bar, probabilities, signals, positions, cash,
    equity, traded)``."""
    return [
        (
            r.bar,
            *(
                r.values[k]
                for k in ("probabilities", "signals", "positions", "cash", "equity", "traded")
            ),
        )
        for r in read_rows(run / "journal.sqlite", ["challenger_bar"])
        if r.values["challenger"] == name
    ]


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A paper run of the champion with two challengers, uninterrupted."""
    code, run = play(tmp_path_factory.mktemp("shadowed"), strategy(challengers=CHALLENGERS))
    assert code == 0
    return run


def test_status_shows_the_champion_and_each_challenger(
    shadowed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["status", str(shadowed), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    shown = {b["name"]: b for b in status["books"]}
    assert list(shown) == ["champion", "logit", "small"]
    champion = shown["champion"]
    assert champion["equity"] == pytest.approx(status["equity"], rel=1e-12)
    assert champion["fills"] == status["fills"] == len(fills(shadowed))
    for name in ("logit", "small"):
        book = books(shadowed, name)
        assert len(book) == BARS  # one row per live bar
        assert shown[name]["equity"] == book[-1][5]
        assert shown[name]["total_return"] == pytest.approx(book[-1][5] / 50000 - 1, rel=1e-12)
        assert shown[name]["fills"] == len(fills(shadowed, "challenger_fill", name))
        assert shown[name]["turnover"] == pytest.approx(sum(b[6] for b in book) / 50000)
    assert sum(shown[n]["fills"] for n in ("logit", "small")) > 0, "no challenger traded"
    capsys.readouterr()
    assert main(["status", str(shadowed)]) == 0
    text = capsys.readouterr().out
    lines = [line.split() for line in text.splitlines()]
    rows = {words[0]: words for words in lines if words and words[0] in shown}
    assert rows.keys() == {"champion", "logit", "small"}
    assert rows["small"][4] == str(shown["small"]["fills"])


def test_the_champion_is_unchanged_by_its_challengers(shadowed: Path, tmp_path: Path) -> None:
    code, alone = play(tmp_path, strategy())
    assert code == 0
    assert fills(shadowed) == fills(alone) != []
    shadow_curve = read_run(shadowed).curve["equity"].tolist()
    assert shadow_curve == read_run(alone).curve["equity"].tolist()
    assert len(shadow_curve) == BARS


@pytest.mark.parametrize("name", ["logit", "small"])
def test_a_shadow_book_is_a_paper_run_of_its_candidate_alone(
    shadowed: Path, tmp_path: Path, name: str
) -> None:
    entry = next(c for c in CHALLENGERS if c["name"] == name)
    code, alone = play(
        tmp_path, strategy(entry["model"], signal=entry.get("signal"), sizing=entry.get("sizing"))
    )
    assert code == 0
    assert fills(shadowed, "challenger_fill", name) == fills(alone)
    equity = [b[5] for b in books(shadowed, name)]
    assert equity == pytest.approx(read_run(alone).curve["equity"].tolist(), rel=1e-12)
    probabilities = [b[1][0] for b in books(shadowed, name)]
    live = [r.values["probability"] for r in read_rows(alone / "journal.sqlite", ["live_bar"])]
    assert probabilities == live


def crash_at(monkeypatch: pytest.MonkeyPatch, call: int, name: str, *, fills_kept: bool) -> None:
    """Kill the run as kill -9 would at the challengers' ``call``-th bar, the champion's bar
    committed: before any challenger row, or (``fills_kept``) once challenger ``name``'s
    fills of the bar were committed and its book row was not."""
    step = ShadowBooks.step
    calls = [0]

    def dying(self: ShadowBooks, time: Any, values: Any, champion: float) -> None:
        calls[0] += 1
        store: Any = self.journal
        if calls[0] < call:
            step(self, time, values, champion)
            return
        if not fills_kept:
            store._buffer.clear()
            store._buffered = 0
            store._db.close()
            raise KeyboardInterrupt("kill -9")
        append = store.append

        def appending(event: Any) -> int:
            if isinstance(event, ChallengerBar) and event.challenger == name:
                store.flush(durable=False)  # as an append's own commit may (flush_every)
                store._db.close()
                raise KeyboardInterrupt("kill -9")
            return int(append(event))

        store.append = appending
        step(self, time, values, champion)

    monkeypatch.setattr(ShadowBooks, "step", dying)


@pytest.mark.parametrize("fills_kept", [False, True])
def test_a_restart_after_a_crash_keeps_the_books_of_an_uninterrupted_run(
    shadowed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fills_kept: bool
) -> None:
    first = books(shadowed, "small")[0][0]  # the first live bar
    filled = [f[0] for f in fills(shadowed, "challenger_fill", "small") if f[0] > first]
    assert filled, "small never filled after its first bar"
    crashed = filled[0] - first + 1  # the call at that fill's bar
    document = strategy(challengers=CHALLENGERS)
    with monkeypatch.context() as dying:
        crash_at(dying, crashed, "small", fills_kept=fills_kept)
        died, _ = play(tmp_path, document)  # the command line reports it interrupted
    assert died != 0
    run = tmp_path / "run"
    assert books(run, "small")[-1][0] == filled[0] - 1  # its last committed book
    assert (filled[0] in [f[0] for f in fills(run, "challenger_fill", "small")]) == fills_kept
    code, run = play(tmp_path, document, BARS - crashed)
    assert code == 0
    for name in ("logit", "small"):
        assert books(run, name) == books(shadowed, name)
        assert fills(run, "challenger_fill", name) == fills(shadowed, "challenger_fill", name)
    assert fills(run) == fills(shadowed)


def test_over_a_universe_each_book_is_its_own_paper_run(tmp_path: Path) -> None:
    code, shadowed = play(tmp_path / "shadowed", universe(strategy(challengers=CHALLENGERS)))
    assert code == 0
    code, champion = play(tmp_path / "champion", universe(strategy()))
    assert code == 0
    small = CHALLENGERS[1]
    alone = strategy(small["model"], signal=small["signal"], sizing=small["sizing"])
    code, candidate = play(tmp_path / "small", universe(alone))
    assert code == 0
    assert fills(shadowed) == fills(champion) != []
    assert fills(shadowed, "challenger_fill", "small") == fills(candidate)
    assert {f[1] for f in fills(candidate)} == {"BTC/USDT", "ETH/USDT"}
    book = books(shadowed, "small")
    curve = read_run(candidate).curve
    assert [b[5] for b in book] == pytest.approx(curve["equity"].tolist(), rel=1e-12)
    assert len(book) == BARS and all(len(b[3]) == 2 for b in book)  # a position per symbol


def test_a_challenger_that_raises_is_dropped_and_the_champion_trades_on(
    shadowed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = {"name": "broken", "model": {**SMALL, "params": {**SMALL["params"], "max_depth": 1}}}
    document = strategy(challengers=[*CHALLENGERS, broken])
    step = ShadowBooks._step
    seen = [0]

    def failing(self: ShadowBooks, shadow: Any, time: Any, values: Any, champion: float) -> None:
        if shadow.name == "small":
            seen[0] += 1
            if seen[0] == 5:
                raise RuntimeError("its model could not predict\nthis bar")
        step(self, shadow, time, values, champion)

    class Session(LiveSession):
        def train(self, *args: Any, **kwargs: Any) -> Any:
            if self.p.config.model.params.params.get("max_depth") == 1:  # "broken"
                raise ValueError("only one class in the training window")
            return super().train(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(ShadowBooks, "_step", failing)
        patched.setattr(challengers, "LiveSession", Session)
        code, run = play(tmp_path, document, BARS // 2)
    assert code == 0
    dropped = list(read_rows(run / "journal.sqlite", ["challenger_failed"]))
    assert [(r.values["challenger"], r.bar) for r in dropped] == [
        ("broken", -1),
        ("small", books(shadowed, "small")[4][0]),
    ]
    assert dropped[1].values["message"] == "RuntimeError: its model could not predict this bar"
    assert dropped[0].values["message"] == "ValueError: only one class in the training window"
    assert len(books(run, "small")) == 4  # its books until it raised, none after
    assert books(run, "logit") == books(shadowed, "logit")[: BARS // 2]  # the other steps on

    code, run = play(tmp_path, document, BARS - BARS // 2)  # a restart: not started again
    assert code == 0
    assert len(list(read_rows(run / "journal.sqlite", ["challenger_failed"]))) == 2
    assert len(books(run, "small")) == 4
    assert books(run, "logit") == books(shadowed, "logit")
    assert fills(run) == fills(shadowed)  # the champion as if nothing happened
    capsys.readouterr()
    assert main(["status", str(run)]) == 0
    out = capsys.readouterr().out
    assert "challenger small dropped: RuntimeError: its model could not predict this bar" in out


@pytest.mark.slow
def test_a_challenger_s_signal_sides_holds_in_its_shadow_book(tmp_path: Path) -> None:
    """A challenger's ``signal.sides: long`` is its shadow's: its book never holds a short
    where the same challenger without it does (the key used to be refused)."""
    logit = {"kind": "threshold", "threshold": 0.005}
    document = strategy(
        challengers=[
            {"name": "both", "model": LOGIT, "signal": logit},
            {"name": "long", "model": LOGIT, "signal": {**logit, "sides": "long"}},
        ]
    )
    document["execution"]["allow_short"] = True
    code, run = play(tmp_path, document, bars=40)
    assert code == 0
    both = [b[3][0] for b in books(run, "both")]
    long = [b[3][0] for b in books(run, "long")]
    assert len(long) == len(both) == 40
    assert min(both) < 0.0 and max(both) > 0.0
    assert min(long) >= 0.0 and max(long) > 0.0
