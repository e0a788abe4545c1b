"""The chat control against a local stand-in of Telegram's Bot API: each command of the
allow-list acts once through the run's control mailbox, naming its sender; an update
delivered twice is not acted on twice; a stranger is refused, and the refusal goes to
the mailbox for the run to journal; the token is in no line. A third-party chat kind
(tests/live/chat_kind.py) drives the same control."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import forkserver
from tests.console.console_runs import ONE, ROOT, tradeloom
from tests.live import chat_kind
from tradeloom.engine.control import running_pid
from tradeloom.errors import UserError
from tradeloom.journal import journal_path, read_rows
from tradeloom.live.chat_control import ChatControl, open_chat
from tradeloom.plugins.chat.telegram import TelegramTransport
from tradeloom.plugins.manager import load_plugins
from tradeloom.testing.telegram_server import BotServer

TOKEN = "123456:secret-bot-token-5f1e9a"
OPERATOR, STRANGER = 42, 666


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("chat")
    (work / "s.yaml").write_text(ONE)
    tradeloom(
        "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
        "--max-bars", "3", "-q", cwd=work,
    )  # fmt: skip
    return work / "runs" / "one-paper-simulated"


def telegram(run: Path, base_url: str) -> ChatControl:
    return ChatControl(
        run, "telegram", TelegramTransport(TOKEN, base_url), frozenset({str(OPERATOR)})
    )


def mailbox(run: Path) -> list[dict[str, object]]:
    return [json.loads(f.read_text()) for f in sorted((run / "control").glob("*.json"))]


def requests_of(run: Path) -> list[tuple[str, str, str]]:
    """The mailbox's requests but the refusals to journal."""
    return [(d["action"], d["reason"], d["by"]) for d in mailbox(run) if d["action"] != "refused"]  # type: ignore[misc]


def refusals_of(run: Path) -> list[tuple[object, ...]]:
    """The mailbox's refusals to journal: who, what, why, how many dropped before."""
    return [
        (d["by"], d["command"], d["reason"], d["dropped"])
        for d in mailbox(run)
        if d["action"] == "refused"
    ]


def test_each_command_acts_once_and_names_its_sender(
    paper_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(paper_run, run)
    with BotServer(TOKEN) as bot:
        control = telegram(run, bot.base_url)
        bot.say(user=OPERATOR, text="/status")
        bot.say(user=OPERATOR, text="/kill drawdown too deep")
        bot.say(user=STRANGER, text="/flatten")
        bot.say(user=OPERATOR, text="/flatten@tradeloom_bot")
        bot.say(user=OPERATOR, text="/resume all clear")
        first = control.poll(0)
        bot.redeliver()  # every update again: none is acted on twice
        again = control.poll(0)
        restarted = telegram(run, bot.base_url)
        bot.redeliver()
        after_restart = restarted.poll(0)
        sent = list(bot.sent)
    assert [(h.command, h.allowed) for h in first] == [
        ("/status", True), ("/kill", True), ("/flatten", False), ("/flatten", True),
        ("/resume", True),
    ]  # fmt: skip
    assert again == [] and after_restart == []
    assert requests_of(run) == [
        ("kill", "drawdown too deep", f"telegram:{OPERATOR}"),
        ("flatten", "flatten from telegram", f"telegram:{OPERATOR}"),
        ("resume", "all clear", f"telegram:{OPERATOR}"),
    ]
    assert [d["key"] for d in mailbox(run)] == [
        f"telegram:{OPERATOR}:1001", f"telegram:{STRANGER}:1002", f"telegram:{OPERATOR}:1003",
        f"telegram:{OPERATOR}:1004",
    ]  # fmt: skip
    assert refusals_of(run) == [(f"telegram:{STRANGER}", "/flatten", "not on the allow-list", 0)]
    assert [m["chat_id"] for m in sent] == [OPERATOR, OPERATOR, STRANGER, OPERATOR, OPERATOR]
    assert (run / "chat" / "telegram-offset.json").is_file()
    assert sent[0]["text"].startswith(f"run        {run}")
    assert sent[2]["text"] == "not allowed: you are not on this run's allow-list"
    assert "no process is running" in sent[1]["text"]
    out = capsys.readouterr()
    assert "chat_refused" in out.out + out.err and str(STRANGER) in out.out + out.err
    assert TOKEN not in out.out + out.err
    assert all(TOKEN not in m["text"] for m in sent)


def test_a_wrong_token_fails_without_showing_it(tmp_path: Path) -> None:
    with BotServer("other:token") as bot:
        control = telegram(tmp_path, bot.base_url)
        with pytest.raises(ConnectionError) as caught:
            control.poll(0)
    assert TOKEN not in str(caught.value)
    assert str(caught.value).startswith("telegram getUpdates: HTTP Error 401")


def test_an_empty_allow_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"^telegram: the allow-list is empty"):
        ChatControl(tmp_path, "telegram", TelegramTransport(TOKEN), frozenset())


def test_the_command_serves_in_its_own_process(paper_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(paper_run, run)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=TOKEN)
    with BotServer(TOKEN) as bot:
        bot.say(user=OPERATOR, text="/kill from the phone")
        bot.say(user=STRANGER, text="/resume")
        proc = forkserver.popen(
            [sys.executable, "-m", "tradeloom.cli.main", "chat", "telegram", str(run),
             "--allow", str(OPERATOR), "--api-url", bot.base_url],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while len(bot.sent) < 2 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        sent = list(bot.sent)
    assert [m["chat_id"] for m in sent] == [OPERATOR, STRANGER], (out, err)
    assert requests_of(run) == [("kill", "from the phone", f"telegram:{OPERATOR}")]
    assert refusals_of(run) == [(f"telegram:{STRANGER}", "/resume", "not on the allow-list", 0)]
    assert "chat_refused" in out + err
    assert TOKEN not in out + err


def test_the_command_without_its_token(paper_run: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    done = forkserver.run(
        [sys.executable, "-m", "tradeloom.cli.main", "chat", "telegram", str(paper_run),
         "--allow", "1"],
        env=dict(env, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "--token-env: the environment variable TELEGRAM_BOT_TOKEN is not set"
    ), done.stderr


@pytest.mark.slow
def test_a_running_run_journals_who_sent_the_kill(tmp_path: Path) -> None:
    """A paper run trading on the simulated clock takes the chat's kill through its
    mailbox and journals it with its sender; the stranger's flatten never reaches it."""
    (tmp_path / "s.yaml").write_text(ONE)
    run = tmp_path / "runs" / "one-paper-simulated"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    paper = forkserver.popen(
        [sys.executable, "-m", "tradeloom.cli.main", "run", "s.yaml", "--mode", "paper",
         "--clock", "simulated", "--speed", "100x", "--max-bars", "400", "-q"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (run.is_dir() and running_pid(run) is not None and journal_path(run).exists()):
            assert paper.poll() is None and time.monotonic() < deadline, paper.stderr
            time.sleep(0.1)
        with BotServer(TOKEN) as bot:
            control = telegram(run, bot.base_url)
            bot.say(user=STRANGER, text="/flatten")
            bot.say(user=OPERATOR, text="/kill from the phone")
            control.poll(0)
            # the kill is answered once journaled: the poll returns after the row
            assert read_rows(journal_path(run), ["control_request"])
            assert bot.sent[-1]["text"].startswith("kill journaled by the running process")
            while not read_rows(journal_path(run), ["control_refused"]):  # at its next check
                assert paper.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        paper.send_signal(signal.SIGINT)
        paper.communicate(timeout=60)
    rows = [r.values for r in read_rows(journal_path(run), ["control_request"])]
    assert [(r["action"], r["reason"], r["by"]) for r in rows] == [
        ("kill", "from the phone", f"telegram:{OPERATOR}")
    ]
    refused = [r.values for r in read_rows(journal_path(run), ["control_refused"])]
    assert [(r["by"], r["command"]) for r in refused] == [(f"telegram:{STRANGER}", "/flatten")]


def test_a_third_party_kind_drives_the_same_control(paper_run: Path, tmp_path: Path) -> None:
    """The ``memo`` kind of a plugin module: string user ids, its own offset file, the
    same allow-list, commands, ``by:`` and act-once as Telegram's."""
    run = tmp_path / "run"
    shutil.copytree(paper_run, run)
    room = chat_kind.ROOMS.setdefault("ops", chat_kind.Room())
    plugins = load_plugins(["tests.live.chat_kind"], entry_points=False)
    control = open_chat(run, "memo", {"allow": ["U042"], "room": "ops"}, plugins)
    room.say("U042", "/kill spread blew out")
    room.say("U666", "/flatten")
    room.say("U042", "hello")  # no command: no reply
    room.say("U042", "/resume")
    first = control.poll(0)
    room.redelivered = True
    again = open_chat(run, "memo", {"allow": ["U042"], "room": "ops"}, plugins).poll(0)
    assert [(h.command, h.user, h.allowed) for h in first] == [
        ("/kill", "U042", True), ("/flatten", "U666", False), ("/resume", "U042", True),
    ]  # fmt: skip
    assert again == []
    assert requests_of(run) == [
        ("kill", "spread blew out", "memo:U042"),
        ("resume", "resume from memo", "memo:U042"),
    ]
    assert refusals_of(run) == [("memo:U666", "/flatten", "not on the allow-list", 0)]
    assert [text for _, text in room.replies][1] == (
        "not allowed: you are not on this run's allow-list"
    )
    assert json.loads((run / "chat" / "memo-offset.json").read_text()) == {"offset": 104}
    with pytest.raises(UserError, match=r"^room: no room 'nowhere'$"):
        open_chat(run, "memo", {"allow": ["U042"], "room": "nowhere"}, plugins)
    with pytest.raises(UserError, match=r"^allow: List should have at least 1 item"):
        open_chat(run, "memo", {"allow": [], "room": "ops"}, plugins)


def test_a_reply_that_fails_does_not_hold_the_next_messages(
    paper_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chat that blocked the bot: its command stands, the failure is logged, the offset
    moves on, and the messages after it are answered."""
    run = tmp_path / "run"
    shutil.copytree(paper_run, run)
    room = chat_kind.ROOMS.setdefault("blocked", chat_kind.Room())
    room.blocked.add("C9")
    plugins = load_plugins(["tests.live.chat_kind"], entry_points=False)
    control = open_chat(run, "memo", {"allow": ["U042"], "room": "blocked"}, plugins)
    room.say("U042", "/kill from a blocked chat", chat="C9")
    room.say("U666", "/flatten", chat="C9")
    room.say("U042", "/resume")
    assert [h.command for h in control.poll(0)] == ["/kill", "/flatten", "/resume"]
    assert control.poll(0) == []
    assert requests_of(run) == [
        ("kill", "from a blocked chat", "memo:U042"),
        ("resume", "resume from memo", "memo:U042"),
    ]
    assert refusals_of(run) == [("memo:U666", "/flatten", "not on the allow-list", 0)]
    assert [chat for chat, _ in room.replies] == ["C1"]
    out = capsys.readouterr()
    assert (out.out + out.err).count("chat_reply_failed") == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["slack"], "chat: unknown chat kind 'slack'; installed kinds: telegram"),
        (["telegram", "--allow", "me"], "--allow: String should match pattern"),
        (["telegram", "--param", "colour=red"], "--param colour: Extra inputs are not permitted"),
    ],
)
def test_the_command_refuses_in_one_line(paper_run: Path, argv: list[str], message: str) -> None:
    kind, *rest = argv
    done = forkserver.run(
        [sys.executable, "-m", "tradeloom.cli.main", "chat", kind, str(paper_run),
         *(rest if "--allow" in rest else [*rest, "--allow", "1"])],
        env=dict(os.environ, PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=TOKEN),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr, done.stderr
