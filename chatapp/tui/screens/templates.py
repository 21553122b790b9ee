"""The template picker: choose a prompt template, fill in its variables, get the rendered prompt back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, ContentSwitcher, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from chatapp.textsafe import visible

if TYPE_CHECKING:
    from chatapp.service import Assignment, ChatService, Problem, RenderedPrompt, Template


@dataclass(frozen=True)
class TemplateChoice:
    """What the picker returns: the rendered prompt and the version assignment to record."""

    prompt: RenderedPrompt
    assignment: Assignment


def matches(template: Template, query: str) -> bool:
    """Every word of the query appears in the template's name, ref or description (case-insensitive)."""
    haystack = f"{template.ref} {template.description}".casefold()
    return all(word in haystack for word in query.casefold().split())


def _option_text(template: Template) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(visible(template.ref), style="bold")
    text.append(f"  {template.role.value}", style="dim")
    if template.description:
        text.append(f"  {visible(template.description)}")
    return text


def _problems_text(problems: tuple[Problem, ...], user_dir: Path) -> Text:
    plural = "s" if len(problems) > 1 else ""
    lines = [f"{len(problems)} template file{plural} skipped:"]
    for problem in problems:
        where = problem.path.relative_to(user_dir) if problem.path.is_relative_to(user_dir) else problem.path
        lines.append(f"  {where}: {problem.message}")
    return Text(visible("\n".join(lines)))


class TemplatePicker(ModalScreen[TemplateChoice | None]):
    """Dismisses with a TemplateChoice, or None on Escape."""

    CSS_PATH: ClassVar[list[str | PurePath]] = [Path(__file__).parent / "templates.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_picker", "Close", id="close_picker"),
        Binding("down", "focus_list", "Templates", id="picker_focus_list", show=False),
        Binding("ctrl+s", "submit_form", "Use template", id="submit_template", show=False),
    ]

    def __init__(self, service: ChatService, conversation_id: str) -> None:
        super().__init__()
        self.service = service
        self.conversation_id = conversation_id
        self._templates: list[Template] = []
        self._chosen: Template | None = None
        self._fields: dict[str, Input | Select[str]] = {}
        self._page = "choose"

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"), ContentSwitcher(initial="choose", id="picker-pages"):
            with Vertical(id="choose"):
                yield Label(Text("Prompt templates"), classes="picker-title")
                yield Input(placeholder="filter by name or description", id="template-filter")
                yield OptionList(id="template-list", markup=False)
                yield Static(Text("loading templates…"), id="template-status")
                yield Static(id="template-problems")
            with Vertical(id="form"):
                yield Label(id="form-title", classes="picker-title")
                yield Static(id="form-description")
                yield VerticalScroll(id="form-fields")
                yield Static(id="form-error")
                with Horizontal(id="form-buttons"):
                    yield Button("Back", id="form-back")
                    yield Button("Use template", id="form-submit", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#template-problems", Static).display = False
        self.query_one("#form-error", Static).display = False
        self.query_one("#template-filter", Input).focus()
        self._load()

    # --- loading -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="templates", name="load-templates", exit_on_error=False)
    def _load(self) -> None:
        """Read the library (file IO and TOML parsing) off the event loop; edits on disk show on each open."""
        library = self.service.templates
        library.reload()
        templates = library.list()
        problems = library.problems
        self.app.call_from_thread(self._show_library, templates, problems)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "templates" and event.state is WorkerState.ERROR:
            error = event.worker.error
            self._set_status(f"could not read the templates: {type(error).__name__}: {error}")

    def _show_library(self, templates: list[Template], problems: tuple[Problem, ...]) -> None:
        self._templates = templates
        if problems:
            box = self.query_one("#template-problems", Static)
            box.update(_problems_text(problems, self.service.settings.paths.templates_dir))
            box.display = True
        self._apply_filter(self.query_one("#template-filter", Input).value)

    # --- the list ------------------------------------------------------------------------------

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#template-list", OptionList)

    def _set_status(self, message: str) -> None:
        status = self.query_one("#template-status", Static)
        status.update(Text(visible(message)))
        status.display = bool(message)

    def _apply_filter(self, query: str) -> None:
        shown = [t for t in self._templates if matches(t, query)]
        options = self.option_list
        options.clear_options()
        options.add_options(Option(_option_text(t), id=t.name) for t in shown)
        if shown:
            options.highlighted = 0
            self._set_status("")
        elif self._templates:
            self._set_status(f"no template matches {query.strip()!r}")
        else:
            self._set_status(f"no templates found (add *.toml files to {self.service.settings.paths.templates_dir})")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "template-filter":
            self._apply_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "template-filter":
            options = self.option_list
            if options.highlighted is not None:
                self._choose(options.get_option_at_index(options.highlighted).id)
        else:
            self.action_submit_form()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option.id)

    def _choose(self, name: str | None) -> None:
        from chatapp.service import TemplateError

        if name is None:
            return
        try:
            template, assignment = self.service.templates.resolve_for(name, self.conversation_id)
        except TemplateError as exc:
            self._set_status(str(exc))
            return
        self._show_form(template, ab=assignment.reason.value == "ab")

    # --- the form ------------------------------------------------------------------------------

    def _show_form(self, template: Template, *, ab: bool) -> None:
        """One field per variable, prefilled with its default; a Select where it declares choices."""
        self._chosen = template
        title = f"{template.ref} · {template.role.value}" + (" · A/B" if ab else "")
        self.query_one("#form-title", Label).update(Text(visible(title)))
        self.query_one("#form-description", Static).update(Text(visible(template.description)))
        self._set_error("")
        fields = self.query_one("#form-fields", VerticalScroll)
        fields.remove_children()
        self._fields = {}
        widgets: list[Widget] = []
        for variable in template.variables:
            label = Text(visible(variable.name))
            if variable.required:
                label.append(" (required)", style="dim")
            widgets.append(Label(label, classes="field-label"))
            field: Input | Select[str]
            if variable.choices:
                field = Select(
                    [(Text(visible(choice)), choice) for choice in variable.choices],
                    value=variable.default if variable.default in variable.choices else Select.NULL,
                    allow_blank=variable.default is None,
                    prompt=visible(variable.description) or "choose…",
                    classes="field",
                )
            else:
                field = Input(value=variable.default or "", placeholder=visible(variable.description), classes="field")
            self._fields[variable.name] = field
            widgets.append(field)
        if not template.variables:
            widgets.append(Static(Text("This template takes no variables."), classes="field-note"))
        fields.mount_all(widgets)
        self._show_page("form")
        first = next(iter(self._fields.values()), None)
        (first or self.query_one("#form-submit", Button)).focus()

    def _set_error(self, message: str) -> None:
        error = self.query_one("#form-error", Static)
        error.update(Text(visible(message)))
        error.display = bool(message)

    def _values(self) -> dict[str, str]:
        """The form's values; a blank optional field or an empty Select is left out, so its default applies."""
        assert self._chosen is not None
        values: dict[str, str] = {}
        for name, field in self._fields.items():
            value = field.value
            if not isinstance(value, str):
                continue
            variable = self._chosen.variable(name)
            if not value.strip() and variable is not None and not variable.required:
                continue
            values[name] = value
        return values

    def action_submit_form(self) -> None:
        """Render the chosen template; a TemplateError stays in the form as one line."""
        from chatapp.service import TemplateError

        if self._chosen is None or self._page != "form":
            return
        try:
            prompt, assignment = self.service.render_template(self._chosen.name, self._values(), self.conversation_id)
        except TemplateError as exc:
            self._set_error(str(exc))
            return
        self.dismiss(TemplateChoice(prompt, assignment))

    def _back_to_list(self) -> None:
        self._chosen = None
        self._show_page("choose")
        self.query_one("#template-filter", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "form-submit":
            self.action_submit_form()
        elif event.button.id == "form-back":
            self._back_to_list()

    # --- actions -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "focus_list":
            return self._page == "choose"
        if action == "submit_form":
            return self._page == "form"
        return True

    def _show_page(self, page: str) -> None:
        self._page = page
        self.query_one("#picker-pages", ContentSwitcher).current = page

    def action_focus_list(self) -> None:
        self.option_list.focus()

    def action_dismiss_picker(self) -> None:
        self.dismiss(None)
