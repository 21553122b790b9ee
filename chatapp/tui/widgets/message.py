"""One widget per message in the conversation view. All text is shown through `visible()` as Rich Text
or Markdown renderables, never as a markup string."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Collapsible, Static

from chatapp.domain import MessageStatus
from chatapp.textsafe import visible
from chatapp.tui.widgets.block_rows import wrapped_rows
from chatapp.tui.widgets.message_view import MessageView

_STATUS_NOTES = {
    MessageStatus.CANCELLED: "stopped",
    MessageStatus.INCOMPLETE: "incomplete",
    MessageStatus.ERROR: "failed",
    MessageStatus.STREAMING: "streaming…",
    MessageStatus.TRUNCATED: "truncated",
    MessageStatus.FILTERED: "filtered",
}

def status_note(status: MessageStatus, error: str | None = None) -> str:
    """The line under a reply that did not complete (stopped, failed: why), or empty."""
    note = _STATUS_NOTES.get(status, "")
    if error:
        note = f"{note}: {error}" if note else error
    return note


# The actions live on the chat screen (they need the service); a focused message only offers them.
_COPY_BINDINGS: list[BindingType] = [
    Binding("c", "screen.copy_message", "Copy", id="copy_message"),
]


class UserMessage(Static, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        *_COPY_BINDINGS,
        Binding("e", "screen.edit_message", "Edit & resend", id="edit_message"),
    ]

    def __init__(self, content: str, *, message_id: str | None = None) -> None:
        super().__init__(Text(visible(content)), classes="message user")
        self.raw_text = content  # as typed, for copy and edit
        self.message_id = message_id

    def estimated_rows(self, width: int) -> int:
        return wrapped_rows(visible(self.raw_text), width)


class BranchMarker(Static):
    """Above a message that has alternatives (a regenerated reply, an edited prompt): "2/3" and the keys."""

    def __init__(self, message_id: str, position: int, count: int) -> None:
        super().__init__(Text(f"‹ {position}/{count} ›  alt+← / alt+→ for the other versions"),
                         classes="branch-marker")
        self.message_id = message_id


class NoticeMessage(Static):
    """Errors, retries, fallbacks and the welcome text: shown in the conversation, not stored as replies."""

    def __init__(self, text: str, *, error: bool = False) -> None:
        super().__init__(Text(visible(text)), classes="notice error" if error else "notice")


class AssistantMessage(MessageView, can_focus=True):
    """A reply: label row (provider · model), the Markdown text, a note when it did not complete."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *_COPY_BINDINGS,
        Binding("k", "screen.copy_code", "Copy code", id="copy_code"),
        Binding("r", "screen.regenerate", "Regenerate", id="regenerate"),
        Binding("R", "screen.regenerate_on", "Regenerate on…", id="regenerate_on"),
        Binding("n", "screen.continue_reply", "Continue", id="continue_reply"),
    ]

    def __init__(self, content: str = "", *, label: str = "", status: MessageStatus = MessageStatus.STREAMING,
                 error: str | None = None, message_id: str | None = None) -> None:
        super().__init__(content, streaming=status is MessageStatus.STREAMING, label=label,
                         classes="message assistant")
        self.message_id = message_id
        self.status = status
        if status is not MessageStatus.STREAMING:
            self.set_status(status, error)

    @property
    def raw_text(self) -> str:
        """The reply as received (not as rendered), for copy."""
        return self.text

    def set_status(self, status: MessageStatus, error: str | None = None) -> None:
        self.status = status
        if status is not MessageStatus.STREAMING:
            self.finish()
        self.set_note(status_note(status, error))
        self.set_class(status is MessageStatus.ERROR, "-error")
        self.set_class(status in (MessageStatus.CANCELLED, MessageStatus.INCOMPLETE, MessageStatus.TRUNCATED,
                                  MessageStatus.FILTERED), "-partial")
        self.restyle()


class SummaryMarker(Collapsible):
    """Where older turns are represented by a summary in what the model sees; expand to read it."""

    def __init__(self, text: str, covered: int) -> None:
        title = f"{covered} earlier message{'s' if covered != 1 else ''} summarized for the model (originals kept)"
        super().__init__(Static(Text(visible(text))), title=title, collapsed=True, classes="summary-marker")
