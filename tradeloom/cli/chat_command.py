"""``tradeloom chat telegram RUN_DIR``: control a paper or live run from a Telegram chat
(`tradeloom.live.chat_control`), in a process of its own."""

from __future__ import annotations

import argparse
import os
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.errors import UserError

__all__ = ["add_parser", "telegram"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``chat telegram`` to the ``tradeloom`` command's subcommands."""
    chat = commands.add_parser("chat", help="control a paper or live run from a chat")
    kinds = chat.add_subparsers(dest="chat_kind", metavar="KIND", required=True)
    parser = kinds.add_parser(
        "telegram",
        help="answer /status, /kill, /flatten and /resume from a Telegram bot's allow-list",
        description="""Long-poll a Telegram bot for the commands of the users or chats on
        the allow-list: /status answers as 'tradeloom status'; /kill, /flatten and /resume
        (a reason may follow) go through the run's control mailbox as 'tradeloom kill'
        does, journaled with 'by: telegram:<user id>'. Anyone else is answered 'not
        allowed' and logged. Each update is acted on once (its offset is kept in
        RUN_DIR/chat/telegram-offset.json). The bot's token is read from an environment
        variable and never printed. Runs until interrupted.""",
    )
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    parser.add_argument(
        "--allow",
        type=int,
        action="append",
        required=True,
        metavar="ID",
        help="a Telegram user or chat id whose commands are obeyed (repeat for more)",
    )
    parser.add_argument(
        "--token-env",
        default="TELEGRAM_BOT_TOKEN",
        metavar="NAME",
        help="the environment variable holding the bot's token (default TELEGRAM_BOT_TOKEN)",
    )
    parser.add_argument(
        "--api-url",
        default="https://api.telegram.org",
        metavar="URL",
        help="the Bot API's base URL (default https://api.telegram.org)",
    )
    parser.set_defaults(command=telegram)


def telegram(args: argparse.Namespace) -> int:
    """Serve the run's chat control until interrupted."""
    from tradeloom.engine.control import controllable_mode
    from tradeloom.live.chat_control import BotApi, ChatControl

    token = os.environ.get(args.token_env, "")
    if not token:
        raise UserError(f"--token-env: the environment variable {args.token_env} is not set")
    controllable_mode(args.run_dir)
    control = ChatControl(args.run_dir, BotApi(token, args.api_url), frozenset(args.allow))
    print(
        f"tradeloom chat: telegram control of {args.run_dir} for {sorted(args.allow)}", flush=True
    )
    control.serve()
    return 0
