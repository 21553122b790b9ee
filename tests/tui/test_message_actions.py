"""Actions on messages: regenerate (same or another provider), edit and resend, copy, continue, filter marks."""

import base64

import pytest
from fakeserver import FakeServer, Reply
from test_provider_switch import chat_prompts, finish_turn, two_providers
from textual.drivers.headless_driver import HeadlessDriver
from textual.widgets import Input
from tui_helpers import wait_for

from chatapp.config import load_settings
from chatapp.domain import MessageStatus, Role
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.screens.model_picker import ModelPicker
from chatapp.tui.widgets.message import AssistantMessage, UserMessage
from chatapp.tui.widgets.prompt import PromptInput


@pytest.fixture
def second_server():
    with FakeServer() as server:
        yield server
    assert not server.errors


@pytest.fixture
def service(isolated_env, fake_server, second_server):
    two_providers(isolated_env, fake_server.openai_base_url, second_server.anthropic_base_url)
    return ChatService.open(load_settings())


def turns(server, *replies):
    """Answer the turns' requests with `replies` in order; anything else (a title request) gets "A title"."""
    queue = list(replies)

    def answer(request):
        if request.prompt.startswith("question") or "Continue" in request.prompt:
            return queue.pop(0)
        return "A title"

    server.default = Reply(answer)


def app_for(service):
    return ChatApp(service, service.target_for(None))


def contents(messages):
    return [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
            for m in messages]


def reopened_service():
    return ChatService.open(load_settings())


async def test_regenerate_on_another_provider_keeps_both_replies_and_shows_the_new_one(
        service, fake_server, second_server):
    fake_server.script(Reply("old answer"), match="openai")
    second_server.script(Reply("new answer"), match="anthropic")
    async with app_for(service).run_test(size=(100, 40)) as pilot:
        await finish_turn(pilot, "question one")
        screen = pilot.app.screen
        screen.query_one(AssistantMessage).focus()
        await pilot.press("R")  # regenerate on…: the model picker opens
        await wait_for(lambda: isinstance(pilot.app.screen, ModelPicker), pilot)
        picker = pilot.app.screen
        picker.query_one(Input).value = "second claude"
        await wait_for(lambda: picker.option_list.highlighted_option is not None
                       and "second" in (picker.option_list.highlighted_option.id or ""), pilot)
        await pilot.press("enter")
        await wait_for(lambda: pilot.app.screen is screen, pilot)
        await wait_for(lambda: screen._reply_worker.is_finished, pilot, timeout=20)
        [view] = screen.query(AssistantMessage)
        assert view.raw_text == "new answer"
        assert view.label == "second · claude-sonnet-4-5"
        conversation_id = screen.conversation_id
    [regenerated] = [r for r in second_server.requests if r.wire == "anthropic"]
    assert contents(regenerated.messages) == [("user", "question one")]
    service = reopened_service()
    stored = service.all_messages(conversation_id)
    assert [(m.role, m.content, m.provider) for m in stored] == [
        (Role.USER, "question one", None), (Role.ASSISTANT, "old answer", "first"),
        (Role.ASSISTANT, "new answer", "second")]
    assert [m.content for m in service.messages(conversation_id)] == ["question one", "new answer"]
    service.close()


async def test_regenerate_keeps_the_old_reply_out_of_the_next_turns_history(service, fake_server):
    turns(fake_server, "old answer", "new answer", "third")
    async with app_for(service).run_test(size=(100, 40)) as pilot:
        await finish_turn(pilot, "question one")
        screen = pilot.app.screen
        first_worker = screen._reply_worker
        await pilot.press("ctrl+r")
        await wait_for(lambda: screen._reply_worker is not first_worker, pilot)
        await wait_for(lambda: screen._reply_worker.is_finished, pilot, timeout=20)
        assert [v.raw_text for v in screen.query(AssistantMessage)] == ["new answer"]
        await finish_turn(pilot, "question two")
    last = chat_prompts(fake_server)[-1]
    assert contents(last.messages) == [("user", "question one"), ("assistant", "new answer"),
                                       ("user", "question two")]


async def test_edit_and_resend_branches_off_an_earlier_message(service, fake_server):
    turns(fake_server, "answer one", "answer two", "answer edited")
    async with app_for(service).run_test(size=(100, 40)) as pilot:
        await finish_turn(pilot, "question one")
        await finish_turn(pilot, "question two")
        screen = pilot.app.screen
        first_user = screen.query(UserMessage).first()
        first_user.focus()
        await pilot.press("e")
        prompt = screen.query_one(PromptInput)
        assert prompt.text == "question one" and prompt.has_focus
        prompt.load_text("question one, edited")
        worker = screen._reply_worker
        await pilot.press("enter")
        await wait_for(lambda: screen._reply_worker is not worker and screen._reply_worker.is_finished, pilot,
                       timeout=20)
        assert [u.raw_text for u in screen.query(UserMessage)] == ["question one, edited"]
        assert [a.raw_text for a in screen.query(AssistantMessage)] == ["answer edited"]
        conversation_id = screen.conversation_id
    assert contents(chat_prompts(fake_server)[-1].messages) == [("user", "question one, edited")]
    service = reopened_service()
    assert [m.content for m in service.messages(conversation_id)] == ["question one, edited", "answer edited"]
    assert len(service.all_messages(conversation_id)) == 6  # the first branch is still there
    service.close()


async def test_copy_code_block_puts_exactly_that_blocks_raw_text_on_the_clipboard(service, fake_server,
                                                                                 monkeypatch):
    block = "print('a\\tb')  # [bold]not markup[/bold]\nx = 1\n"
    fake_server.script(Reply(f"Here:\n\n```python\n{block}```\n\nDone.", chunks=4), match="openai")
    written: list[str] = []
    original = HeadlessDriver.write

    def record(self, data):
        written.append(data)
        return original(self, data)

    monkeypatch.setattr(HeadlessDriver, "write", record)
    async with app_for(service).run_test(size=(100, 40)) as pilot:
        await finish_turn(pilot, "question one")
        pilot.app.screen.query_one(AssistantMessage).focus()
        await pilot.press("k")
        await wait_for(lambda: pilot.app.clipboard == block, pilot)
        await pilot.press("c")
        await wait_for(lambda: pilot.app.clipboard.startswith("Here:"), pilot)
    osc52 = f"\x1b]52;c;{base64.b64encode(block.encode()).decode()}\a"
    assert osc52 in written


async def test_a_reply_cut_at_the_length_limit_is_stored_truncated_and_continue_appends_to_it(
        service, fake_server):
    fake_server.script(Reply("The first half", finish_reason="length"), match="openai")
    turns(fake_server, " and the rest.")
    async with app_for(service).run_test(size=(100, 40)) as pilot:
        await finish_turn(pilot, "question one")
        screen = pilot.app.screen
        view = screen.query_one(AssistantMessage)
        assert view.status is MessageStatus.TRUNCATED
        assert "truncated" in view.note
        conversation_id = screen.conversation_id
        stored = reopened_service()
        assert stored.messages(conversation_id)[-1].status is MessageStatus.TRUNCATED
        stored.close()
        worker = screen._reply_worker
        view.focus()
        await pilot.press("n")
        await wait_for(lambda: screen._reply_worker is not worker and screen._reply_worker.is_finished, pilot,
                       timeout=20)
        [view] = screen.query(AssistantMessage)
        assert view.raw_text == "The first half and the rest."
        assert view.status is MessageStatus.COMPLETE
    continued = fake_server.requests_to("/v1/chat/completions")[-1]
    roles = contents(continued.messages)
    assert roles[:2] == [("user", "question one"), ("assistant", "The first half")]
    assert roles[2][0] == "user" and "Continue" in roles[2][1]
    service = reopened_service()
    [_, reply] = service.messages(conversation_id)
    assert (reply.content, reply.status) == ("The first half and the rest.", MessageStatus.COMPLETE)
    service.close()


@pytest.mark.parametrize("provider_key,server_fixture,detail", [
    ("first", "fake_server", "content_filter"), ("second", "second_server", "refusal")])
async def test_a_reply_stopped_by_a_content_filter_is_marked_with_the_reason(
        service, request, provider_key, server_fixture, detail):
    server = request.getfixturevalue(server_fixture)
    server.script(Reply("I can't", finish_reason="content_filter"))
    app = ChatApp(service, service.target_for(None, provider_key))
    async with app.run_test(size=(100, 40)) as pilot:
        await finish_turn(pilot, "question one")
        view = pilot.app.screen.query_one(AssistantMessage)
        assert view.status is MessageStatus.FILTERED
        footer = view.note
        assert "filtered" in footer and detail in footer
