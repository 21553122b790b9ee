"""The widgets for a saved conversation's current branch: a "2/3" marker before each message that has
alternatives, a reply shown once with how often it restarted, the summary marker where it applies."""

from __future__ import annotations

from collections.abc import Callable

from textual.widget import Widget

from chatapp.domain import Message, MessageStatus, Role
from chatapp.service import SummaryRow
from chatapp.tui.widgets.message import AssistantMessage, BranchMarker, SummaryMarker, UserMessage

Shown = tuple[Message, int]  # a message on the path, and how often the reply restarted before it


def message_widgets(shown: list[Shown], counts: dict[str | None, int], siblings_of: Callable[[str], list[Message]],
                    summary: SummaryRow | None, summary_position: int | None) -> list[Widget]:
    """Widgets for a run of messages on the path: a "2/3" marker before each message with alternatives, the
    summary marker after the message it ends at (`summary_position`: that message's place on the path)."""
    widgets: list[Widget] = []
    for message, restarts in shown:
        count = counts.get(message.parent_id, 0)
        if count > 1:
            ids = [m.id for m in siblings_of(message.id)]
            widgets.append(BranchMarker(message.id, ids.index(message.id) + 1, count))
        widgets.append(message_widget(message, restarts))
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
