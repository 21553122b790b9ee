"""Context in the TUI: the window gauge, a message too long for the window, and compress-now."""

import pytest
from envs import provider_config
from fakeserver import Reply
from tui_helpers import send_prompt, wait_for, wait_for_reply

from chatapp.config import load_settings
from chatapp.context import SUMMARY_PROMPT
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.screens.choice import ChoiceScreen
from chatapp.tui.widgets.message import SummaryMarker
from chatapp.tui.widgets.prompt import PromptInput
from chatapp.tui.widgets.status import StatusLine


@pytest.fixture
def service(isolated_env, fake_server):
    provider_config(isolated_env, fake_server.openai_base_url, name="small", model="gpt-4",
                    extra="context_window = 2000")
    fake_server.default = Reply(
        lambda r: "SUMMARY-TEXT of the early turns" if r.prompt.startswith(SUMMARY_PROMPT[:40]) else "answer " * 60
    )
    return ChatService.open(load_settings())


async def test_gauge_shows_window_usage(service):
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        status = pilot.app.screen.query_one(StatusLine)
        await wait_for(lambda: status.context.startswith("ctx"), pilot)
        assert "/2,000" in status.context


async def test_oversized_message_offers_truncate_and_sends_a_fitting_copy(service, fake_server):
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        await send_prompt(pilot, "word " * 5000)
        await wait_for(lambda: isinstance(pilot.app.screen, ChoiceScreen), pilot)
        assert fake_server.requests == []
        await pilot.press("enter")  # the default answer: truncate and send
        await wait_for(lambda: len(fake_server.requests) >= 1, pilot)
        sent = fake_server.requests[0].body["messages"][-1]["content"]
        assert 0 < len(sent) < len("word " * 5000)


async def test_oversized_message_cancel_keeps_the_text_in_the_prompt(service, fake_server):
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        await send_prompt(pilot, "word " * 5000)
        await wait_for(lambda: isinstance(pilot.app.screen, ChoiceScreen), pilot)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(pilot.app.screen, ChoiceScreen), pilot)
        assert pilot.app.screen.query_one(PromptInput).text.startswith("word word")
        assert fake_server.requests == []


async def test_compress_now_shows_a_summary_marker_and_keeps_originals(service, fake_server):
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        screen = pilot.app.screen
        for n in range(6):
            await send_prompt(pilot, f"question {n}")
            await wait_for_reply(pilot)
        await pilot.press("ctrl+l")
        await wait_for(lambda: bool(screen.query(SummaryMarker)), pilot)
        marker = screen.query_one(SummaryMarker)
        assert "summarized" in str(marker.title)
        status = screen.query_one(StatusLine)
        await wait_for(lambda: "1 summary" in status.context, pilot)
        conversation_id = screen.conversation_id
    from chatapp.store.conversations import Store

    store = Store.open(load_settings().paths.database)
    assert len(store.messages(conversation_id)) == 12


async def test_bindings_are_remapped_from_the_config(isolated_env, fake_server):
    provider_config(isolated_env, fake_server.openai_base_url, name="small", model="gpt-4",
                    before='[keys]\nnew_conversation = "ctrl+b"')
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        screen = pilot.app.screen
        await send_prompt(pilot, "hello")
        await wait_for_reply(pilot)
        assert screen.conversation_id is not None
        await pilot.press("ctrl+b")
        await wait_for(lambda: screen.conversation_id is None, pilot)


async def test_a_one_megabyte_paste_loses_nothing_and_sends_nothing(service, fake_server):
    from textual import events

    big = ("All work and no play makes Jack a dull boy. " * 20 + "\n") * 1200  # ~1 MB
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        prompt = pilot.app.screen.query_one(PromptInput)
        prompt.focus()
        pilot.app.post_message(events.Paste(big))  # as a terminal delivers it: to the app, then the focus
        await wait_for(lambda: len(prompt.text) == len(big), pilot, timeout=30)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(pilot.app.screen, ChoiceScreen), pilot, timeout=30)
        assert fake_server.requests == []
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(pilot.app.screen, ChoiceScreen), pilot)
        assert pilot.app.screen.query_one(PromptInput).text == big  # given back, nothing lost


def test_an_unknown_binding_id_in_keys_is_a_config_error_naming_it(isolated_env, fake_server, capsys, monkeypatch):
    from chatapp.cli import main

    monkeypatch.setattr(ChatApp, "run", lambda self: None)  # the check comes first; never open a screen here
    provider_config(isolated_env, fake_server.openai_base_url, before='[keys]\nnew_conversaton = "ctrl+b"')
    assert main([]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "keys.new_conversaton" in err and "new_conversation" in err and str(isolated_env.config_file) in err
