"""A journal that cannot be trusted is refused in one line in every shape, by every command.

A universe, a portfolio file and a router each run on paper on the simulated clock
through the real command line (``a/run``), and a second run of the same file under the
same folder name starts elsewhere (``b/run``: ``runs/<name>-<mode>`` in two working
directories). A copy of ``a/run`` is then damaged as the issue's testers did:

- ``cut``: its last durable rows deleted (a lost write-ahead log, a hand-cut tail);
- ``foreign``: ``b/run``'s journal copied in with its tail record (same strategy file,
  same folder name: only the run folder's key tells them apart);
- ``middle``: a fill in the middle deleted (the tail record still matches).

``tradeloom journal verify``, ``status``, ``report`` and the restart (the same ``run``
command) each exit 2 with one line naming the journal and what is wrong, the restart
adding that nothing was sent; the journal keeps every row it held. The undamaged copy
passes the same three reading commands. (Live runs go through the same checks before
anything is sent: ``tests/live/test_portfolio_live.py`` cuts a live portfolio's
write-ahead log after ``kill -9``, ``tests/live/test_universe_live.py`` a live
universe's rows; one market's live restart asks its venue instead,
``tests/live/test_tail_cuts.py``.)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from tests.builders import OMIT, strategy_text
from tests.journal_damage import copy_journal, cut_last_rows, delete_row
from tradeloom.cli.main import main
from tradeloom.journal import journal_digest
from tradeloom.journal.owner import read_folder_key

pytestmark = pytest.mark.slow  # three paper runs on the simulated clock (~5-10 s each)

ROOT = Path(__file__).resolve().parents[2]

UNIVERSE = strategy_text(
    name="three",
    seed=3,
    data={"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "bars": 160, "symbol": OMIT},
    model={
        "params": {"min_samples_leaf": 5},
        "label": {"horizon": 3},
        "walk_forward": {"train_window": 60, "retrain_every": 40},
    },
    signal={"min_interval": 2, "top_k": 2},
    risk={"sizing": {"fraction": 0.3}},
    execution={"initial_cash": 50000},
    outputs={"report": False, "features": True},
)

MEMBER = strategy_text(
    name="NAME",
    seed="SEED",
    data={"symbol": "SYMBOL", "bars": 160},
    model={
        "params": {"min_samples_leaf": 5},
        "label": {"horizon": 3},
        "walk_forward": {"train_window": 60, "retrain_every": 40},
    },
    signal={"min_interval": 2},
    risk={"sizing": {"fraction": 0.4}},
    execution={"initial_cash": 50000},
)

PORTFOLIO = """\
name: pair
initial_cash: 60000
strategies:
  - {file: trend_btc.yaml, weight: 0.5}
  - {file: swing_eth.yaml, weight: 0.5}
"""

ROUTER_SETTINGS = (
    "data.bars=160",
    "model.walk_forward.train_window=60",
    "model.walk_forward.retrain_every=40",
    "model.params.n_estimators=5",
    "signal.threshold=0.02",
)

READERS = (["journal", "verify"], ["status"], ["report"])


@dataclass(frozen=True)
class Shape:
    """Two paper runs of one file under one folder name, and the command that runs them."""

    name: str
    command: tuple[str, ...]
    """``run FILE --mode paper ...`` without ``--out``."""
    mine: Path
    """``a/run``: played to the end of the simulated market."""
    theirs: Path
    """``b/run``: another run of the same file, one bar."""


def _files(folder: Path, shape: str) -> tuple[str, ...]:
    if shape == "universe":
        (folder / "three.yaml").write_text(UNIVERSE)
        return (str(folder / "three.yaml"),)
    if shape == "portfolio":
        for name, symbol, seed in (("trend_btc", "BTC/USDT", 11), ("swing_eth", "ETH/USDT", 5)):
            text = MEMBER.replace("NAME", name).replace("SYMBOL", symbol)
            (folder / f"{name}.yaml").write_text(text.replace("SEED", str(seed)))
        (folder / "pair.yaml").write_text(PORTFOLIO)
        return (str(folder / "pair.yaml"),)
    router = ROOT / "examples" / "router_two_venues.yaml"
    return (str(router), *(f"--set={setting}" for setting in ROUTER_SETTINGS))


@pytest.fixture(scope="module", params=["universe", "portfolio", "router"])
def shape(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Shape:
    folder = tmp_path_factory.mktemp(request.param)
    files = _files(folder, request.param)
    command = ("run", *files, "--mode", "paper", "--clock", "simulated", "--speed", "max")
    saved = structlog.get_config()
    try:
        mine, theirs = folder / "a" / "run", folder / "b" / "run"
        assert main(["-q", *command, "--out", str(mine)]) == 0
        assert main(["-q", *command, "--out", str(theirs), "--max-bars", "1"]) == 0
    finally:
        structlog.configure(**saved)  # an in-process main configures logging globally
    return Shape(request.param, command, mine, theirs)


def _refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    saved = structlog.get_config()
    try:
        code = main(args)
    finally:
        structlog.configure(**saved)
    out, err = capsys.readouterr()
    assert (code, out, err.count("\n")) == (2, "", 1), (code, out, err)
    return err.rstrip("\n")


def test_an_intact_copy_of_each_shape_passes_every_reader(
    shape: Shape, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "x" / "run"
    shutil.copytree(shape.mine, run)  # a run folder moved whole is the same run
    for command in READERS:
        assert main(["-q", *command, str(run)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("damage", ["cut", "foreign", "middle"])
def test_an_untrusted_journal_is_refused_by_every_command_and_keeps_its_rows(
    shape: Shape, damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "x" / "run"
    shutil.copytree(shape.mine, run)
    journal = run / "journal.sqlite"
    if damage == "cut":
        held = cut_last_rows(journal, 3)
        line = (
            f"{journal}: its tail was cut: it holds {held - 3} rows, its tail record says "
            f"{held} were committed (3 rows lost)"
        )
    elif damage == "foreign":
        copy_journal(shape.theirs, run)
        mine, theirs = read_folder_key(run), read_folder_key(shape.theirs)
        assert mine is not None and theirs is not None
        line = (
            f"{journal}: another run's journal: its first record names run folder key "
            f"{theirs[:12]}, {run / 'folder.key'} is {mine[:12]} (a journal and its tail "
            "record copied from another run's folder); put the run's own journal back"
        )
    else:
        seq = delete_row(journal, "fill", 1)
        line = (
            f"{journal}: the hash chain breaks at sequence {seq}: the row of sequence {seq} "
            "is missing (deleted)"
        )
    held_rows = journal_digest(journal, exclude=())
    for command in READERS:
        assert _refused([*command, str(run)], capsys) == line, command
    restart = _refused([*shape.command, "--out", str(run)], capsys)
    assert restart == f"{line}; refusing to restart: nothing was sent"
    assert journal_digest(journal, exclude=()) == held_rows  # nothing lost, nothing added
