"""The conversation browser: newest first; typing filters titles and searches every message (FTS5);
Enter opens a conversation (at the matching message for a search hit); rename; delete after confirming."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from chatapp.domain import Conversation
from chatapp.service import ChatService
from chatapp.textsafe import visible
from chatapp.tui.screens.choice import ChoiceScreen
from chatapp.tui.screens.text_prompt import TextPromptScreen
from chatapp.tui.widgets.conversation_list import ConversationList, Row

SEARCH_DELAY = 0.15  # seconds of no typing before the full-text search runs


@dataclass(frozen=True, slots=True)
class OpenRequest:
    conversation_id: str
    message_id: str | None = None  # scroll to this message (a search hit)


class ConversationsScreen(ModalScreen[OpenRequest | None]):
    CSS_PATH: ClassVar[list[str | PurePath]] = [Path(__file__).parent / "conversations.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="close_conversations"),
        Binding("ctrl+r", "rename", "Rename", id="rename_conversation"),
        Binding("ctrl+d", "delete", "Delete", id="delete_conversation"),
        Binding("down", "focus_list", "List", show=False, id="focus_list"),
    ]

    def __init__(self, service: ChatService) -> None:
        super().__init__()
        self.service = service
        self._all: list[Conversation] = []
        # Made once per reload, not per keystroke: with 10,000 conversations, folding every title and
        # making every row again cost tens of milliseconds a key.
        self._rows: list[tuple[str, Row]] = []  # (folded title, its row)
        self._search_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="browser"):
            yield Input(placeholder="Type to filter titles and search every message", id="filter")
            yield Static("", id="browser-summary")
            yield ConversationList(id="conversation-list")
        yield Footer()

    @property
    def listing(self) -> ConversationList:
        return self.query_one(ConversationList)

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#filter", Input).focus()

    def reload(self) -> None:
        self._all = self.service.conversations()
        self._rows = [(c.display_title.casefold(), Row(conversation=c)) for c in self._all]
        self._show(self.query_one("#filter", Input).value, hits=None)
        if self.query_one("#filter", Input).value.strip():
            self._search_now()

    def _show(self, text: str, hits: list[Row] | None) -> None:
        needle = text.casefold().strip()
        rows = [row for folded, row in self._rows if needle in folded] if needle else [row for _, row in self._rows]
        matching = len(rows)
        if hits:
            rows.append(Row(heading=f" Messages containing “{visible(text.strip())}”"))
            rows.extend(hits)
        self.listing.set_rows(rows)
        total = len(self._all)
        noun = "conversation" if total == 1 else "conversations"
        summary = f"{matching:,} of {total:,} {noun}" if needle else f"{total:,} {noun}"
        if hits is not None:
            summary += f" · {len(hits)} matching message{'s' if len(hits) != 1 else ''}"
        self.query_one("#browser-summary", Static).update(summary)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show(event.value, hits=None)
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DELAY, self._search_now) if event.value.strip() else None

    def _search_now(self) -> None:
        self._search_timer = None
        text = self.query_one("#filter", Input).value
        if not text.strip():
            return
        try:
            found = self.service.search(text)
        except Exception as exc:  # a damaged page or a held lock: one line in place of the hits
            line = self.service.store_failure(exc)
            if line is None:
                raise
            self._show(text, hits=None)
            self.query_one("#browser-summary", Static).update(Text(visible(line)))
            return
        self._show(text, hits=[Row(hit=hit) for hit in found])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self._search_timer is not None:  # Enter came before the typing pause that starts the search
            self._search_timer.stop()
            self._search_now()
        self.listing.action_choose()

    def action_focus_list(self) -> None:
        self.listing.focus()

    def on_conversation_list_chosen(self, event: ConversationList.Chosen) -> None:
        row = event.row
        if row.hit is not None:
            self.dismiss(OpenRequest(row.hit.conversation_id, row.hit.message_id))
        elif row.conversation is not None:
            self.dismiss(OpenRequest(row.conversation.id))

    def action_close(self) -> None:
        self.dismiss(None)

    def _selected(self) -> Conversation | None:
        row = self.listing.current
        conversation_id = row.conversation_id if row else None
        return next((c for c in self._all if c.id == conversation_id), None)

    def action_rename(self) -> None:
        conversation = self._selected()
        if conversation is None:
            return

        def renamed(title: str | None) -> None:
            if title and title.strip():
                self.service.rename_conversation(conversation.id, title)
                self.reload()

        self.app.push_screen(TextPromptScreen("New title:", conversation.display_title), renamed)

    def action_delete(self) -> None:
        conversation = self._selected()
        if conversation is None:
            return
        question = (f"Delete “{conversation.display_title}” and its {conversation.message_count} messages? "
                    "The text is erased from the database file; this cannot be undone.")

        def answered(choice: str | None) -> None:
            if choice == "delete":
                self.service.delete_conversation(conversation.id)
                self.notify(f"Deleted “{visible(conversation.display_title)}”.")
                self.reload()

        self.app.push_screen(ChoiceScreen(question, [("cancel", "Keep it"), ("delete", "Delete")]), answered)
