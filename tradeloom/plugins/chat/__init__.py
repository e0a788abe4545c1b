"""Built-in chat transports: the ``chat`` layer's components.

``tradeloom chat KIND RUN_DIR`` builds one (``telegram``) and hands it to the run's chat
control (`tradeloom.live.chat_control`). A third-party package adds Slack, Discord or
Matrix by registering a component of layer ``chat`` whose factory returns a
`tradeloom.plugin.ChatTransport`.
"""

from __future__ import annotations

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog

__all__ = ["tradeloom_components"]

tradeloom_components = catalog(
    LazyComponent(
        layer="chat",
        kind="telegram",
        module="tradeloom.plugins.chat.telegram",
        params="TelegramParams",
        factory="build",
        summary="A Telegram bot's messages, long-polled from the Bot API (getUpdates)",
    ),
)
