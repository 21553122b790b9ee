"""One widget per message in the conversation view. All text is shown through `visible()` as Rich Text
or Markdown renderables, never as a markup string."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Collapsible, Static

from chatapp.domain import MessageStatus
from chatapp.textsafe import visible
from chatapp.tui.widgets.message_view import MessageView

_STATUS_NOTES = {
    MessageStatus.CANCELLED: "stopped",
    MessageStatus.INCOMPLETE: "incomplete",
    MessageStatus.ERROR: "failed",
    MessageStatus.STREAMING: "streaming…",
}


class UserMessage(Static):
    def __init__(self, content: str, *, message_id: str | None = None) -> None:
        super().__init__(Text(visible(content)), classes="message user")
        self.message_id = message_id


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


class AssistantMessage(MessageView):
    """A reply: label row (provider · model), the Markdown text, a note when it did not complete."""

    def __init__(self, content: str = "", *, label: str = "", status: MessageStatus = MessageStatus.STREAMING,
                 error: str | None = None, message_id: str | None = None) -> None:
        super().__init__(content, streaming=status is MessageStatus.STREAMING, label=label,
                         classes="message assistant")
        self.message_id = message_id
        if status is not MessageStatus.STREAMING:
            self.set_status(status, error)

    def set_status(self, status: MessageStatus, error: str | None = None) -> None:
        if status is not MessageStatus.STREAMING:
            self.finish()
        note = _STATUS_NOTES.get(status, "")
        if error:
            note = f"{note}: {error}" if note else error
        self.set_note(note)
        self.set_class(status is MessageStatus.ERROR, "-error")
        self.set_class(status in (MessageStatus.CANCELLED, MessageStatus.INCOMPLETE), "-partial")
        self.restyle()


class SummaryMarker(Collapsible):
    """Where older turns are represented by a summary in what the model sees; expand to read it."""

    def __init__(self, text: str, covered: int) -> None:
        title = f"{covered} earlier message{'s' if covered != 1 else ''} summarized for the model (originals kept)"
        super().__init__(Static(Text(visible(text))), title=title, collapsed=True, classes="summary-marker")
