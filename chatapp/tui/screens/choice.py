"""A small modal question with a few answers, e.g. "truncate the message, or cancel?"."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from chatapp.textsafe import visible


class ChoiceScreen(ModalScreen[str | None]):
    """Dismisses with the id of the chosen answer, or None on Escape."""

    CSS_PATH: ClassVar[list[str | PurePath]] = [Path(__file__).parent / "choice.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_choice", "Cancel", id="cancel_choice")]

    def __init__(self, question: str, answers: list[tuple[str, str]]) -> None:
        super().__init__()
        self._question = question
        self._answers = answers  # (id, label); the first is the default

    def compose(self) -> ComposeResult:
        with Vertical(id="choice"):
            yield Static(Text(visible(self._question)), id="question")
            with Horizontal(id="answers"):
                for index, (answer_id, label) in enumerate(self._answers):
                    yield Button(label, id=answer_id, variant="primary" if index == 0 else "default")

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_dismiss_choice(self) -> None:
        self.dismiss(None)
