"""What a ``chat`` component is: a transport between a chat service and a run's control.

``tradeloom chat KIND RUN_DIR`` builds the kind's transport and hands it to the control
(`tradeloom.live.chat_control.ChatControl`), which is written once for every kind: the
allow-list, ``/status``, ``/kill``, ``/flatten``, ``/resume`` through the run's control
mailbox with ``by: <kind>:<user id>``, and the saved offset that makes each message act
once. A transport only moves text: it returns the messages from an offset on and sends a
reply. Telegram's Bot API is built in; a third-party package adds Slack, Discord or
Matrix by registering a component of layer ``chat`` whose params model subclasses
`ChatParams` and whose factory returns a `ChatTransport`. The factory's `BuildContext`
names the run folder as ``strategy_dir`` (and the folder's name as ``strategy_name``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import Field

from tradeloom.plugins.component import Params

__all__ = ["ChatMessage", "ChatParams", "ChatTransport"]


class ChatParams(Params):
    """Keys every ``chat`` kind has (its params model subclasses this one)."""

    allow: list[str] = Field(
        min_length=1,
        description="The user or chat ids whose commands are obeyed (`--allow`, repeated).",
    )


@dataclass(frozen=True)
class ChatMessage:
    """One message as the transport received it.

    Attributes:
        id: Its position in the transport's stream: ids increase, and the control asks
            next for the messages from ``id + 1`` on (Telegram's ``update_id``).
        user: The sender's id as text (None: unknown), named in ``by: <kind>:<user>``.
        chat: The conversation's id as text, where the reply goes (None: no reply).
        text: What was written (``""`` for an update that is no text message).
    """

    id: int
    user: str | None
    chat: str | None
    text: str


@runtime_checkable
class ChatTransport(Protocol):
    """A chat service's end of a run's control (a ``chat`` component's factory returns one).

    Both methods raise `ConnectionError` for a failure that may pass (the service
    unreachable, a refused token): the control logs it and asks again. Neither may put a
    token or other secret in its message
    (`tradeloom.runtime.redaction.register_secret` them).
    """

    def receive(self, offset: int, timeout: int) -> Sequence[ChatMessage]:
        """Return the messages whose id is at least ``offset``, in order, waiting up to
        ``timeout`` seconds for one (0: answer at once)."""
        ...

    def send(self, chat: str, text: str) -> None:
        """Send ``text`` to the conversation ``chat``."""
        ...
