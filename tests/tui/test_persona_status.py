"""The persona stays visible in the status line, the palette clears it, and a narrow status line keeps
its most useful parts."""

import pytest
from fakeserver import Reply
from tui_helpers import wait_for

from chatapp.config import load_settings
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp


@pytest.fixture
def service(isolated_env, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    return ChatService.open(load_settings())


async def test_the_persona_shows_in_the_status_line_and_the_palette_clears_it(service, fake_server):
    fake_server.script(Reply("ok"))
    conversation = service.new_conversation()
    prompt, assignment = service.render_template("concise", {}, conversation.id)
    service.apply_template(conversation.id, prompt, assignment)
    async with ChatApp(service, service.target_for(None), conversation.id).run_test(size=(120, 30)) as pilot:
        screen = pilot.app.screen
        await pilot.pause(0.1)
        assert f"persona concise@{prompt.version}" in str(screen.status.render())
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"clear persona")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(lambda: not screen.status.persona, pilot)
        assert "persona" not in str(screen.status.render())
        assert service.persona(conversation.id) is None


async def test_a_narrow_status_line_keeps_the_provider_and_what_is_happening(service):
    async with ChatApp(service, service.target_for(None)).run_test(size=(60, 20)) as pilot:
        status = pilot.app.screen.status
        status.context = "ctx ~6,521/128,000"
        status.tokens = "2,501 in · 1,234 out"
        status.persona = "code-reviewer@1"
        status.activity = "waiting"
        await pilot.pause(0.1)
        line = str(status.render())
        assert line.startswith("openai") and line.endswith("waiting") and "…" not in line
        assert len(line) <= status.content_region.width
