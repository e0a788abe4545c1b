"""A challenger's promotion gate on a paper run (``--clock simulated``, in process).

Seeded candidates on the bars of `tests.live.test_challengers`: the challenger is a saved
model (another run's folds, `trained_registry`) that trades, the champion one that does
not (its signal's threshold is out of reach), so the challenger's per-bar returns are the
difference; and the other way round for a worse challenger. The gate's rows carry
figures a recomputation from the journal's ``challenger_bar`` rows equals; a promotion
swaps the champion's model by the swap's path (``model_swapped`` by ``gate``), stops the
challenger's shadow, and a restart after a kill -9 keeps the promoted model and promotes
nothing twice; a promotion the swap refuses drops the challenger and keeps the champion's
model.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from sklearn.metrics import roc_auc_score

from tests.live.live_emulated import trained_registry
from tests.live.test_challengers import play as challenger_run
from tests.live.test_challengers import strategy
from tradeloom.cli.main import main
from tradeloom.engine.control import request_promote, request_swap
from tradeloom.engine.status import read_run
from tradeloom.journal import read_rows
from tradeloom.live.lifecycle import promotion
from tradeloom.live.lifecycle.model_swap import SwapRefused, described

BARS = 24
"""Bars each run trades live."""

SILENT = {"kind": "threshold", "threshold": 0.49}
"""A signal rule that never trades: its book's returns are all 0."""

TRADING = {"kind": "threshold", "threshold": 0.02}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backtest's run directory whose folds were saved (the challenger's model)."""
    return trained_registry(tmp_path_factory.mktemp("registry"))


def gated(registry: Path, gate: dict[str, Any], *, better: bool) -> dict[str, Any]:
    """The champion (the strategy's own forest) with challenger ``saved`` (the registry's
    model) gated by ``gate``: the challenger trades and the champion does not
    (``better``), or the other way round."""
    saved = {"kind": "saved", "from_run": str(registry)}
    entry = {
        "name": "saved",
        "model": saved,
        "signal": TRADING if better else SILENT,
        "promote_when": gate,
    }
    return strategy(signal=SILENT if better else TRADING, challengers=[entry])


def play(folder: Path, document: dict[str, Any], bars: int = BARS) -> tuple[int, Path]:
    return challenger_run(folder, document, bars)


def rows(run: Path, kind: str) -> list[dict[str, Any]]:
    return [{"bar": r.bar, **r.values} for r in read_rows(run / "journal.sqlite", [kind])]


def recomputed(run: Path, upto: int) -> tuple[int, int, float, float, float]:
    """The gate's figures at bar ``upto``, from the journal's rows alone."""
    book = [r for r in rows(run, "challenger_bar") if r["bar"] <= upto]
    ours = np.array([r["equity"] for r in book])
    theirs = np.array([r["champion_equity"] for r in book])
    difference = np.diff(ours) / ours[:-1] - np.diff(theirs) / theirs[:-1]
    test = stats.ttest_1samp(difference, 0.0, alternative="greater")
    fills = sum(1 for r in rows(run, "challenger_fill") if r["bar"] <= upto)
    return len(book), fills, float(difference.mean()), float(test.statistic), float(test.pvalue)


GATE = {"min_bars": 8, "min_fills": 1, "alpha": 0.2}
"""The better challenger's gate (its p-value after 8 bars is 0.12 on these bars)."""


@pytest.fixture(scope="module")
def promoted(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted paper run whose better challenger is promoted."""
    code, run = play(tmp_path_factory.mktemp("promoted"), gated(registry, GATE, better=True))
    assert code == 0
    return run


def assert_evidence(run: Path) -> None:
    """Each gate row with a test's figures has those a recomputation from the journal has."""
    tested = [v for v in rows(run, "challenger_gate") if v["t"] is not None]
    assert tested, "no gate row carries a test"
    for v in tested:
        figures = (v["bars"], v["fills"], v["mean_difference"], v["t"], v["p"])
        assert figures == pytest.approx(recomputed(run, v["bar"]), rel=1e-9)


def test_a_better_challenger_is_promoted_with_its_evidence(promoted: Path) -> None:
    run = promoted
    verdicts = rows(run, "challenger_gate")
    assert [v["verdict"] for v in verdicts] == ["waiting", "promote"]
    assert [v["verdict"] for v in verdicts][-1] == "promote"
    promoted = verdicts[-1]
    assert_evidence(run)
    assert promoted["p"] < 0.2 and promoted["bars"] >= 8 and promoted["fills"] >= 1
    swapped = rows(run, "model_swapped")
    assert [(s["bar"], s["by"], s["request"]) for s in swapped] == [
        (promoted["bar"], "gate", "challenger:saved")
    ]
    assert (run / swapped[0]["file"]).is_file()  # kept in RUN_DIR/swapped/
    assert max(r["bar"] for r in rows(run, "challenger_bar")) == promoted["bar"]


def test_a_worse_challenger_is_never_promoted(registry: Path, tmp_path: Path) -> None:
    gate = {"min_bars": 4, "alpha": 0.5}
    code, run = play(tmp_path, gated(registry, gate, better=False))
    assert code == 0
    verdicts = rows(run, "challenger_gate")
    assert [v["verdict"] for v in verdicts] == ["waiting", "hold"]
    assert verdicts[-1]["mean_difference"] < 0
    assert_evidence(run)
    assert rows(run, "model_swapped") == []
    assert len(rows(run, "challenger_bar")) == BARS


def test_a_kill_after_the_promotion_restarts_with_the_promoted_model_once(
    registry: Path, promoted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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

    document = gated(registry, GATE, better=True)
    with monkeypatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, run = play(tmp_path, document)
    assert died != 0
    assert len(rows(run, "model_swapped")) == 1
    code, run = play(tmp_path, document, BARS - played[0])
    assert code == 0
    assert rows(run, "model_swapped") == rows(promoted, "model_swapped")  # once
    assert rows(run, "challenger_gate") == rows(promoted, "challenger_gate")
    assert rows(run, "challenger_bar") == rows(promoted, "challenger_bar")  # not restarted
    after = rows(promoted, "model_swapped")[0]["bar"]
    decided = [f for f in fills_of(promoted) if f[0] > after]
    assert decided, "the promoted model never traded"
    assert fills_of(run) == fills_of(promoted)  # the promoted model decides after the restart


def fills_of(run: Path) -> list[tuple[Any, ...]]:
    return [(r["bar"], r["side"], r["quantity"], r["price"]) for r in rows(run, "fill")]


def test_a_promotion_the_swap_refuses_drops_the_challenger_and_the_champion_trades_on(
    registry: Path, promoted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(files: Any, plugins: Any, session: Any, section: Any) -> SwapRefused:
        return SwapRefused(described(section), ("model: the file changed since the run started",))

    with monkeypatch.context() as patched:
        patched.setattr(promotion, "build_swap", refused)
        code, run = play(tmp_path, gated(registry, GATE, better=True))
    assert code == 0
    gate = rows(promoted, "challenger_gate")[-1]
    assert rows(run, "challenger_gate") == rows(promoted, "challenger_gate")
    assert rows(run, "model_swapped") == []
    [refusal] = rows(run, "model_swap_refused")
    assert (refusal["bar"], refusal["by"], refusal["request"]) == (
        gate["bar"],
        "gate",
        "challenger:saved",
    )
    [dropped] = rows(run, "challenger_failed")
    assert dropped["challenger"] == "saved" and "the file changed" in dropped["message"]
    assert max(r["bar"] for r in rows(run, "challenger_bar")) == gate["bar"]
    code, alone = play(tmp_path / "alone", strategy(signal=SILENT))
    assert code == 0
    decided = [r["probability"] for r in rows(run, "live_bar")]
    assert decided == [r["probability"] for r in rows(alone, "live_bar")]  # its own model
    assert decided[-1] != rows(promoted, "live_bar")[-1]["probability"]  # not the promoted


def test_a_kill_between_the_verdict_and_the_swap_promotes_once_at_the_same_bar(
    registry: Path, promoted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote = promotion.promote_passed
    played = [0]

    def dying(books: Any, *args: Any) -> None:
        played[0] += 1
        if books.promotable():  # the verdict's row is committed, the swap is not
            store: Any = books.journal
            store.flush()
            store._db.close()
            raise KeyboardInterrupt("kill -9")
        promote(books, *args)

    document = gated(registry, GATE, better=True)
    with monkeypatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, run = play(tmp_path, document)
    assert died != 0
    assert rows(run, "model_swapped") == []
    code, run = play(tmp_path, document, BARS - played[0])
    assert code == 0
    assert rows(run, "challenger_gate") == rows(promoted, "challenger_gate")  # it stands
    [swap] = rows(run, "model_swapped")
    decided = rows(promoted, "challenger_gate")[-1]["bar"]
    assert (swap["by"], swap["request"]) == ("gate", "challenger:saved")
    assert swap["bar"] == decided  # the restart decides its last bar again: not late
    assert rows(run, "challenger_bar") == rows(promoted, "challenger_bar")
    assert [r["probability"] for r in rows(run, "live_bar")] == [
        r["probability"] for r in rows(promoted, "live_bar")
    ]


def test_a_kill_inside_the_bar_the_gate_decided_promotes_as_the_run_left_alone_does(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 81: a kill -9 right after the gate's ``promote`` verdict was recorded, before
    its commit (the champion's bar committed, the challenger's rows of it lost): the
    restart's replay of that bar once journaled the challenger's book without the
    champion's equity (NaN), the gate left the bar out, and the promotion came a bar
    late with other figures (or never). The replayed bar now carries the champion's
    equity as the run had it: the same rows, the same promotion at the same bar, the
    same model deciding after it."""
    saved = {"kind": "saved", "from_run": str(registry)}
    gate = {"min_bars": 6, "alpha": 0.5}
    entry = {"name": "saved", "model": saved, "signal": TRADING, "promote_when": gate}
    document = strategy(challengers=[entry])  # the champion holds a position: its equity moves
    code, alone = play(tmp_path / "alone", document)
    assert code == 0
    promote = promotion.promote_passed
    played = [0]

    def dying(books: Any, *args: Any) -> Any:
        played[0] += 1
        if books.promotable():  # decided, recorded, not committed: kill -9 now
            store: Any = books.journal
            store._buffer.clear()
            store._buffered = 0
            store._db.close()
            raise KeyboardInterrupt("kill -9")
        return promote(books, *args)

    with monkeypatch.context() as patched:
        patched.setattr(promotion, "promote_passed", dying)
        died, run = play(tmp_path / "killed", document)
    assert died != 0
    assert rows(run, "model_swapped") == [] and rows(run, "challenger_gate")[-1:] != [
        rows(alone, "challenger_gate")[-1]
    ]
    code, run = play(tmp_path / "killed", document, BARS - played[0])
    assert code == 0
    [decided] = [r for r in rows(alone, "challenger_gate") if r["verdict"] == "promote"]
    moved = {r["champion_equity"] for r in rows(alone, "challenger_bar")}
    assert len(moved) > 1, "the champion's equity never moved: proves little"
    for kind in ("challenger_bar", "challenger_gate", "challenger_fill", "model_swapped"):
        assert rows(run, kind) == rows(alone, kind), kind
    assert rows(run, "model_swapped")[0]["bar"] == decided["bar"]
    assert fills_of(run) == fills_of(alone)
    decided_by = [r["probability"] for r in rows(run, "live_bar")]
    assert decided_by == [r["probability"] for r in rows(alone, "live_bar")]


def test_status_shows_each_gate_verdict(promoted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["status", str(promoted), "--json"]) == 0
    books = {b["name"]: b for b in json.loads(capsys.readouterr().out)["books"]}
    gate = rows(promoted, "challenger_gate")[-1]
    assert books["saved"]["gate"] == f"promote p={gate['p']:.3g} at bar {gate['bar']}"
    assert books["champion"]["gate"] is None
    assert main(["status", str(promoted)]) == 0
    shown = [line.split() for line in capsys.readouterr().out.splitlines()]
    said = ["promote", f"p={gate['p']:.3g}", "at", "bar", str(gate["bar"])]
    assert said == next(w for w in shown if w[:1] == ["saved"])[-5:]


def test_a_restart_after_the_bar_of_a_promotion_promotes_no_second_challenger_there(
    registry: Path, tmp_path: Path
) -> None:
    """Two challengers pass at the same bar: one is promoted there (one a bar). A stop
    right after that bar's commit: the restart does not decide that bar again (the other
    standing ``promote`` verdict is read at the next bar, as the uninterrupted run does)."""
    document = gated(registry, GATE, better=True)
    document["challengers"].append({**document["challengers"][0], "name": "twin"})
    code, alone = play(tmp_path / "alone", document)
    assert code == 0
    [swap, *_] = rows(alone, "model_swapped")
    first = min(r["bar"] for r in rows(alone, "live_bar"))
    verdicts = [r for r in rows(alone, "challenger_gate") if r["bar"] == swap["bar"]]
    assert [r["verdict"] for r in verdicts] == ["promote", "promote"]  # both pass there
    code, run = play(tmp_path / "stopped", document, swap["bar"] - first + 1)
    assert code == 0
    assert len(rows(run, "model_swapped")) == 1  # the promotion's bar is the last
    code, run = play(tmp_path / "stopped", document, BARS - (swap["bar"] - first + 1))
    assert code == 0
    for kind in ("model_swapped", "model_swap_refused"):  # the twin's swap: the same model
        asked = [(r["bar"], r["request"]) for r in rows(run, kind)]
        assert asked == [(r["bar"], r["request"]) for r in rows(alone, kind)]
    dropped = [(r["bar"], r["challenger"]) for r in rows(run, "challenger_failed")]
    assert dropped == [(r["bar"], r["challenger"]) for r in rows(alone, "challenger_failed")]
    assert rows(run, "challenger_gate") == rows(alone, "challenger_gate")


HORIZON = 3
"""The label's horizon of the registry's model (`tests.live.test_challengers.MODEL`)."""


def recomputed_health(run: Path, upto: int) -> tuple[int, float, float]:
    """The challenger's resolved predictions at bar ``upto`` (each bar's probability against
    the close ``HORIZON`` bars on, both in the journal's ``live_bar`` rows), their AUC by
    scikit-learn and their calibration error over ten bins written out."""
    closes = {r["bar"]: r["close"] for r in rows(run, "live_bar")}
    pairs = [
        (r["probabilities"][0], closes[r["bar"] + HORIZON] > closes[r["bar"]])
        for r in rows(run, "challenger_bar")
        if r["bar"] + HORIZON <= upto and np.isfinite(r["probabilities"][0])
    ]
    p = np.array([q for q, _ in pairs])
    up = np.array([u for _, u in pairs], dtype=np.float64)
    if len(pairs) < 2 or up.min() == up.max():
        return len(pairs), float("nan"), float("nan")
    ece = 0.0
    for b in range(10):
        inside = (p >= b / 10) & ((p < (b + 1) / 10) if b < 9 else (p <= 1.0))
        if inside.any():
            ece += inside.sum() * abs(p[inside].mean() - up[inside].mean()) / len(p)
    return len(pairs), float(roc_auc_score(up, p)), ece


def test_a_healthy_challenger_is_promoted_once_its_predictions_are_resolved(
    registry: Path, tmp_path: Path
) -> None:
    gate = {**GATE, "min_auc": 0.01, "max_calibration_error": 0.99, "min_samples": 10}
    code, run = play(tmp_path, gated(registry, gate, better=True))
    assert code == 0
    verdicts = rows(run, "challenger_gate")
    assert verdicts[0]["verdict"] == "waiting" and verdicts[-1]["verdict"] == "promote"
    assert json.loads(verdicts[0]["health"])["samples"] < 10  # it waited for them
    for row in verdicts:  # each row's figures are the journal's recomputed
        health = json.loads(row["health"])
        samples, auc, ece = recomputed_health(run, row["bar"])
        assert health["samples"] == samples
        if samples >= 10:
            assert health["auc"] == pytest.approx(auc, abs=1e-12)
            assert health["calibration_error"] == pytest.approx(ece, abs=1e-12)
        else:
            assert health["auc"] is None and health["calibration_error"] is None
    assert [s["by"] for s in rows(run, "model_swapped")] == ["gate"]


def test_an_unhealthy_challenger_is_held_though_its_book_is_better(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = {**GATE, "min_auc": 0.999, "min_samples": 5}  # an AUC no forest reaches here
    code, run = play(tmp_path, gated(registry, gate, better=True))
    assert code == 0
    verdicts = rows(run, "challenger_gate")
    assert [v["verdict"] for v in verdicts] == ["waiting", "hold"]
    held = verdicts[-1]
    assert held["p"] < GATE["alpha"]  # the test alone would have promoted it
    health = json.loads(held["health"])
    assert health["samples"] >= 5 and health["auc"] < 0.999
    assert health["auc"] == pytest.approx(recomputed_health(run, held["bar"])[1], abs=1e-12)
    assert rows(run, "model_swapped") == []
    assert len(rows(run, "challenger_bar")) == BARS
    capsys.readouterr()
    assert main(["status", str(run), "--json"]) == 0
    books = {b["name"]: b for b in json.loads(capsys.readouterr().out)["books"]}
    ece = health["calibration_error"]
    shown = f"hold p={held['p']:.3g} auc={health['auc']:.3g} ece={ece:.3g} at bar {held['bar']}"
    assert books["saved"]["gate"] == shown  # what held it, where the operator looks


def _copy(run: Path, folder: Path) -> Path:
    """A copy of the run folder ``run`` (its strategy file beside it) in ``folder``."""
    shutil.copytree(run.parent, folder)
    return folder / run.name


def _stamped(run: Path, kind: str) -> list[tuple[int, Any]]:
    """Each row of ``kind`` as ``(bar, timestamp)``."""
    return [(r.bar, r.timestamp) for r in read_rows(run / "journal.sqlite", [kind])]


def test_a_command_refuses_what_the_process_would_in_the_same_words(
    registry: Path, promoted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 81: ``tradeloom swap`` to the model in force exited 0 ("swap requested") and
    the refusal appeared later in the journal, where a script trusting the exit code
    did not look. The command reads the journal and refuses in one line, exit 2, by the
    rule the process applies (`tradeloom.live.lifecycle.rules`), naming where the hash in
    force lives; requests sent past the check (the mailbox's own functions) are refused
    by the process in the same words, each row stamped with its bar's time, as the
    restart's row is."""
    run = _copy(promoted, tmp_path / "copy")
    [swap] = rows(run, "model_swapped")
    in_force = (
        f"model: it is the model in force already (sha256 {swap['sha256']}, the journal's "
        f"model_swapped row of bar {swap['bar']}, by gate)"
    )
    gone = "challenger saved was promoted already; it is no longer in shadow"
    capsys.readouterr()
    assert main(["swap", str(run), "--model", str(registry)]) == 2
    assert capsys.readouterr().err == f"{run}: model swap refused: {in_force}\n"
    assert main(["promote", str(run), "--challenger", "saved"]) == 2
    assert capsys.readouterr().err == f"{run}: promotion refused: --challenger: {gone}\n"
    assert not list((run / "control").glob("*.json"))  # nothing asked
    request_swap(run, registry, None, "past the check")
    request_promote(run, "saved", "past the check")
    code, run = play(tmp_path / "copy", gated(registry, GATE, better=True), 1)
    assert code == 0
    refused = {r["request"].split("-")[-1]: r for r in rows(run, "model_swap_refused")}
    assert refused["swap.json"]["errors"] == [in_force]
    assert refused["promote.json"]["errors"] == [f"promote refused: {gone}"]
    times = dict(_stamped(run, "live_bar"))
    [restarted] = _stamped(run, "restarted")
    last = max(r["bar"] for r in rows(promoted, "live_bar"))  # the bar it went on from
    assert restarted == (last, times[last])
    assert _stamped(run, "model_swap_refused") == [(last, times[last])] * 2
    shown = [e for e in read_run(run).status.errors if "refused" in e["message"]]
    when = pd.Timestamp(times[last]).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [(e["bar"], e["time"]) for e in shown] == [(last, when)] * 2  # status shows it


def test_a_refusal_names_the_journal_row_a_hash_lives_in(
    registry: Path, promoted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 81: the kept copy of the model in force damaged, a swap's check and the
    restart pointed at a line of the strategy file ("pinned in the strategy file") for a
    hash that lives in the journal's ``model_swapped`` row; they name that row."""
    run = _copy(promoted, tmp_path / "copy")
    [swap] = rows(run, "model_swapped")
    sha = swap["sha256"]
    (run / swap["file"]).write_bytes(b"junk")
    size = json.loads((run / "swapped" / f"{sha}.json").read_text())["model"]["size"]
    damaged = hashlib.sha256(b"junk").hexdigest()
    said = (
        f"{run}'s journal (model_swapped row of bar {swap['bar']}) model.sha256: sha256 of "
        f"{run / swap['file']} is {damaged}, expected {sha} (the sha256 pinned there); it is "
        f"4 bytes, its metadata says {size:,} (truncated?); refusing to load it"
    )
    capsys.readouterr()
    assert main(["swap", str(run), "--model", str(registry), "--fold", "0"]) == 2
    assert capsys.readouterr().err == f"{run}: model swap refused: {said}\n"
    code, _ = play(tmp_path / "copy", gated(registry, GATE, better=True), 1)
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == said


def test_status_names_the_model_in_force(
    promoted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 81: ``tradeloom status`` names the model in force (`tradeloom.engine.
    model_in_force`: the console's words too)."""
    [swap] = rows(promoted, "model_swapped")
    words = (
        "challenger saved's model with its signal rule threshold (threshold 0.02), since bar "
        f"{swap['bar']} (by gate, sha256 {swap['sha256'][:12]})"
    )
    capsys.readouterr()
    assert main(["status", str(promoted), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == {"": words}
    assert main(["status", str(promoted)]) == 0
    assert f"model      {words}" in capsys.readouterr().out.splitlines()


def test_a_trained_challenger_shadows_beside_a_saved_champion(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 81: a champion loaded from a saved file and a challenger that trains in the
    run (the same label) was refused: the file's label check read the saved champion's
    label as none (``horizon must be None, was 3``). The saved model's label is compared
    once it is read from its file, by the same words: the same label shadows, another is
    refused in one located line."""
    from tests.live.test_challengers import MODEL

    champion = {"kind": "saved", "from_run": str(registry)}
    document = strategy(champion, [{"name": "trained", "model": MODEL}])
    capsys.readouterr()
    assert main(["validate", str(_written(tmp_path / "v", document))]) == 0
    code, run = play(tmp_path / "same", document, 3)
    assert code == 0
    assert rows(run, "challenger_failed") == []
    assert [r["bar"] for r in rows(run, "challenger_bar")] == [
        r["bar"] for r in rows(run, "live_bar")
    ]
    other = strategy(champion, [{"name": "trained", "model": {**MODEL, "label": {"horizon": 5}}}])
    said = (
        rf"{re.escape(str(tmp_path / 'other' / 's.yaml'))}:\d+:\d+ challengers\.0\.model\.label: "
        r"a challenger is scored on the strategy's label: horizon must be 3, was 5"
    )
    capsys.readouterr()
    assert main(["validate", str(_written(tmp_path / "other", other))]) == 2
    assert re.fullmatch(said, capsys.readouterr().err.strip())  # validate: the whole truth
    code, _ = play(tmp_path / "other", other, 3)
    assert code == 2
    assert re.fullmatch(said, capsys.readouterr().err.strip())


def _written(folder: Path, document: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
