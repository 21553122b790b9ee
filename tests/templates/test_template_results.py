"""Template results count only the turns made under the template, and show no column for a feature
that does not exist (regenerate)."""

import pytest
from fakeserver import Reply

from chatapp.config import load_settings
from chatapp.service import ChatService
from chatapp.templates import format_arms


@pytest.fixture
async def service(isolated_env, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    service = ChatService.open(load_settings())
    yield service
    await service.aclose()


async def turn(service, conversation_id, text="hi"):
    events = [event async for event in service.send(conversation_id, text)]
    return events[0].conversation_id


async def test_results_count_only_turns_made_under_the_template(service, fake_server):
    fake_server.script(Reply("ok"), repeat=3)
    conversation_id = await turn(service, None)
    await turn(service, conversation_id)
    prompt, assignment = service.render_template("concise", {}, conversation_id)
    service.apply_template(conversation_id, prompt, assignment)
    await turn(service, conversation_id)
    [arm] = service.template_results("concise")
    assert (arm.conversations, arm.turns) == (1, 1)
    assert "regen" not in format_arms([arm])


async def test_a_cleared_persona_is_gone_from_the_conversation(service, fake_server):
    fake_server.script(Reply("ok"), repeat=2)
    conversation_id = await turn(service, None)
    prompt, assignment = service.render_template("concise", {}, conversation_id)
    service.apply_template(conversation_id, prompt, assignment)
    assert service.persona(conversation_id) == f"concise@{prompt.version}"
    service.clear_persona(conversation_id)
    assert service.persona(conversation_id) is None and service.system_prompt(conversation_id) is None
    await turn(service, conversation_id)
    assert fake_server.requests[-1].body["messages"][0]["role"] != "system"
