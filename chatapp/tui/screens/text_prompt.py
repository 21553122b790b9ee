"""A small modal asking for one line of text (a new title); dismisses with the text, or None on Escape."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from chatapp.textsafe import visible


class TextPromptScreen(ModalScreen[str | None]):
    CSS_PATH: ClassVar[list[str | PurePath]] = [Path(__file__).parent / "choice.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="cancel_text_prompt")]

    def __init__(self, question: str, initial: str = "") -> None:
        super().__init__()
        self._question = question
        self._initial = initial

    def compose(self) -> ComposeResult:
        with Vertical(id="choice"):
            yield Static(Text(visible(self._question)), id="question")
            yield Input(visible(self._initial), id="answer")

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
