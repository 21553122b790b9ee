"""`ChatService.send` ends every turn with a TurnFinished, even when the request cannot be built: the user's
message is kept (marked with why) and nothing escapes as an exception."""

import subprocess
import sys

from envs import clean_env, provider_config

from chatapp.config import load_settings
from chatapp.domain import ErrorKind, MessageStatus, TurnFinished
from chatapp.service import ChatService

BIG_PERSONA = """
name = "verbose"
version = 1
role = "system"
description = "A persona far larger than a small model's window"
text = "{text}"
"""


def _persona(paths, words: int = 3000) -> None:
    paths.templates_dir.mkdir(parents=True, exist_ok=True)
    (paths.templates_dir / "verbose.toml").write_text(BIG_PERSONA.format(text=" ".join(["persona"] * words)))


async def _events(service, conversation_id, text):
    return [event async for event in service.send(conversation_id, text)]


async def test_a_system_prompt_larger_than_the_window_ends_the_turn_with_an_error(isolated_env, fake_server):
    provider_config(isolated_env, fake_server.openai_base_url, extra="context_window = 1024")
    _persona(isolated_env)
    service = ChatService.open(load_settings())
    try:
        conversation = service.new_conversation()
        prompt, assignment = service.render_template("verbose", {}, conversation.id)
        service.apply_template(conversation.id, prompt, assignment)
        events = await _events(service, conversation.id, "hello")
        finished = events[-1]
        assert isinstance(finished, TurnFinished) and finished.status is MessageStatus.ERROR
        assert finished.error_kind is ErrorKind.CONTEXT_TOO_LONG and "system prompt" in finished.error
        [user] = service.messages(conversation.id)
        assert user.content == "hello" and user.status is MessageStatus.ERROR and "system prompt" in user.error
    finally:
        await service.aclose()
    assert fake_server.requests == []


async def test_a_turn_with_nothing_to_send_ends_with_an_error(isolated_env, fake_server):
    provider_config(isolated_env, fake_server.openai_base_url)
    service = ChatService.open(load_settings())
    try:
        events = await _events(service, None, "")
        finished = events[-1]
        assert isinstance(finished, TurnFinished) and finished.status is MessageStatus.ERROR
        assert finished.error_kind is ErrorKind.INVALID_REQUEST
    finally:
        await service.aclose()
    assert fake_server.requests == []


def test_cli_ask_with_an_oversized_persona_is_one_line_not_a_traceback(isolated_env, fake_server, tmp_path):
    provider_config(isolated_env, fake_server.openai_base_url, extra="context_window = 1024")
    isolated_env.config_file.chmod(0o600)  # a key in a file others can read is warned about: not this test
    _persona(isolated_env)
    result = subprocess.run([sys.executable, "-m", "chatapp", "ask", "-t", "verbose", "hello"],
                            env=clean_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "system prompt" in result.stderr
