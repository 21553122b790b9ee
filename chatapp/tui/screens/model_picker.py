"""Pick any provider and model: each provider with its state, the models it lists, typing filters.

Listings are fetched by the service in the background (short timeout, cached); the list is redrawn as
they arrive. A provider disabled after a refused key offers "re-enable" once the key is fixed.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from chatapp.domain import Target
from chatapp.textsafe import visible

if TYPE_CHECKING:
    from chatapp.service import ChatService
    from chatapp.service.model_catalog import ProviderEntry

_REENABLE = "reenable"
_MODEL = "model"


def option_id(kind: str, provider: str, model: str = "") -> str:
    return "\x1f".join((kind, provider, model))


def _header(entry: ProviderEntry) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(visible(entry.name), style="bold")
    text.append(f"  {entry.state}", style="italic" if entry.usable else "italic dim")
    if entry.detail:
        text.append(f" — {visible(entry.detail)}", style="dim")
    if entry.listing == "fetching":
        text.append("  · listing models…", style="dim")
    elif entry.listing == "failed" and entry.listing_error:
        text.append(f"  · no model list: {visible(entry.listing_error)}", style="dim")
    return text


def build_options(entries: list[ProviderEntry], query: str, current: Target | None) -> list[Option]:
    """One disabled header per provider, then its models that match `query` (any word, case-insensitive)."""
    words = query.lower().split()
    options: list[Option] = []
    for entry in entries:
        models = list(dict.fromkeys((entry.model, *entry.models)))
        matching = [m for m in models if all(w in f"{entry.name} {m}".lower() for w in words)]
        if words and not matching and not all(w in entry.name.lower() for w in words):
            continue
        options.append(Option(_header(entry), disabled=True))
        if entry.state == "disabled":
            options.append(Option(Text(f"  re-enable {visible(entry.name)} (after fixing its key)"),
                                  id=option_id(_REENABLE, entry.name)))
        if not entry.usable:
            continue
        for model in matching:
            label = Text(f"  {visible(model)}", no_wrap=True, overflow="ellipsis")
            if model == entry.model:
                label.append("  default", style="dim")
            if current is not None and current == Target(entry.name, model):
                label.append("  ● current", style="bold")
            options.append(Option(label, id=option_id(_MODEL, entry.name, model)))
    return options


class ModelPicker(ModalScreen[Target | None]):
    """Dismisses with the chosen provider and model, or None on Escape."""

    CSS_PATH: ClassVar[list[str | PurePath]] = [Path(__file__).parent / "model_picker.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close_picker", "Close", id="close_picker"),
        Binding("down", "cursor(1)", "Next", id="picker_next", show=False),
        Binding("up", "cursor(-1)", "Previous", id="picker_previous", show=False),
        Binding("ctrl+r", "refresh_models", "Refresh lists", id="refresh_models"),
    ]

    def __init__(self, service: ChatService, current: Target | None, *, title: str = "Provider and model") -> None:
        super().__init__()
        self.service = service
        self.current = current
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(id="model-picker"):
            yield Static(Text(self._title), classes="picker-title")
            yield Input(placeholder="type to filter providers and models", id="model-filter")
            yield OptionList(id="model-list")
            yield Static(Text("Enter: use it for this conversation · Esc: close"), id="model-help")

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#model-list", OptionList)

    def on_mount(self) -> None:
        self.query_one("#model-filter", Input).focus()
        self.redraw()
        self._fetch()

    @work(exclusive=True, group="model-listing", name="model-listing", exit_on_error=False)
    async def _fetch(self, force: bool = False) -> None:
        self.service.refresh_models(force=force)
        self.redraw()
        await self.service.discover_servers()
        self.service.refresh_models()
        self.redraw()
        await self.service.wait_models()
        self.redraw()

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        options = self.option_list
        highlighted = options.highlighted_option.id if options.highlighted_option else None
        query = self.query_one("#model-filter", Input).value
        options.clear_options()
        options.add_options(build_options(self.service.model_entries(), query, self.current))
        ids = [option.id for option in options.options]
        wanted = highlighted or (option_id(_MODEL, self.current.provider, self.current.model)
                                 if self.current else None)
        if wanted in ids:
            options.highlighted = ids.index(wanted)
        else:
            options.highlighted = next((i for i, o in enumerate(options.options) if not o.disabled), None)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        options = self.option_list
        options.highlighted = None
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        option = self.option_list.highlighted_option
        if option is not None and option.id:
            self._choose(option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self._choose(event.option.id)

    def _choose(self, chosen: str) -> None:
        kind, provider, model = chosen.split("\x1f")
        if kind == _REENABLE:
            self.service.reenable_provider(provider)
            self.notify(f"{provider} is back in service.")
            self._fetch(force=True)
            return
        self.dismiss(Target(provider, model))

    def action_cursor(self, step: int) -> None:
        options = self.option_list
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_refresh_models(self) -> None:
        self._fetch(force=True)

    def action_close_picker(self) -> None:
        self.dismiss(None)
