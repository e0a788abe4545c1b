"""A third-party ``chat`` kind, ``memo``, registered from this module: a room held in
memory, with string user ids as Slack's or Matrix's are (tests/live/test_chat_control.py
drives the same control through it)."""

from __future__ import annotations

from pydantic import Field

from tradeloom.plugin import (
    BuildContext,
    ChatMessage,
    ChatParams,
    Component,
    ParamError,
    hookimpl,
)

ROOMS: dict[str, Room] = {}
"""Each room by name: a test fills its inbox and reads its replies."""


class Room:
    def __init__(self) -> None:
        self.inbox: list[ChatMessage] = []
        self.replies: list[tuple[str, str]] = []
        self.redelivered = False
        self.blocked: set[str] = set()
        """Chats whose replies fail, as a chat that blocked a bot does."""

    def say(self, user: str, text: str, chat: str = "C1") -> None:
        self.inbox.append(ChatMessage(100 + len(self.inbox), user, chat, text))

    def receive(self, offset: int, timeout: int) -> list[ChatMessage]:
        if self.redelivered:
            self.redelivered = False
            return list(self.inbox)
        return [m for m in self.inbox if m.id >= offset]

    def send(self, chat: str, text: str) -> None:
        if chat in self.blocked:
            raise ConnectionError(f"memo: chat {chat} blocked the bot")
        self.replies.append((chat, text))


class MemoParams(ChatParams):
    room: str = Field(description="The room's name in ROOMS.")


def build(params: MemoParams, ctx: BuildContext) -> Room:
    if params.room not in ROOMS:
        raise ParamError("room", f"no room {params.room!r}")
    return ROOMS[params.room]


@hookimpl
def tradeloom_components() -> list[Component]:
    return [Component(layer="chat", kind="memo", params=MemoParams, factory=build)]
