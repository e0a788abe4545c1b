"""``tradeloom chat KIND RUN_DIR``: control a paper or live run from a chat
(`tradeloom.live.chat_control`), in a process of its own, through the installed ``chat``
kind ``KIND`` (``telegram`` built in; a plugin adds others)."""

from __future__ import annotations

import argparse
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.errors import UserError

__all__ = ["add_parser", "chat"]

_OPTIONS = {"allow": "--allow", "token_env": "--token-env", "api_url": "--api-url"}
"""The kinds' keys this command has an option for; any other is ``--param KEY=VALUE``."""


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``chat`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "chat",
        help="control a paper or live run from a chat (telegram, or a plugin's kind)",
        description="""Receive the commands of the users or chats on the allow-list
        through the chat kind KIND (telegram: a Telegram bot, long-polled; a plugin adds
        others, listed by 'tradeloom plugins'): /status answers as 'tradeloom status';
        /kill, /flatten and /resume (a reason may follow) go through the run's control
        mailbox as 'tradeloom kill' does, journaled with 'by: KIND:<user id>' and
        answered once the run has journaled them. Anyone else is answered 'not allowed',
        logged, and journaled by the run as a control_refused row (at most 3 a minute a
        sender; the rest counted). Each message acts exactly once: its request carries
        the key KIND:<chat>:<message id>, which the run journals once, and its offset is
        saved after it (RUN_DIR/chat/KIND-offset.json). A bot's token is read from an
        environment variable and never printed. Runs until interrupted.""",
    )
    parser.add_argument("kind", metavar="KIND", help="an installed chat kind, e.g. telegram")
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    parser.add_argument(
        "--allow",
        action="append",
        required=True,
        metavar="ID",
        help="a user or chat id whose commands are obeyed (repeat for more)",
    )
    parser.add_argument(
        "--token-env",
        metavar="NAME",
        help="the environment variable holding the bot's token (telegram: default "
        "TELEGRAM_BOT_TOKEN)",
    )
    parser.add_argument(
        "--api-url",
        metavar="URL",
        help="the service's base URL (telegram: default https://api.telegram.org)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another key of the kind's params (repeat for more)",
    )
    parser.add_argument(
        "-m", "--module", action="append", default=[], help="also load this plugin module"
    )
    parser.set_defaults(command=chat)


def chat(args: argparse.Namespace) -> int:
    """Serve the run's chat control until interrupted."""
    from tradeloom.engine.control import controllable_mode
    from tradeloom.live.chat_control import open_chat
    from tradeloom.plugins.manager import load_plugins

    values: dict[str, Any] = {"allow": args.allow}
    for key in ("token_env", "api_url"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    for item in args.param:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise UserError(f"--param: expected KEY=VALUE, was {item!r}")
        values[key.replace("-", "_")] = value
    plugins = load_plugins(args.module)
    if not plugins.registry.matches("chat", args.kind):
        raise UserError(f"chat: {plugins.registry.unknown_kind_message('chat', args.kind)}")
    controllable_mode(args.run_dir)
    try:
        control = open_chat(args.run_dir, args.kind, values, plugins)
    except UserError as exc:
        raise UserError("\n".join(_option(line) for line in str(exc).splitlines())) from None
    print(
        f"tradeloom chat: {control.kind} control of {args.run_dir} for {sorted(control.allowed)}",
        flush=True,
    )
    control.serve()
    return 0


def _option(line: str) -> str:
    key, colon, message = line.partition(": ")
    top = key.split(".", 1)[0]
    if not colon or " " in key:
        return line
    return f"{_OPTIONS.get(top, f'--param {key}')}: {message}"
