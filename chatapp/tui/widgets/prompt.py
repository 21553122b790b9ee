"""The multi-line prompt: Enter sends, ctrl+j (or alt+enter) inserts a new line, Up/Down walk history.

alt+enter is told apart from Enter under the kitty keyboard protocol and, with `terminal_keys`, from the
ESC+CR that other terminals send; shift+enter only under the kitty protocol (elsewhere it is Enter).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from chatapp.tui.terminal_keys import alt_enter_is_distinct
from chatapp.tui.widgets.prompt_history import PromptHistory

NEWLINE_KEYS = frozenset({"ctrl+j", "alt+enter", "shift+enter"})


def placeholder() -> str:
    newline = "alt+enter/ctrl+j" if alt_enter_is_distinct() else "ctrl+j"
    return f"Message  (Enter send · {newline} new line · ↑ earlier prompts · Esc stop)"


class PromptInput(TextArea):
    @dataclass
    class Submitted(Message):
        text: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.placeholder = placeholder()
        self.earlier_prompts = PromptHistory()

    def recall(self, text: str) -> None:
        """Show `text` (a history entry or a stopped prompt) with the cursor at its end."""
        self.load_text(text)
        self.move_cursor(self.document.end)

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            text = self.text
            if text.strip():
                self.post_message(self.Submitted(text))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key in ("up", "down"):
            history = self.earlier_prompts
            entry = history.older(self.text) if event.key == "up" else history.newer(self.text)
            if entry is not None:
                event.stop()
                event.prevent_default()
                self.recall(entry)
                return
        await super()._on_key(event)
