"""Switching provider with one key, and the picker's provider states: two real scripted servers."""

import pytest
from fakeserver import FakeServer, Reply
from tui_helpers import send_prompt, wait_for

from chatapp.config import load_settings
from chatapp.service import ChatService
from chatapp.store.conversations import Store
from chatapp.tui.app import ChatApp
from chatapp.tui.widgets.message import AssistantMessage
from chatapp.tui.widgets.status import StatusLine


def two_providers(paths, first_url, second_url, extra=""):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(
        f'local_servers = []\n{extra}\n'
        f'[providers.first]\nkind = "openai"\nbase_url = "{first_url}"\napi_key = "k1"\nmodel = "gpt-4o-mini"\n'
        f'[providers.second]\nkind = "anthropic"\nbase_url = "{second_url}"\napi_key = "k2"\n'
        f'model = "claude-sonnet-4-5"\n'
    )
    paths.config_file.chmod(0o600)  # it holds keys: readable by others, chatapp would warn (on screen)


@pytest.fixture
def second_server():
    with FakeServer() as server:
        yield server
    assert not server.errors


def turn_done(pilot):
    worker = pilot.app.screen._reply_worker
    return lambda: worker is not None and pilot.app.screen._reply_worker.is_finished


async def finish_turn(pilot, text):
    await send_prompt(pilot, text)
    await wait_for(lambda: pilot.app.screen._reply_worker is not None, pilot)
    await wait_for(lambda: pilot.app.screen._reply_worker.is_finished, pilot, timeout=20)


def chat_prompts(server):
    """The turns' requests (a title request may follow the first turn)."""
    return [r for r in server.requests if r.wire is not None and r.prompt.startswith("question")]


@pytest.mark.parametrize("key,extra", [("f2", ""), ("f6", '[keys]\nswitch_provider = "f6"\n')])
async def test_the_switch_key_sends_the_next_turn_to_the_next_provider_with_the_history(
        isolated_env, fake_server, second_server, key, extra):
    two_providers(isolated_env, fake_server.openai_base_url, second_server.anthropic_base_url, extra)
    fake_server.script(Reply("first answer"), match="openai")
    second_server.script(Reply("second answer"), match="anthropic")
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test(size=(100, 40)) as pilot:
        await finish_turn(pilot, "question one")
        await pilot.press(key)  # the prompt has focus: the (remapped) key still switches
        status = pilot.app.screen.query_one(StatusLine)
        await wait_for(lambda: status.provider == "second", pilot)
        assert status.model == "claude-sonnet-4-5"
        await finish_turn(pilot, "question two")
        labels = [m.label for m in pilot.app.screen.query(AssistantMessage)]
        conversation_id = pilot.app.screen.conversation_id
    assert labels == ["first · gpt-4o-mini", "second · claude-sonnet-4-5"]
    [first_request] = chat_prompts(fake_server)
    assert first_request.prompt == "question one"
    [second_request] = chat_prompts(second_server)
    assert [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
            for m in second_request.messages] == [
        ("user", "question one"), ("assistant", "first answer"), ("user", "question two")]
    store = Store.open(load_settings().paths.database)
    assert [(m.provider, m.model) for m in store.messages(conversation_id) if m.provider] == [
        ("first", "gpt-4o-mini"), ("second", "claude-sonnet-4-5")]
    store.close()
    # Quit and reopen: both labels stay.
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(conversation_id), conversation_id).run_test() as pilot:
        await wait_for(lambda: len(pilot.app.screen.query(AssistantMessage)) == 2, pilot)
        assert [m.label for m in pilot.app.screen.query(AssistantMessage)] == labels


async def test_switching_skips_a_provider_without_a_key(isolated_env, fake_server):
    isolated_env.config_dir.mkdir(parents=True, exist_ok=True)
    isolated_env.config_file.write_text(
        'local_servers = []\n'
        f'[providers.first]\nkind = "openai"\nbase_url = "{fake_server.openai_base_url}"\napi_key = "k"\n'
        'model = "gpt-4o-mini"\n'
        '[providers.nokey]\nkind = "anthropic"\nmodel = "claude-sonnet-4-5"\n'
        f'[providers.third]\nkind = "openai"\nbase_url = "{fake_server.openai_base_url}"\nmodel = "m3"\n'
    )
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        await pilot.press("f2")
        status = pilot.app.screen.query_one(StatusLine)
        await wait_for(lambda: status.provider == "third", pilot)
        assert status.model == "m3"


async def test_with_no_other_provider_the_switch_key_says_so(isolated_env, fake_server, monkeypatch):
    isolated_env.config_dir.mkdir(parents=True, exist_ok=True)
    isolated_env.config_file.write_text(
        'local_servers = []\n'
        f'[providers.first]\nkind = "openai"\nbase_url = "{fake_server.openai_base_url}"\napi_key = "k"\n'
        'model = "gpt-4o-mini"\n'
    )
    service = ChatService.open(load_settings())
    for name in [n for n in service.settings.providers if n != "first"]:  # the packaged model, when installed
        monkeypatch.delitem(service.settings.providers, name)
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        await pilot.press("f2")
        await wait_for(lambda: any("No other provider" in str(n.message) for n in pilot.app._notifications), pilot)
        assert pilot.app.screen.query_one(StatusLine).provider == "first"
