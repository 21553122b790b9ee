"""The template picker, mounted on its own in a tiny app and driven through the Pilot."""

from functools import partial

import pytest
import tui_helpers
from textual.app import App
from textual.widgets import Input, Label, OptionList, Select, Static

from chatapp.config import load_settings
from chatapp.domain import Role
from chatapp.service import ChatService
from chatapp.templates import AssignmentReason, RenderedPrompt
from chatapp.tui.screens.templates import TemplateChoice, TemplatePicker

# This file's pace; the chat-screen test below uses `tui_helpers.wait_for`'s defaults.
wait_for = partial(tui_helpers.wait_for, timeout=5.0, interval=0.02)

CONVERSATION = "conv-picker-test"

USER_TEMPLATE = '''
name = "tutor"
version = 1
role = "system"
description = "A patient tutor for {{subject}}"
text = "You teach {{subject}} at {{level}} level."

[variables.subject]
required = true
description = "what to teach"

[variables.level]
default = "beginner"
choices = ["beginner", "advanced"]
description = "how deep to go"
'''


@pytest.fixture
async def service(isolated_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never contacted: no turn is run
    isolated_env.templates_dir.mkdir(parents=True)
    (isolated_env.templates_dir / "tutor.toml").write_text(USER_TEMPLATE)
    service = ChatService.open(load_settings())
    yield service
    await service.aclose()


class Host(App[None]):
    """Pushes the picker at start and keeps what it dismisses with."""

    def __init__(self, service: ChatService, conversation_id: str = CONVERSATION) -> None:
        super().__init__()
        self.service = service
        self.conversation_id = conversation_id
        self.results: list[TemplateChoice | None] = []

    def on_mount(self) -> None:
        self.push_screen(TemplatePicker(self.service, self.conversation_id), self.results.append)


def listed(screen) -> list[str]:
    options = screen.query_one("#template-list", OptionList)
    return [options.get_option_at_index(i).id for i in range(options.option_count)]


async def opened(pilot) -> TemplatePicker:
    screen = pilot.app.screen
    assert isinstance(screen, TemplatePicker)
    await wait_for(lambda: listed(screen), pilot)
    return screen


async def choose(pilot, screen, name):
    screen.query_one("#template-filter", Input).value = name
    await wait_for(lambda: listed(screen)[:1] == [name], pilot)
    await pilot.press("enter")
    await wait_for(lambda: screen.query("#form-fields .field"), pilot)


def form_labels(screen) -> list[str]:
    return [str(label.render()).split(" ")[0] for label in screen.query("#form-fields .field-label").results(Label)]


def error_text(screen) -> str:
    error = screen.query_one("#form-error", Static)
    return str(error.render()) if error.display else ""


async def test_lists_builtins_and_user_templates_and_filters(service):
    async with Host(service).run_test(size=(100, 30)) as pilot:
        screen = await opened(pilot)
        names = listed(screen)
        assert {"concise", "code-reviewer", "translator", "summarizer", "tutor"} <= set(names)
        assert screen.query_one("#template-filter", Input).has_focus
        await pilot.press(*"lat")  # typed: only the translator has "lat" in its name or description
        assert listed(screen) == ["translator"]
        await pilot.press("down")
        assert screen.query_one("#template-list", OptionList).has_focus
        filter_input = screen.query_one("#template-filter", Input)
        filter_input.value = "patient tutor"  # words from the description, any case
        await pilot.pause()
        assert listed(screen) == ["tutor"]
        filter_input.value = "no-such-thing"
        await pilot.pause()
        assert listed(screen) == []
        assert "no template matches" in str(screen.query_one("#template-status", Static).render())
        filter_input.value = ""
        await pilot.pause()
        assert listed(screen) == names
        assert not screen.query_one("#template-problems", Static).display


async def test_translator_form_requires_values_then_renders(service):
    app = Host(service)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await opened(pilot)
        await choose(pilot, screen, "translator")
        assert form_labels(screen) == ["language", "text"]
        language, text = screen.query("#form-fields Input").results(Input)
        assert language.placeholder == "the target language, e.g. French"
        assert language.has_focus

        await pilot.press("enter")  # nothing filled in
        assert "'language'" in error_text(screen)
        assert app.results == []
        assert isinstance(pilot.app.screen, TemplatePicker)

        language.value = "French"
        await pilot.press("enter")
        assert "'text'" in error_text(screen)
        assert "'language'" not in error_text(screen)
        assert app.results == []

        text.value = "Good [b]morning[/b]"
        text.focus()
        await pilot.press("enter")
        await wait_for(lambda: app.results, pilot)
    [choice] = app.results
    assert isinstance(choice, TemplateChoice)
    assert isinstance(choice.prompt, RenderedPrompt)
    assert choice.prompt.role is Role.USER
    assert "French" in choice.prompt.text and "Good [b]morning[/b]" in choice.prompt.text
    assert choice.prompt.ref == "translator@1"
    assert choice.assignment.conversation_id == CONVERSATION
    assert choice.assignment.reason is AssignmentReason.LATEST


async def test_choices_become_a_select_prefilled_with_the_default(service):
    app = Host(service)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await opened(pilot)
        await choose(pilot, screen, "tutor")
        assert form_labels(screen) == ["subject", "level"]
        level = screen.query_one("#form-fields Select", Select)
        assert level.value == "beginner"
        level.value = "advanced"
        screen.query_one("#form-fields Input", Input).value = "chess"
        await pilot.click("#form-submit")
        await wait_for(lambda: app.results, pilot)
    [choice] = app.results
    assert choice.prompt.text == "You teach chess at advanced level."
    assert choice.prompt.role is Role.SYSTEM
    assert dict(choice.prompt.variables) == {"subject": "chess", "level": "advanced"}


async def test_the_form_follows_the_version_the_conversation_draws(service, isolated_env):
    folder = isolated_env.templates_dir
    (folder / "greet-1.toml").write_text('name = "greet"\nversion = 1\nrole = "user"\ntext = "Hi {{who}}"\n'
                                         '[variables.who]\nrequired = true\n')
    (folder / "greet-2.toml").write_text('name = "greet"\nversion = 2\nrole = "user"\ntext = "Hello {{name}}"\n'
                                         '[variables.name]\nrequired = true\n[ab]\nversions = [1, 2]\n')
    drawn = {service.templates.resolve_for("greet", f"c{i}").template.version: f"c{i}" for i in range(40)}
    app = Host(service, drawn[1])  # a conversation that draws the older version
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await opened(pilot)
        await choose(pilot, screen, "greet")
        assert form_labels(screen) == ["who"]
        assert "greet@1 · user · A/B" in str(screen.query_one("#form-title", Label).render())
        screen.query_one("#form-fields Input", Input).value = "Ann"
        await pilot.press("enter")
        await wait_for(lambda: app.results, pilot)
    [choice] = app.results
    assert choice.prompt.text == "Hi Ann"
    assert choice.assignment.reason is AssignmentReason.AB
    assert (choice.assignment.version, choice.assignment.conversation_id) == (1, drawn[1])


async def test_defaults_prefill_the_form_and_back_returns_to_the_list(service):
    app = Host(service)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await opened(pilot)
        await choose(pilot, screen, "code-reviewer")
        [focus] = screen.query("#form-fields Input").results(Input)
        assert focus.value.startswith("correctness")
        focus.value = "  "  # a blank optional field falls back to its default
        await pilot.press("enter")
        await wait_for(lambda: app.results, pilot)
        assert "Focus on correctness, security" in app.results.pop().prompt.text
        await app.push_screen(TemplatePicker(service, CONVERSATION), app.results.append)
        screen = await opened(pilot)
        await choose(pilot, screen, "code-reviewer")
        await pilot.click("#form-back")
        assert screen.query_one("#template-filter", Input).has_focus
        assert screen.query_one("#template-list", OptionList).display
        screen.query_one("#template-filter", Input).value = "concise"
        await wait_for(lambda: listed(screen) == ["concise"], pilot)
        await pilot.press("enter")
        await wait_for(lambda: screen.query("#form-fields .field-note"), pilot)
        await pilot.press("ctrl+s")
        await wait_for(lambda: app.results, pilot)
    assert app.results[0].prompt.name == "concise"


async def test_a_malformed_user_template_is_a_problem_line_not_a_crash(service, isolated_env):
    (isolated_env.templates_dir / "broken.toml").write_text('name = "broken"\nversion = \n')
    (isolated_env.templates_dir / "bad-placeholder.toml").write_text(
        'name = "oops"\nversion = 1\nrole = "user"\ntext = "hi {{ user.name }}"\n'
    )
    async with Host(service).run_test(size=(100, 30)) as pilot:
        screen = await opened(pilot)
        problems = screen.query_one("#template-problems", Static)
        await wait_for(lambda: problems.display, pilot)
        shown = str(problems.render())
        assert "2 template files skipped" in shown
        assert "broken.toml" in shown and "bad-placeholder.toml" in shown
        names = listed(screen)
        assert "broken" not in names and "oops" not in names
        assert {"concise", "translator", "tutor"} <= set(names)


async def test_escape_dismisses_with_none(service):
    app = Host(service)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.press("escape")
        await wait_for(lambda: app.results, pilot)
        assert app.results == [None]
        assert not isinstance(pilot.app.screen, TemplatePicker)


async def test_template_text_is_never_markup_and_escape_from_the_form_closes(service, isolated_env):
    (isolated_env.templates_dir / "markup.toml").write_text(
        'name = "markup"\nversion = 1\nrole = "user"\ndescription = "[@click=app.quit]x[/] \\u001b]52;c;aGk=\\u0007"\n'
        'text = "{{v}}"\n[variables.v]\nrequired = true\ndescription = "[/]"\n'
    )
    app = Host(service)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await opened(pilot)
        await choose(pilot, screen, "markup")
        options = screen.query_one("#template-list", OptionList)
        prompt = options.get_option("markup").prompt
        assert "[@click=app.quit]x[/]" in prompt.plain
        assert "\x1b" not in prompt.plain and "\u241b" in prompt.plain
        assert screen.query_one("#form-fields Input", Input).placeholder == "[/]"
        await pilot.press("escape")
        await wait_for(lambda: app.results, pilot)
    assert app.results == [None]


async def test_chat_screen_applies_a_persona_then_fills_a_user_template(isolated_env, fake_server, monkeypatch):
    """ctrl+t in the chat: a system template becomes the persona; a user template fills the prompt."""
    from chatapp.tui.app import ChatApp
    from chatapp.tui.screens.templates import TemplatePicker
    from chatapp.tui.widgets.prompt import PromptInput

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test(size=(100, 40)) as pilot:
        chat = pilot.app.screen
        for name in ("concise", "translator"):
            await pilot.press("ctrl+t")
            await tui_helpers.wait_for(lambda: isinstance(pilot.app.screen, TemplatePicker), pilot)
            picker = await opened(pilot)
            picker.query_one("#template-filter", Input).value = name
            await tui_helpers.wait_for(lambda p=picker, n=name: listed(p)[:1] == [n], pilot)
            await pilot.press("enter")
            await tui_helpers.wait_for(lambda p=picker: p.query("#form-fields .field, #form-fields .field-note"), pilot)
            if name == "translator":
                language, text = picker.query("#form-fields Input").results(Input)
                language.value = "French"
                text.value = "Good morning"
            await pilot.press("ctrl+s")
            await tui_helpers.wait_for(lambda: pilot.app.screen is chat, pilot)
        prompt = chat.query_one(PromptInput)
        assert "Good morning" in prompt.text and "French" in prompt.text
        await pilot.press("enter")
        await tui_helpers.wait_for(
            lambda: any(r.path.endswith("/chat/completions") for r in fake_server.requests), pilot
        )
    first = fake_server.requests[0].body["messages"]
    assert first[0]["role"] == "system" and "concise" in first[0]["content"].lower()
    assert "Good morning" in first[-1]["content"]


