"""The chat's commands act exactly once on a real run: a chat that dies between writing a
request and saving its offset writes it again under the same key, and the run (restarted
meanwhile too) carries it out and journals it once; a stranger's commands are journaled
as ``control_refused`` rows, bounded, and act on nothing.

The run is the live runner against the loopback exchange emulator, in this process; the
chat talks to the Bot API's local stand-in."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.live.live_emulated import EmulatedRun, crash, emulated_run, rows, tick_bars
from tradeloom.engine.control import request_refused
from tradeloom.engine.status_rows import read_status
from tradeloom.engine.status_text import format_status
from tradeloom.journal import verify
from tradeloom.live.chat_control import REFUSALS_PER_MINUTE, ChatControl
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.chat.telegram import TelegramTransport
from tradeloom.reporting.run_events import run_events
from tradeloom.testing.telegram_server import BotServer

TOKEN = "123456:secret-bot-token-5f1e9a"
OPERATOR, STRANGER = 42, 666


class _Died(Exception):
    """The chat's process dies (kill -9) after the mailbox write, before the offset's."""


def _died(control: ChatControl, offset: int) -> None:
    raise _Died


def chat(run_dir: Path, bot: BotServer, **options: object) -> ChatControl:
    transport = TelegramTransport(TOKEN, bot.base_url)
    return ChatControl(run_dir, "telegram", transport, frozenset({str(OPERATOR)}), **options)  # type: ignore[arg-type]


def started(run: EmulatedRun, run_dir: Path) -> LiveRunner:
    runner = run.runner(run_dir)
    runner.inbox.install_signal_handlers()
    runner.start()
    return runner


def test_a_command_written_again_after_the_chat_died_acts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run, BotServer(TOKEN) as bot:
        runner = started(run, run_dir)
        try:
            tick_bars(run, runner, 2)
            update = bot.say(user=OPERATOR, text="/kill from the phone")
            with monkeypatch.context() as patched:
                patched.setattr(ChatControl, "_save_offset", _died)
                with pytest.raises(_Died):
                    chat(run_dir, bot, reply_timeout=0).poll(0)
            assert not (run_dir / "chat" / "telegram-offset.json").exists()
            tick_bars(run, runner, 1)  # the run carries the kill out and journals it...
            crash(runner)  # ...and dies too
            runner.inbox.restore_signal_handlers()
            run.emulator.advance()
            again = started(run, run_dir)  # knows the key from the journal's fold

            # the chat restarts: the update comes again, its request is written again
            # under the same key; the answer waits for the run to take it
            restarted = chat(run_dir, bot, reply_timeout=30)
            handled: list[object] = []
            polling = threading.Thread(target=lambda: handled.extend(restarted.poll(0)))
            polling.start()
            deadline = time.monotonic() + 30
            while not list((run_dir / "control").glob("*-kill.json")):
                assert polling.is_alive() and time.monotonic() < deadline
                time.sleep(0.01)
            again.tick()
            polling.join(30)
            tick_bars(run, again, 2)
            again.stop("test over")
        finally:
            runner.inbox.restore_signal_handlers()
        sent = [m["text"] for m in bot.sent]
    key = f"telegram:{OPERATOR}:{update}"
    asked = rows(journal, "control_request")
    assert [(r["action"], r["by"], r["key"]) for r in asked] == [
        ("kill", f"telegram:{OPERATOR}", key)
    ]
    states = [(r["state"], r["code"]) for r in rows(journal, "trading_state")]
    assert states == [("HALTED", "KILL_SWITCH")]
    assert len(handled) == 1 and not list((run_dir / "control").glob("*.json"))
    assert len(list((run_dir / "control" / "done").glob("*-kill.json"))) == 2
    assert sent[-1].startswith(f"kill journaled by the running process (pid {os.getpid()})")
    assert restarted.offset == update + 1


def test_a_strangers_commands_are_journaled_bounded_and_act_on_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    now = [1000.0]
    flood = REFUSALS_PER_MINUTE + 4
    with emulated_run(tmp_path, monkeypatch) as run, BotServer(TOKEN) as bot:
        runner = started(run, run_dir)
        try:
            tick_bars(run, runner, 2)
            first_key = f"telegram:{STRANGER}:{bot.say(user=STRANGER, text='/flatten now 0')}"
            for i in range(1, flood):
                bot.say(user=STRANGER, text=f"/flatten now {i}\x1b[31m")
            control = chat(run_dir, bot, clock=lambda: now[0])
            control.poll(0)
            now[0] += 61  # a minute on: one more is journaled, counting those dropped
            bot.say(user=STRANGER, text="/kill")
            control.poll(0)
            replies = len(bot.sent)
            # the chat dies before saving its offset and polls it all again: the keys
            # written already are journaled once
            (run_dir / "chat" / "telegram-offset.json").unlink()
            chat(run_dir, bot, clock=lambda: now[0]).poll(0)
            tick_bars(run, runner, 2)
            state = runner.session_or_fail.state
            runner.stop("test over")
            runner.inbox.restore_signal_handlers()
            # a restart reads the rows (their keys folded) and journals none again
            request_refused(
                run_dir, "/flatten now 0", "not on the allow-list", by="x", key=first_key
            )
            runner = started(run, run_dir)
            tick_bars(run, runner, 1)
            runner.stop("test over")
        finally:
            runner.inbox.restore_signal_handlers()
    refused = rows(journal, "control_refused")
    assert [(r["by"], r["command"], r["reason"], r["dropped"]) for r in refused] == [
        (f"telegram:{STRANGER}", "/flatten now 0", "not on the allow-list", 0),
        *[
            (f"telegram:{STRANGER}", f"/flatten now {i}\\x1b[31m", "not on the allow-list", 0)
            for i in range(1, REFUSALS_PER_MINUTE)
        ],
        (f"telegram:{STRANGER}", "/kill", "not on the allow-list", flood - REFUSALS_PER_MINUTE),
    ]
    assert len({r["key"] for r in refused}) == len(refused)
    assert replies == REFUSALS_PER_MINUTE + 1  # the dropped get no answer either
    assert rows(journal, "control_request") == [] and rows(journal, "trading_state") == []
    assert state == "ACTIVE"
    verify(journal)
    status = read_status(run_dir)
    lines = [e["message"] for e in status.errors]
    assert lines[-1] == (
        f"telegram:{STRANGER}: /kill refused: not on the allow-list (and "
        f"{flood - REFUSALS_PER_MINUTE} more not journaled)"
    )
    assert status.errors[-1]["kind"] == "control_refused"
    assert lines[-1] in format_status(status)
    events = run_events(journal, pd.DataFrame(), "paper")
    timeline = [e for e in events if e.label == "command refused"]
    assert len(timeline) == len(refused)
