"""The browser's list: conversations and search hits, one line each, painted only where visible.

A Line-API widget: with 10,000 conversations there are 10,000 small row records and no widget per row;
only the lines in the viewport are turned into text (Textual's OptionList and DataTable measure every
row up front, which is what the browser must not do).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from chatapp.domain import Conversation, SearchHit
from chatapp.textsafe import visible


@dataclass(frozen=True, slots=True)
class Row:
    conversation: Conversation | None = None
    hit: SearchHit | None = None
    heading: str | None = None

    @property
    def conversation_id(self) -> str | None:
        if self.conversation is not None:
            return self.conversation.id
        return self.hit.conversation_id if self.hit is not None else None


class ConversationList(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "conversation-list--cursor", "conversation-list--muted", "conversation-list--hit",
        "conversation-list--heading",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False, id="list_up"),
        Binding("down", "cursor(1)", "Down", show=False, id="list_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="list_page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="list_page_down"),
        Binding("enter", "choose", "Open", id="open_conversation"),
    ]

    cursor = reactive(0, always_update=True)

    class Chosen(Message):
        def __init__(self, row: Row) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[Row] = []

    def set_rows(self, rows: list[Row]) -> None:
        self.rows = rows
        self.virtual_size = Size(self.size.width, len(rows))
        first = next((i for i, row in enumerate(rows) if row.heading is None), 0)
        self.cursor = first
        self.scroll_to(y=0, animate=False)
        self.refresh()

    @property
    def current(self) -> Row | None:
        if 0 <= self.cursor < len(self.rows) and self.rows[self.cursor].heading is None:
            return self.rows[self.cursor]
        return None

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()
        if self.rows and self.size.height:
            self.scroll_to_region(Region(0, new, 1, 1), animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        index = self.cursor + step
        while 0 <= index < len(self.rows) and self.rows[index].heading is not None:
            index += step
        if 0 <= index < len(self.rows):
            self.cursor = index

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 1))

    def action_choose(self) -> None:
        if self.current is not None:
            self.post_message(self.Chosen(self.current))

    def on_click(self, event: object) -> None:
        offset = getattr(event, "y", None)
        if offset is None:
            return
        index = int(offset) + int(self.scroll_offset.y)
        if 0 <= index < len(self.rows) and self.rows[index].heading is None:
            if index == self.cursor and getattr(event, "chain", 1) >= 2:
                self.action_choose()
            self.cursor = index

    def render_line(self, y: int) -> Strip:
        index = y + int(self.scroll_offset.y)
        width = self.size.width
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        text = self._row_text(row, width)
        if index == self.cursor:
            text.stylize(self.get_component_rich_style("conversation-list--cursor"))
        segments = list(text.render(self.app.console))
        return Strip(segments, text.cell_len).crop(0, width).extend_cell_length(width, self.rich_style)

    def _row_text(self, row: Row, width: int) -> Text:
        muted = self.get_component_rich_style("conversation-list--muted")
        if row.heading is not None:
            return Text(row.heading, style=self.get_component_rich_style("conversation-list--heading"), no_wrap=True)
        if row.hit is not None:
            return self._hit_text(row.hit, muted)
        conversation = row.conversation
        assert conversation is not None
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.updated))
        source = " · ".join(x for x in (conversation.provider, conversation.model) if x)
        right = f"  {when}  {source[:28]:<28} {conversation.message_count:>5} msgs"
        title_width = max(10, width - len(right) - 1)
        title = visible(" ".join(conversation.display_title.split()))
        if len(title) > title_width:
            title = title[: title_width - 1] + "…"
        line = Text(no_wrap=True)
        line.append(f" {title:<{title_width}}")
        line.append(right, style=muted)
        return line

    def _hit_text(self, hit: SearchHit, muted: Style) -> Text:
        highlight = self.get_component_rich_style("conversation-list--hit")
        line = Text(no_wrap=True)
        title = visible(" ".join((hit.title or "(untitled)").split()))[:32]
        line.append(f"   {title} ", style=muted)
        line.append(f"{hit.role}: ", style=muted)
        for piece, is_hit in hit.parts():
            line.append(visible(piece), style=highlight if is_hit else Style())
        return line

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows))
