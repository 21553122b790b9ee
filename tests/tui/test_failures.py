"""Whatever fails inside a turn, a title or a compression, the app keeps running and says so inline."""

from collections.abc import AsyncIterator

import pytest
from fakeserver import Reply
from tui_helpers import footer_text, send_prompt, wait_for, wait_for_reply

from chatapp.config import load_settings
from chatapp.domain import TurnEvent
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.widgets.message import AssistantMessage


@pytest.fixture
def service(isolated_env, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    return ChatService.open(load_settings())


def app_for(service):
    return ChatApp(service, service.target_for(None))


async def test_a_provider_that_raises_unexpectedly_is_an_inline_error(service, fake_server, monkeypatch):
    from chatapp.providers.openai_provider import OpenAIProvider

    def broken_stream(self, request) -> AsyncIterator[TurnEvent]:
        raise RuntimeError("adapter bug [/] here")

    monkeypatch.setattr(OpenAIProvider, "stream", broken_stream)
    async with app_for(service).run_test() as pilot:
        await send_prompt(pilot, "hello")
        await wait_for_reply(pilot)
        await wait_for(lambda: "adapter bug [/] here" in footer_text(pilot.app.screen.query_one(AssistantMessage)),
                       pilot)
        assert pilot.app.is_running


async def test_a_turn_that_raises_outside_the_provider_is_an_inline_error(service, fake_server, monkeypatch):
    async def broken_send(*args, **kwargs) -> AsyncIterator[TurnEvent]:
        raise RuntimeError("service bug")
        yield  # an async generator, like the real one

    monkeypatch.setattr(service, "send", broken_send)
    async with app_for(service).run_test() as pilot:
        await send_prompt(pilot, "hello")
        await wait_for_reply(pilot)
        screen = pilot.app.screen
        await wait_for(lambda: "service bug" in footer_text(screen.query_one(AssistantMessage)), pilot)
        assert pilot.app.is_running
        monkeypatch.undo()  # the next turn works
        monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
        fake_server.script(Reply("fine again"))
        await send_prompt(pilot, "again")
        await wait_for(lambda: len(screen.query(AssistantMessage)) == 2
                       and "fine again" in screen.query(AssistantMessage)[1].text, pilot)


async def test_a_compression_that_raises_is_a_message(service, fake_server, monkeypatch):
    async def broken_compress(conversation_id: str) -> bool:
        raise RuntimeError("summary bug")

    monkeypatch.setattr(service, "compress_now", broken_compress)
    async with app_for(service).run_test() as pilot:
        await send_prompt(pilot, "hello")
        await wait_for_reply(pilot)
        await pilot.press("ctrl+l")
        await wait_for(lambda: "summary bug" in pilot.app.screen.status.activity, pilot)
        assert pilot.app.is_running
