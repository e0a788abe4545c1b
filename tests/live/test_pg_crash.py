"""A live run journaling to PostgreSQL, killed with ``kill -9`` and restarted, sends every
order once and ends holding what the venue says it holds (the pattern of ``test_crash``,
the journal on the real server instead of in the run directory)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.live.live_emulated import SYMBOL, make_bars
from tests.live.test_crash import (
    END,
    NTH,
    START,
    CrashRig,
    check_sent_once_and_reconciled,
    crash_at,
    finish,
    strategy_text,
)
from tests.pg_server import PgSchema
from tradeloom.journal import read_info
from tradeloom.testing import ExchangeEmulator

pytestmark = pytest.mark.slow  # child processes


@pytest.fixture
def pg_rig(tmp_path: Path, pg_schema: PgSchema) -> Iterator[CrashRig]:
    """The crash tests' rig, its strategy journaling to ``pg_schema``."""
    with ExchangeEmulator(
        {SYMBOL: make_bars()}, {"USDT": Decimal(100_000)}, start=START, include_open_kline=False
    ) as emulator:
        rig = CrashRig(emulator, tmp_path, recv_window=10_000)
        rig.strategy.write_text(strategy_text(tmp_path / "cache") + pg_schema.yaml())
        rig.journal = rig.run_dir / "journal.json"
        try:
            yield rig
        finally:
            rig.close()


@pytest.mark.parametrize("crash", [f"order:{NTH}", f"fill:{NTH}"])
def test_a_live_run_journaling_to_postgresql_killed_and_restarted_sends_each_order_once(
    pg_rig: CrashRig, pg_schema: PgSchema, crash: str
) -> None:
    rig = pg_rig
    crash_at(rig, crash)
    assert not (rig.run_dir / "journal.sqlite").exists()
    assert read_info(rig.journal).identity.mode == "live"
    rig.launch()
    finish(rig)
    check_sent_once_and_reconciled(rig)
    assert len(rig.order_ids()) > NTH
    assert rig.rows("restarted") and rig.rows("reconciled")
    assert rig.exit_codes == [-signal.SIGKILL, 0]
    assert rig.emulator.exchange.position >= END
