"""What `ChatScreen` provides to the mixins that hold parts of its work (`ChatActions`, `ReplyStreaming`):
declared once here for the type checker; at run time this is a plain base class."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.screen import Screen

    from chatapp.domain import Target
    from chatapp.service import ChatService
    from chatapp.tui.widgets.message import UserMessage
    from chatapp.tui.widgets.message_list import MessageList

    _ScreenBase = Screen[None]
else:
    _ScreenBase = object


class ChatScreenParts(_ScreenBase):
    if TYPE_CHECKING:  # provided by ChatScreen
        service: ChatService
        target: Target | None
        conversation_id: str | None
        editing: UserMessage | None  # an earlier message being edited: Enter resends it

        @property
        def message_list(self) -> MessageList: ...
