"""An unknown model's assumed window is said once per provider per run, as a notification (and by
`doctor`), never in the conversation nor in place of the status."""

import subprocess
import sys

import pytest
from envs import clean_env
from fakeserver import Reply
from tui_helpers import send_prompt, wait_for, wait_for_reply

from chatapp.config import load_settings
from chatapp.domain import Notice, SetupHint
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.widgets.message import NoticeMessage


@pytest.fixture
def service(isolated_env, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    monkeypatch.setenv("CHATAPP_OPENAI_MODEL", "mystery-model")
    return ChatService.open(load_settings())


async def turn_events(service, conversation_id=None):
    return [event async for event in service.send(conversation_id, "hello")]


async def test_the_unknown_model_hint_comes_once_per_run(service, fake_server):
    fake_server.script(Reply("one"), Reply("two"))
    first = await turn_events(service)
    second = await turn_events(service)
    await service.aclose()
    hints = [e for e in first if isinstance(e, SetupHint)]
    assert len(hints) == 1 and "mystery-model" in hints[0].text and "context_window" in hints[0].text
    assert not [e for e in second if isinstance(e, Notice)]


async def test_the_hint_is_a_notification_not_part_of_the_conversation(service, fake_server, monkeypatch):
    notified = []
    notify = ChatApp.notify

    def recording_notify(self, message, **kwargs):
        notified.append(message)
        return notify(self, message, **kwargs)

    monkeypatch.setattr(ChatApp, "notify", recording_notify)
    fake_server.script(Reply("fine", latency=0.5, delay=0.02))
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        screen = pilot.app.screen
        await send_prompt(pilot, "hello")
        await wait_for(lambda: screen.conversation_id is not None, pilot)
        await pilot.pause(0.2)
        assert "unknown model" not in screen.status.activity
        await wait_for_reply(pilot)
        await pilot.pause(0.1)
        assert not [n for n in screen.query(NoticeMessage) if "unknown model" in str(n.render())]
        assert [text for text in notified if "unknown model 'mystery-model'" in text], notified


def test_doctor_names_the_unknown_model_and_the_setting(tmp_path, isolated_env):
    env = {**clean_env(tmp_path), "OPENAI_API_KEY": "k", "CHATAPP_OPENAI_MODEL": "mystery-model"}
    result = subprocess.run([sys.executable, "-m", "chatapp", "doctor"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "unknown model 'mystery-model'" in result.stdout and "context_window" in result.stdout
    assert "(?" not in result.stdout
