"""chatapp's own adapters, engine and CLI against a real server nobody here wrote: llama.cpp + Gemma 3 270M.

A base model: these tests assert structure (text arrives, usage counts, statuses), never wording.
"""

import asyncio
import json
import subprocess
import sys

import pytest
from envs import clean_env
from llama_fixtures import MODEL, LlamaFixture

from chatapp.config import ProviderSpec, load_settings
from chatapp.domain import (
    ChatMessage,
    ChatRequest,
    ErrorKind,
    Finish,
    MessageStatus,
    ProviderError,
    Role,
    TextDelta,
    TurnFinished,
    Usage,
)
from chatapp.providers.anthropic_provider import AnthropicProvider
from chatapp.providers.openai_provider import OpenAIProvider
from chatapp.service import ChatService

KINDS = ["openai", "anthropic"]


def adapter(kind: str, llama: LlamaFixture, key: str | None = None):
    spec = ProviderSpec(name=f"llama-{kind}", kind=kind, model=MODEL, timeout=30)
    if kind == "openai":
        return OpenAIProvider(spec, key or llama.api_key, llama.openai_base_url)
    return AnthropicProvider(spec, key or llama.api_key, llama.anthropic_base_url)


def request(system: str | None = None, max_tokens: int = 12) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=(ChatMessage(Role.USER, "The sea is"),), system=system,
                       max_tokens=max_tokens)


async def run(provider, req):
    try:
        return [event async for event in provider.stream(req)]
    finally:
        await provider.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_adapter_streams_text_usage_and_finish(llama, kind):
    events = await run(adapter(kind, llama), request())
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    usage = next(e for e in events if isinstance(e, Usage))
    assert texts and "".join(texts).strip()
    assert usage.input_tokens > 0 and 0 < usage.output_tokens <= 12
    assert isinstance(events[-1], Finish) and events[-1].reason in ("stop", "length")


@pytest.mark.parametrize("kind", KINDS)
async def test_system_prompt_reaches_the_model(llama, kind):
    plain = await run(adapter(kind, llama), request(max_tokens=2))
    system = await run(adapter(kind, llama), request(system="You answer in one short sentence. " * 5, max_tokens=2))
    tokens = [next(e for e in events if isinstance(e, Usage)).input_tokens for events in (plain, system)]
    assert tokens[1] > tokens[0] + 20


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_midway_stops_the_stream(llama, kind):
    provider = adapter(kind, llama)
    first = asyncio.Event()

    async def consume():
        async for event in provider.stream(request(max_tokens=400)):
            if isinstance(event, TextDelta):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await provider.aclose()
    # the server is free again: a new request is answered promptly
    events = await asyncio.wait_for(run(adapter(kind, llama), request(max_tokens=2)), 30)
    assert isinstance(events[-1], Finish)


@pytest.mark.parametrize("kind", KINDS)
async def test_wrong_key_is_auth_and_sent_once(llama, kind, isolated_env):
    with pytest.raises(ProviderError) as info:
        await run(adapter(kind, llama, key="not-the-key"), request())
    assert info.value.kind is ErrorKind.AUTH
    isolated_env.config_dir.mkdir(parents=True)
    base = llama.openai_base_url if kind == "openai" else llama.anthropic_base_url
    isolated_env.config_file.write_text(
        f'[providers.l]\nkind = "{kind}"\nbase_url = "{base}"\napi_key = "wrong"\nmodel = "{MODEL}"\n')
    service = ChatService.open(load_settings())
    try:
        events = [e async for e in service.send(None, "The sea is")]
        finished = events[-1]
        assert isinstance(finished, TurnFinished) and finished.error_kind is ErrorKind.AUTH
        assert service.stats().provider("l").requests == 1  # not retried
    finally:
        await service.aclose()


def cli(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "chatapp", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(name="clean_env")
def clean_env_fixture(tmp_path):
    return clean_env(tmp_path)


def test_ask_with_no_key_and_no_config_uses_the_embedded_model(llama, clean_env):
    result = cli(clean_env, "ask", "The sea is")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    [conversation] = json.loads(cli(clean_env, "ls", "--json").stdout)
    assert conversation["provider"] == "embedded" and conversation["messages"] == 2


def test_llamacpp_block_streams_from_a_gguf_and_a_missing_path_is_one_line(llama, clean_env, tmp_path):
    config = tmp_path / "config" / "chatapp"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'[providers.mine]\nkind = "llamacpp"\nmodel_path = "{llama.model_path}"\nmax_output_tokens = 24\n'
        f'[providers.gone]\nkind = "llamacpp"\nmodel_path = "{tmp_path / "nope.gguf"}"\n')
    result = cli(clean_env, "ask", "--provider", "mine", "The sea is")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    missing = cli(clean_env, "ask", "--provider", "gone", "The sea is")
    assert missing.returncode != 0
    assert missing.stderr.count("\n") == 1 and "nope.gguf" in missing.stderr and "Traceback" not in missing.stderr


async def test_tui_first_screen_while_the_model_loads_then_the_reply_streams(llama, isolated_env):
    from chatapp.tui.app import ChatApp
    from chatapp.tui.widgets.message import AssistantMessage
    from chatapp.tui.widgets.prompt import PromptInput
    from chatapp.tui.widgets.status import StatusLine

    service = ChatService.open(load_settings())
    assert service.default_provider == "embedded"
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        screen = pilot.app.screen
        status = screen.query_one(StatusLine)
        assert status.provider == "embedded"
        prompt = screen.query_one(PromptInput)
        prompt.load_text("The sea is")
        await pilot.press("enter")
        loop = asyncio.get_running_loop()
        # The zero-config reply may run to its whole budget (2,048 tokens): minutes on a host shared with
        # other suites (90 s was once not enough), seconds alone.
        deadline = loop.time() + 180
        while screen.replying:
            assert loop.time() < deadline
            await pilot.pause(0.1)
        view = screen.query(AssistantMessage).last()
        assert view.text.strip()
    from chatapp.store.conversations import Store

    store = Store.open(load_settings().paths.database)
    [conversation] = store.list_conversations()
    messages = store.messages(conversation.id)
    assert [m.status for m in messages] == [MessageStatus.COMPLETE, MessageStatus.COMPLETE], [
        (m.status, m.error, len(m.content)) for m in messages]


def test_doctor_shows_the_embedded_model_and_measures_it(llama, clean_env):
    plain = cli(clean_env, "doctor")
    assert plain.returncode == 0, plain.stderr
    assert "embedded" in plain.stdout and "gemma-3-270m" in plain.stdout and "model file:" in plain.stdout
    checked = cli(clean_env, "doctor", "--check")
    assert checked.returncode == 0, checked.stderr
    assert "model loaded in" in checked.stdout and "tokens/s" in checked.stdout
