"""A reply's life on the chat screen: waiting before the first token, ctrl+n while it streams, a flaky
stream restarting in place."""

import pytest
from fakeserver import Reply
from tui_helpers import send_prompt, wait_for, wait_for_reply

from chatapp.config import load_settings
from chatapp.domain import MessageStatus, Role
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.widgets.message import AssistantMessage, NoticeMessage, UserMessage


@pytest.fixture
def service(isolated_env, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    return ChatService.open(load_settings())


def reopened():
    from chatapp.store.conversations import Store

    return Store.open(load_settings().paths.database)


def app_for(service):
    return ChatApp(service, service.target_for(None))


async def test_status_says_waiting_until_the_first_token(service, fake_server):
    fake_server.script(Reply("late but here", latency=3.0, delay=0.02))
    async with app_for(service).run_test() as pilot:
        screen = pilot.app.screen
        await send_prompt(pilot, "hello")
        await wait_for(lambda: screen.query(AssistantMessage) and
                       screen.query_one(AssistantMessage).message_id is not None, pilot)
        await wait_for(lambda: len(fake_server.requests) == 1, pilot)
        await pilot.pause(0.3)  # the request is out, the server is silent
        assert screen.query_one(AssistantMessage).text == ""
        assert screen.status.activity == "waiting"
        await wait_for(lambda: screen.query_one(AssistantMessage).text, pilot)
        assert screen.status.activity in ("streaming", "")
        await wait_for_reply(pilot)
        assert screen.status.activity == ""


async def test_the_footer_shows_quit_and_compress(service):
    async with app_for(service).run_test(size=(120, 30)) as pilot:
        await pilot.pause(0.1)
        shown = {binding.description for _, binding, enabled, _ in pilot.app.screen.active_bindings.values()
                 if binding.show}
        assert {"Quit", "Compress", "New chat", "Stop reply"} <= shown


async def test_ctrl_n_while_streaming_lets_the_reply_finish_into_its_conversation(service, fake_server):
    words = " ".join(f"word{i}" for i in range(60))
    fake_server.script(Reply(words, delay=0.03))
    async with app_for(service).run_test() as pilot:
        screen = pilot.app.screen
        await send_prompt(pilot, "a long one")
        await wait_for(lambda: screen.query(AssistantMessage) and
                       "word3" in screen.query_one(AssistantMessage).text, pilot)
        first = screen.conversation_id
        await pilot.press("ctrl+n")
        await pilot.pause(0.1)
        assert screen.conversation_id is None and not screen.query(AssistantMessage)
        store = reopened()
        await wait_for(lambda: store.messages(first)[-1].status is not MessageStatus.STREAMING, pilot, timeout=30)
        reply = store.messages(first)[-1]
        assert reply.status is MessageStatus.COMPLETE and reply.content == words
        assert not screen.query(AssistantMessage)  # the new conversation stays empty
        screen.load_conversation(first)  # and the old one reopens with the whole reply
        await pilot.pause(0.1)
        assert screen.query_one(AssistantMessage).text.strip() == words


async def test_a_flaky_stream_restarts_in_place_and_keeps_its_attempts(service, fake_server):
    text = " ".join(f"w{i}" for i in range(80))
    fake_server.script(Reply(text, cut_after=40), repeat=2)
    fake_server.script(Reply(text))
    async with app_for(service).run_test(size=(100, 40)) as pilot:
        screen = pilot.app.screen
        await send_prompt(pilot, "tell me")
        await wait_for_reply(pilot, timeout=60)
        await pilot.pause(0.1)
        [view] = screen.query(AssistantMessage)
        assert view.text.strip() == text
        assert "restarted 2×" in view.label
        [notice] = screen.query(NoticeMessage)  # the latest retry notice, not one per attempt
        assert "retrying" in str(notice.render())
        conversation_id = screen.conversation_id
        screen.load_conversation(conversation_id)  # reopened: still one reply, not a stack
        await pilot.pause(0.1)
        [view] = screen.query(AssistantMessage)
        assert "restarted 2×" in view.label
        assert len(screen.query(UserMessage)) == 1
    replies = [m for m in reopened().messages(conversation_id) if m.role is Role.ASSISTANT]
    assert [m.status for m in replies] == [MessageStatus.INCOMPLETE, MessageStatus.INCOMPLETE,
                                           MessageStatus.COMPLETE]
    assert all(m.content for m in replies[:2])
