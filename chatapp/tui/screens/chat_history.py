"""The widgets for a saved conversation's current branch: a "2/3" marker before each message that has
alternatives, a reply shown once with how often it restarted, the summary marker where it applies."""

from __future__ import annotations

from collections.abc import Callable

from textual.widget import Widget

from chatapp.domain import Message, MessageStatus, Role
from chatapp.service import SummaryRow
from chatapp.textsafe import visible
from chatapp.tui.widgets.block_rows import wrapped_rows
from chatapp.tui.widgets.message import AssistantMessage, BranchMarker, SummaryMarker, UserMessage, status_note
from chatapp.tui.widgets.message_pieces import LineLengths
from chatapp.tui.widgets.message_view import unsplit_rows

Shown = tuple[Message, int]  # a message on the path, and how often the reply restarted before it


class DeferredMessage:
    """A saved message as data until the message list builds its widget (when the user scrolls near it):
    a long conversation opens without building a thousand widgets, ~60 objects each."""

    __slots__ = ("_lengths", "_rows", "hit", "message", "restarts", "widget", "widget_type")

    def __init__(self, message: Message, restarts: int = 0) -> None:
        self.message = message
        self.restarts = restarts
        self.widget_type: type[Widget] = UserMessage if message.role is Role.USER else AssistantMessage
        self.widget: Widget | None = None
        self.hit = False  # the search hit the conversation opens at
        self._lengths: LineLengths | None = None
        self._rows = (-1, 0)  # width, rows: a resize and the gap's next layout ask for the same width

    @property
    def message_id(self) -> str:
        return self.message.id

    def build(self) -> Widget:
        widget = message_widget(self.message, self.restarts)
        if self.hit:
            widget.add_class("-hit")
        return widget

    def estimated_rows(self, width: int) -> int:
        """Rows at `width` as the widget would estimate them unmounted (a label, the text, a note)."""
        cached_width, rows = self._rows
        if cached_width == width:
            return rows
        message = self.message
        if message.role is Role.USER:
            rows = wrapped_rows(visible(message.content), width)
        else:
            if self._lengths is None:
                self._lengths = LineLengths(message.content)
            label = reply_label(message.provider or "", message.model or "", self.restarts)
            rows = unsplit_rows(label, self._lengths, status_note(message.status, message.error), width)
        self._rows = (width, rows)
        return rows


def message_widgets(shown: list[Shown], counts: dict[str | None, int], siblings_of: Callable[[str], list[Message]],
                    summary: SummaryRow | None, summary_position: int | None) -> list[Widget | DeferredMessage]:
    """Entries for a run of messages on the path (the messages as data, built when seen): a "2/3" marker
    before each message with alternatives, the summary marker after the message it ends at
    (`summary_position`: that message's place on the path)."""
    widgets: list[Widget | DeferredMessage] = []
    for message, restarts in shown:
        count = counts.get(message.parent_id, 0)
        if count > 1:
            ids = [m.id for m in siblings_of(message.id)]
            widgets.append(BranchMarker(message.id, ids.index(message.id) + 1, count))
        widgets.append(DeferredMessage(message, restarts))
        if summary is not None and summary_position is not None and message.id == summary.last_message_id:
            widgets.append(SummaryMarker(summary.content, summary_position))
    return widgets


def message_widget(message: Message, restarts: int = 0) -> UserMessage | AssistantMessage:
    if message.role is Role.USER:
        return UserMessage(message.content, message_id=message.id)
    label = reply_label(message.provider or "", message.model or "", restarts)
    return AssistantMessage(message.content, label=label, status=message.status, error=message.error,
                            message_id=message.id)


def reply_label(provider: str, model: str, restarts: int) -> str:
    label = " · ".join(x for x in (provider, model) if x)
    return f"{label} · restarted {restarts}×" if restarts else label


def collapse_restarts(messages: list[Message]) -> list[Shown]:
    """Consecutive replies to one prompt are a reply and its broken earlier attempts (kept in the store):
    show the last, with how often it restarted."""
    shown: list[Shown] = []
    for message in messages:
        if (message.role is Role.ASSISTANT and shown and shown[-1][0].role is Role.ASSISTANT
                and shown[-1][0].status is MessageStatus.INCOMPLETE):
            shown[-1] = (message, shown[-1][1] + 1)
        else:
            shown.append((message, 0))
    return shown
