"""Keys in the prompt: new lines, scrolling the conversation from the prompt, typing while it has focus,
and prompt history (Up/Down, Esc after a stop)."""

import pytest
from fakeserver import Reply
from tui_helpers import send_prompt, wait_for, wait_for_reply

from chatapp.config import load_settings
from chatapp.domain import Role
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.widgets.message import AssistantMessage
from chatapp.tui.widgets.prompt import PromptInput


@pytest.fixture
def service(isolated_env, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    return ChatService.open(load_settings())


def app_for(service, conversation_id=None):
    return ChatApp(service, service.target_for(None), conversation_id)


async def type_bytes(pilot, data):
    """Feed raw terminal input through Textual's own parser, as the terminal driver does."""
    from textual._xterm_parser import XTermParser

    parser = XTermParser()
    for event in [*parser.feed(data), *parser.feed("")]:
        pilot.app._driver.send_message(event)  # the way Pilot.press delivers its keys
    await pilot.pause(0.1)


async def test_alt_enter_from_a_legacy_terminal_inserts_a_new_line(service, fake_server):
    """xterm and tmux send alt+enter as ESC CR; it must not send the prompt."""
    async with app_for(service).run_test() as pilot:
        prompt = pilot.app.screen.query_one(PromptInput)
        prompt.focus()
        await type_bytes(pilot, "a\x1b\rb")
        assert prompt.text == "a\nb"
        await type_bytes(pilot, "\r")  # a plain Enter still sends
        await wait_for(lambda: len(fake_server.requests) >= 1, pilot)
    assert fake_server.requests[0].prompt == "a\nb"


async def test_kitty_protocol_shift_and_alt_enter_insert_new_lines(service, fake_server):
    async with app_for(service).run_test() as pilot:
        prompt = pilot.app.screen.query_one(PromptInput)
        prompt.focus()
        await type_bytes(pilot, "a\x1b[13;2ub\x1b[13;3uc")
        assert prompt.text == "a\nb\nc"
        assert "alt+enter" in prompt.placeholder and "shift+enter" not in prompt.placeholder
    assert fake_server.requests == []


def seeding_store():
    """A second connection to the service's database, to write history as an earlier run would have."""
    from chatapp.config import load_settings
    from chatapp.store.conversations import Store

    return Store.open(load_settings().paths.database)


def long_conversation(service, turns=30):
    conversation = service.new_conversation()
    store = seeding_store()
    for i in range(turns):
        store.add_message(conversation.id, Role.USER, f"question {i}")
        store.add_message(conversation.id, Role.ASSISTANT, f"answer {i}\n\nwith a second paragraph")
    store.close()
    return conversation.id


async def test_page_keys_scroll_the_conversation_from_the_prompt(service):
    async with app_for(service, long_conversation(service)).run_test(size=(80, 24)) as pilot:
        screen = pilot.app.screen
        messages = screen.message_list
        # Older messages wait unmounted above the first screens (behind a gap as tall as they are).
        await wait_for(lambda: messages.max_scroll_y > 20 and messages.scroll_y == messages.max_scroll_y, pilot)
        for _ in range(25):  # and laid out: the list's height stops changing
            height = messages.virtual_size.height
            await pilot.pause(0.2)
            if messages.virtual_size.height == height:
                break
        assert screen.focused is screen.query_one(PromptInput)
        bottom = messages.scroll_y
        await pilot.press("pageup")
        await wait_for(lambda: messages.scroll_y < bottom, pilot)
        await pilot.press("ctrl+home")
        await wait_for(lambda: messages.scroll_y == 0, pilot)
        await pilot.press("pagedown")
        await wait_for(lambda: messages.scroll_y > 0, pilot)
        await pilot.press("ctrl+end")
        await wait_for(lambda: messages.scroll_y == messages.max_scroll_y, pilot)
        assert screen.focused is screen.query_one(PromptInput)
        assert screen.query_one(PromptInput).text == ""


async def test_keys_typed_while_the_conversation_has_focus_go_to_the_prompt(service):
    async with app_for(service, long_conversation(service, 3)).run_test() as pilot:
        screen = pilot.app.screen
        screen.message_list.focus()
        await pilot.pause()
        await pilot.press("h", "i")
        prompt = screen.query_one(PromptInput)
        assert prompt.text == "hi"
        assert screen.focused is prompt


async def test_up_and_down_walk_earlier_prompts_in_an_empty_prompt(service, fake_server):
    fake_server.script(Reply("ok"), repeat=2)
    async with app_for(service).run_test() as pilot:
        screen = pilot.app.screen
        prompt = screen.query_one(PromptInput)
        for text in ("first question", "second\nquestion"):
            await send_prompt(pilot, text)
            await wait_for_reply(pilot)
        prompt.focus()
        await pilot.press("up")
        assert prompt.text == "second\nquestion"
        await pilot.press("up")
        assert prompt.text == "first question"
        await pilot.press("up")  # the oldest stays
        assert prompt.text == "first question"
        await pilot.press("down")
        assert prompt.text == "second\nquestion"
        await pilot.press("down")
        assert prompt.text == ""
        await pilot.press("x", "up")  # the user's own text: Up moves the cursor, nothing is replaced
        assert prompt.text == "x"


async def test_history_reaches_prompts_of_earlier_runs(service, isolated_env):
    conversation = service.new_conversation()
    store = seeding_store()
    store.add_message(conversation.id, Role.USER, "asked yesterday")
    store.close()
    async with app_for(service).run_test() as pilot:
        prompt = pilot.app.screen.query_one(PromptInput)
        await wait_for(lambda: len(prompt.earlier_prompts) == 1, pilot)
        await pilot.press("up")
        assert prompt.text == "asked yesterday"


async def test_escape_after_a_stop_gives_the_prompt_back(service, fake_server):
    fake_server.script(Reply(" ".join(f"word{i}" for i in range(300)), delay=0.05))
    async with app_for(service).run_test() as pilot:
        screen = pilot.app.screen
        await send_prompt(pilot, "a long\nquestion")
        await wait_for(lambda: screen.query(AssistantMessage) and
                       len(screen.query_one(AssistantMessage).text) > 10, pilot)
        await pilot.press("escape")
        await wait_for_reply(pilot)
        await pilot.pause(0.1)
        prompt = screen.query_one(PromptInput)
        assert prompt.text == ""
        assert "Esc" in screen.status.activity
        await pilot.press("escape")
        assert prompt.text == "a long\nquestion"
        assert screen.focused is prompt
        assert "stopped" in screen.query_one(AssistantMessage).note
