"""The OpenAI and Anthropic adapters against the scripted server: the real SDKs over real sockets."""

import asyncio

import pytest
from fakeserver import Disconnect, Error, Reply, refused_base_url

from chatapp.config import ProviderSpec
from chatapp.domain import ChatMessage, ChatRequest, ErrorKind, Finish, ProviderError, Role, TextDelta, Usage
from chatapp.providers.anthropic_provider import AnthropicProvider
from chatapp.providers.openai_provider import OpenAIProvider

KINDS = ["openai", "anthropic"]


def make(kind, base_url, key="sk-test", **spec):
    spec = ProviderSpec(name=kind, kind=kind, model="test-model", timeout=5.0, **spec)
    cls = OpenAIProvider if kind == "openai" else AnthropicProvider
    return cls(spec, key, base_url)


def url(server, kind):
    return server.openai_base_url if kind == "openai" else server.anthropic_base_url


def request(text="hi", system=None):
    return ChatRequest(model="test-model", messages=(ChatMessage(Role.USER, text),), system=system, max_tokens=64)


async def collect(provider, req=None):
    events = []
    async for event in provider.stream(req or request()):
        events.append(event)
    await provider.aclose()
    return events


@pytest.mark.parametrize("kind", KINDS)
async def test_streams_text_usage_and_finish(fake_server, kind):
    fake_server.script(Reply("Hello there, world", chunks=3, input_tokens=7, output_tokens=4))
    events = await collect(make(kind, url(fake_server, kind)))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there, world"
    assert sum(isinstance(e, TextDelta) for e in events) == 3
    assert Usage(7, 4) in events
    assert events[-1] == Finish("stop")


@pytest.mark.parametrize("kind", KINDS)
async def test_system_prompt_placement(fake_server, kind):
    await collect(make(kind, url(fake_server, kind)), request(system="Be brief."))
    body = fake_server.requests[-1].body
    if kind == "openai":
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body["stream_options"] == {"include_usage": True}
    else:
        assert body["system"] == "Be brief."
        assert all(m["role"] != "system" for m in body["messages"])


@pytest.mark.parametrize("kind", KINDS)
async def test_sdk_retries_are_off_and_401_is_auth(fake_server, kind):
    fake_server.api_key = "right-key"
    with pytest.raises(ProviderError) as info:
        await collect(make(kind, url(fake_server, kind), key="wrong-key"))
    assert info.value.kind is ErrorKind.AUTH
    assert len(fake_server.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_rate_limit_carries_retry_after(fake_server, kind):
    fake_server.script(Error(429, retry_after=3))
    with pytest.raises(ProviderError) as info:
        await collect(make(kind, url(fake_server, kind)))
    assert info.value.kind is ErrorKind.RATE_LIMITED
    assert info.value.retry_after == 3
    assert len(fake_server.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [500, 503, 529])
async def test_server_errors_are_transient(fake_server, kind, status):
    fake_server.script(Error(status))
    with pytest.raises(ProviderError) as info:
        await collect(make(kind, url(fake_server, kind)))
    assert info.value.kind is ErrorKind.TRANSIENT


@pytest.mark.parametrize("kind", KINDS)
async def test_missing_terminator_is_interrupted_not_success(fake_server, kind):
    fake_server.script(Reply("some text", no_terminator=True, finish_reason=None))
    provider = make(kind, url(fake_server, kind))
    seen = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(request()):
            seen.append(event)
    assert info.value.kind is ErrorKind.INTERRUPTED
    assert not any(isinstance(e, Finish) for e in seen)


@pytest.mark.parametrize("kind", KINDS)
async def test_cut_midway_is_interrupted(fake_server, kind):
    fake_server.script(Reply("one two three four five six", chunks=6, cut_after=2))
    provider = make(kind, url(fake_server, kind))
    texts = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(request()):
            if isinstance(event, TextDelta):
                texts.append(event.text)
    assert info.value.kind is ErrorKind.INTERRUPTED
    assert len(texts) == 2


async def test_anthropic_in_band_overloaded_is_transient(fake_server):
    fake_server.script(Reply("partial text here", chunks=3, error_after=1, error_type="overloaded_error"))
    with pytest.raises(ProviderError) as info:
        await collect(make("anthropic", fake_server.anthropic_base_url))
    assert info.value.kind is ErrorKind.TRANSIENT


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_refused_is_transient(kind):
    with pytest.raises(ProviderError) as info:
        await collect(make(kind, refused_base_url()))
    assert info.value.kind is ErrorKind.TRANSIENT
    assert "cannot reach" in info.value.message


@pytest.mark.parametrize("kind", KINDS)
async def test_disconnect_without_answer_is_retryable(fake_server, kind):
    fake_server.script(Disconnect())
    with pytest.raises(ProviderError) as info:
        await collect(make(kind, url(fake_server, kind)))
    assert info.value.kind.retryable


@pytest.mark.parametrize("kind", KINDS)
async def test_context_too_long_is_classified(fake_server, kind):
    message = "This model's maximum context length is 8192 tokens" if kind == "openai" else "prompt is too long"
    fake_server.script(Error(400, message=message, code="context_length_exceeded" if kind == "openai" else None))
    with pytest.raises(ProviderError) as info:
        await collect(make(kind, url(fake_server, kind)))
    assert info.value.kind is ErrorKind.CONTEXT_TOO_LONG


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_midway_closes_the_stream(fake_server, kind):
    fake_server.script(Reply("a b c d e f g h i j", chunks=10, delay=0.2))
    provider = make(kind, url(fake_server, kind))
    got_first = asyncio.Event()

    async def consume():
        async for event in provider.stream(request()):
            if isinstance(event, TextDelta):
                got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await provider.aclose()


async def test_openai_adapter_sends_server_specific_extra_fields(fake_server):
    """The local-model provider relies on this to send llama.cpp's sampling options."""
    from chatapp.providers.llamacpp import LOCAL_SAMPLING

    spec = ProviderSpec(name="local", kind="openai", model="m", timeout=5.0)
    provider = OpenAIProvider(spec, "k", fake_server.openai_base_url, extra_body=LOCAL_SAMPLING)
    await collect(provider)
    body = fake_server.requests[-1].body
    assert body["repeat_penalty"] == LOCAL_SAMPLING["repeat_penalty"] and body["top_k"] == 40
