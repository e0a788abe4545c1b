"""Hostile state at a live run's start (issue 25): a wrong API secret, answered in one line.

The emulator runs in the test; the run runs in a child process (``live_child.py``) bounded
by a timeout, so a hang fails the test and a traceback is seen as the user would see it.
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path

from tests import forkserver
from tests.live.live_emulated import make_bars
from tests.live.test_crash import CHILD, START, strategy_text
from tradeloom.testing import DEFAULT_API_KEY, ExchangeEmulator


def test_a_wrong_api_secret_at_start_up_is_one_line_and_sends_nothing(tmp_path: Path) -> None:
    bars = make_bars(START + 40)
    with ExchangeEmulator(
        {"BTC/USDT": bars}, {"USDT": Decimal("100000")}, start=START, include_open_kline=False
    ) as emulator:
        strategy = tmp_path / "strategy.yaml"
        strategy.write_text(strategy_text(tmp_path / "cache"))
        run_dir = tmp_path / "run"
        env = {**os.environ, "EMU_API_KEY": DEFAULT_API_KEY, "EMU_API_SECRET": "not-the-secret"}
        child = forkserver.run(
            [sys.executable, CHILD, emulator.url, strategy, run_dir, "--max-bars", "2"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        orders = emulator.exchange.orders()
    assert "Traceback" not in child.stdout + child.stderr, child.stderr[-3000:]
    lines = child.stderr.strip().splitlines()
    assert child.returncode == 1, child.stderr[-3000:]  # the account's fault, not the file's
    assert len(lines) == 1, child.stderr[-3000:]
    assert lines[0].startswith(
        "run failed: the exchange refused the account's API key or secret (binance "
        '{"code": -1022, "msg": "Signature for this request is not valid."}); check the values '
        "of the environment variables the strategy file's keys name (traceback in "
    )
    assert "not-the-secret" not in child.stderr
    assert not orders
