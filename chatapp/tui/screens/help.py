"""F1: every key binding of chatapp, with its id (for `[keys]` in the config) and its current key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

_PROMPT_KEYS = [  # handled by the prompt itself, not bindings: they cannot be remapped
    ("enter", "Send the prompt"),
    ("ctrl+j / alt+enter", "New line in the prompt"),
]


@dataclass(frozen=True, slots=True)
class BindingRow:
    where: str
    key: str
    description: str
    binding_id: str


def _bindings(owner: type) -> list[Binding]:
    declared: Iterable[BindingType] = owner.__dict__.get("BINDINGS", ())
    return [b for b in declared if isinstance(b, Binding)]


def binding_rows(keymap: Mapping[str, str]) -> list[BindingRow]:
    """The bindings of every screen and widget chatapp defines, with `[keys]` remaps applied."""
    from chatapp.tui.screens.chat import ChatScreen
    from chatapp.tui.screens.choice import ChoiceScreen
    from chatapp.tui.screens.model_picker import ModelPicker
    from chatapp.tui.screens.stats import StatsScreen
    from chatapp.tui.screens.templates import TemplatePicker
    from chatapp.tui.widgets.message import AssistantMessage, UserMessage

    places: list[tuple[str, type]] = [
        ("chat", ChatScreen), ("a focused reply", AssistantMessage), ("a focused message of yours", UserMessage),
        ("model picker", ModelPicker), ("templates", TemplatePicker), ("stats", StatsScreen),
        ("question", ChoiceScreen), ("help", HelpScreen),
    ]
    rows = [BindingRow("prompt", key, description, "") for key, description in _PROMPT_KEYS]
    for where, owner in places:
        for binding in _bindings(owner):
            key = keymap.get(binding.id, binding.key) if binding.id else binding.key
            rows.append(BindingRow(where, key, binding.description or binding.action, binding.id or ""))
    rows.append(BindingRow("anywhere", "ctrl+p", "Command palette: every action, themes", ""))
    return rows


def binding_rows_for(screen: object, keymap: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(title, help, action) for the palette: the chat screen's actions and its messages' actions."""
    from chatapp.tui.screens.chat import ChatScreen
    from chatapp.tui.widgets.message import AssistantMessage, UserMessage

    if not isinstance(screen, ChatScreen):
        return []
    commands: dict[str, tuple[str, str, str]] = {}
    for owner in (ChatScreen, AssistantMessage, UserMessage):
        for binding in _bindings(owner):
            action = binding.action.removeprefix("screen.")
            if action.startswith("app.") or action in commands:
                continue
            key = keymap.get(binding.id, binding.key) if binding.id else binding.key
            where = "" if owner is ChatScreen else " (the focused or latest message)"
            commands[action] = (binding.description or action, f"{key} · id {binding.id}{where}", action)
    return list(commands.values())


class HelpScreen(ModalScreen[None]):
    CSS_PATH: ClassVar[list[str | PurePath]] = [Path(__file__).parent / "help.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close_help", "Close", id="close_help"),
    ]

    def __init__(self, keymap: Mapping[str, str]) -> None:
        super().__init__()
        self._keymap = keymap

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(Text("Keys  (remap any with an id in the config: [keys] id = \"key\")"),
                         classes="picker-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "id", "action", "where")
        for row in binding_rows(self._keymap):
            table.add_row(Text(row.key, style="bold"), Text(row.binding_id), Text(row.description), Text(row.where))
        table.focus()

    def action_close_help(self) -> None:
        self.dismiss(None)
