"""The fake server speaks the real wire formats: the official SDKs, over real sockets, see what they would
see from the real APIs, faults included."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest
from fakeserver import (
    DEFAULT_TEXT,
    Disconnect,
    Error,
    FakeServer,
    Reply,
    long_markdown,
    refused_base_url,
    split_tokens,
)

from chatapp.config import Paths

USER = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
async def oai(fake_server: FakeServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=fake_server.openai_base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def claude(fake_server: FakeServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=fake_server.anthropic_base_url, api_key="sk-ant-test", max_retries=0)
    yield client
    await client.close()


async def openai_stream(client: openai.AsyncOpenAI, **kwargs: object) -> tuple[str, list[object]]:
    """Stream a completion; return the text and every chunk."""
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True, **kwargs)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


async def anthropic_events(client: anthropic.AsyncAnthropic, **kwargs: object) -> list[object]:
    stream = await client.messages.create(model="claude-test", max_tokens=100, messages=USER, stream=True, **kwargs)
    return [event async for event in stream]


def anthropic_text(events: list[object]) -> str:
    return "".join(e.delta.text for e in events if e.type == "content_block_delta")


def raw_post(server: FakeServer, path: str, body: dict[str, object]) -> httpx2.Response:
    return httpx2.post(server.url + path, json=body, timeout=5)


# --- OpenAI -----------------------------------------------------------------------------


async def test_openai_stream_assembles_text_with_usage(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    fake_server.script(Reply("The quick brown fox.", chunks=4, input_tokens=11, output_tokens=5))
    text, chunks = await openai_stream(oai, stream_options={"include_usage": True})
    assert text == "The quick brown fox."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 5)


async def test_openai_stream_without_include_usage_has_no_usage(oai: openai.AsyncOpenAI) -> None:
    text, chunks = await openai_stream(oai)
    assert text == DEFAULT_TEXT
    assert all(c.usage is None and c.choices for c in chunks)


async def test_openai_json_reply(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    fake_server.script(Reply("Plain answer", input_tokens=3, output_tokens=2, finish_reason="length"))
    completion = await oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert completion.choices[0].message.content == "Plain answer"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.total_tokens == 5
    assert completion.model == "gpt-4o-mini"


def test_openai_wire_format_is_chunked_sse_ending_with_done(fake_server: FakeServer) -> None:
    fake_server.script(Reply("a b", no_terminator=False))
    response = raw_post(fake_server, "/v1/chat/completions", {"model": "m", "messages": USER, "stream": True})
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert all(e.startswith("data: ") for e in events if e)
    assert events[-2] == "data: [DONE]" and events[-1] == ""


# --- Anthropic --------------------------------------------------------------------------


async def test_anthropic_stream_event_sequence_and_usage(
    fake_server: FakeServer, claude: anthropic.AsyncAnthropic
) -> None:
    fake_server.script(Reply("Hi there, friend.", chunks=3, input_tokens=9, output_tokens=4, finish_reason="length"))
    events = await anthropic_events(claude)
    types = [e.type for e in events]
    assert types == ["message_start", "content_block_start"] + ["content_block_delta"] * 3 + [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert anthropic_text(events) == "Hi there, friend."
    assert events[0].message.usage.input_tokens == 9
    assert events[-2].usage.output_tokens == 4
    assert events[-2].delta.stop_reason == "max_tokens"


def test_anthropic_wire_format_has_named_events_and_ping(fake_server: FakeServer) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": USER, "stream": True}
    response = raw_post(fake_server, "/v1/messages", body)
    names = [e.split("\n")[0] for e in response.text.split("\n\n") if e]
    assert names[:3] == ["event: message_start", "event: content_block_start", "event: ping"]
    assert names[-3:] == ["event: content_block_stop", "event: message_delta", "event: message_stop"]
    assert response.headers["request-id"].startswith("req_")


async def test_anthropic_json_reply(fake_server: FakeServer, claude: anthropic.AsyncAnthropic) -> None:
    fake_server.script(Reply("Done.", input_tokens=7, output_tokens=2))
    message = await claude.messages.create(model="claude-test", max_tokens=10, messages=USER)
    assert message.content[0].text == "Done."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 2)


async def test_anthropic_in_band_overloaded_error(fake_server: FakeServer, claude: anthropic.AsyncAnthropic) -> None:
    fake_server.script(Reply("one two three", error_after=1))
    with pytest.raises(anthropic.APIStatusError) as caught:
        await anthropic_events(claude)
    assert caught.value.status_code == 200
    assert caught.value.body["error"]["type"] == "overloaded_error"


async def test_openai_in_band_error(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    fake_server.script(Reply("one two three", error_after=2))
    with pytest.raises(openai.APIError) as caught:
        await openai_stream(oai)
    assert caught.value.type == "overloaded_error"


# --- HTTP errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Error(429, retry_after=1), openai.RateLimitError),
        (Error(500), openai.InternalServerError),
        (Error(503), openai.InternalServerError),
        (Error(400, "too long", code="context_length_exceeded"), openai.BadRequestError),
        (Error(404), openai.NotFoundError),
    ],
)
async def test_openai_errors_raise_typed_sdk_errors(
    fake_server: FakeServer, oai: openai.AsyncOpenAI, error: Error, expected: type[Exception]
) -> None:
    fake_server.script(error)
    with pytest.raises(expected) as caught:
        await openai_stream(oai)
    assert caught.value.status_code == error.status
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    if error.code:
        assert caught.value.code == error.code
    if error.retry_after:
        assert caught.value.response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("error", "expected", "type_"),
    [
        (Error(429, headers={"retry-after-ms": "250"}), anthropic.RateLimitError, "rate_limit_error"),
        (Error(529), anthropic.OverloadedError, "overloaded_error"),
        (Error(500), anthropic.InternalServerError, "api_error"),
        (Error(400, "prompt is too long"), anthropic.BadRequestError, "invalid_request_error"),
    ],
)
async def test_anthropic_errors_raise_typed_sdk_errors(
    fake_server: FakeServer,
    claude: anthropic.AsyncAnthropic,
    error: Error,
    expected: type[Exception],
    type_: str,
) -> None:
    fake_server.script(error)
    with pytest.raises(expected) as caught:
        await anthropic_events(claude)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == type_
    assert caught.value.response.headers.get("retry-after-ms") == error.headers.get("retry-after-ms")


async def test_wrong_key_is_rejected_in_each_shape(fake_server: FakeServer) -> None:
    fake_server.api_key = "right"
    async with openai.AsyncOpenAI(base_url=fake_server.openai_base_url, api_key="wrong", max_retries=0) as oai:
        with pytest.raises(openai.AuthenticationError) as caught:
            await openai_stream(oai)
        assert caught.value.code == "invalid_api_key"
    base_url = fake_server.anthropic_base_url
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="wrong", max_retries=0) as claude:
        with pytest.raises(anthropic.AuthenticationError) as caught_a:
            await anthropic_events(claude)
        assert caught_a.value.body["error"]["type"] == "authentication_error"
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="right", max_retries=0) as claude:
        assert anthropic_text(await anthropic_events(claude)) == DEFAULT_TEXT
    body = {"model": "m", "max_tokens": 5, "messages": USER}
    assert httpx2.post(base_url + "/v1/messages", json=body, headers={"x-api-key": "right"}).status_code == 200
    assert fake_server.pending == 0


def test_invalid_request_gets_400(fake_server: FakeServer) -> None:
    response = raw_post(fake_server, "/v1/messages", {"model": "m", "messages": USER})
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


# --- Broken streams ---------------------------------------------------------------------


async def test_cut_mid_stream_is_a_transport_error(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    fake_server.script(Reply("one two three four", cut_after=2))
    received: list[str] = []
    stream = await oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two"


async def test_cut_mid_stream_anthropic(fake_server: FakeServer, claude: anthropic.AsyncAnthropic) -> None:
    fake_server.script(Reply("one two three four", cut_after=3))
    # The Anthropic SDK lets the raw transport error through mid-stream (see DESIGN.md).
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        await anthropic_events(claude)


async def test_no_terminator_ends_cleanly_without_done(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    fake_server.script(Reply("all of it", no_terminator=True, finish_reason=None))
    text, chunks = await openai_stream(oai)
    assert text == "all of it"
    assert all(c.choices[0].finish_reason is None for c in chunks)
    fake_server.script(Reply("all of it", no_terminator=True))
    response = raw_post(fake_server, "/v1/chat/completions", {"model": "m", "messages": USER, "stream": True})
    assert response.text.endswith("\n\n") and "[DONE]" not in response.text


async def test_no_terminator_anthropic(fake_server: FakeServer, claude: anthropic.AsyncAnthropic) -> None:
    fake_server.script(Reply("all of it", no_terminator=True))
    events = await anthropic_events(claude)
    assert anthropic_text(events) == "all of it"
    assert events[-1].type == "message_delta"


async def test_stall_trips_the_client_read_timeout(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    fake_server.script(Reply("one two three", stall_after=1, stall_seconds=30))
    received: list[str] = []
    started = time.monotonic()
    stream = await oai.with_options(timeout=httpx2.Timeout(5, read=0.3)).chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True
    )
    with pytest.raises(openai.APITimeoutError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one"
    assert time.monotonic() - started < 3


async def test_short_stall_then_the_stream_resumes(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    fake_server.script(Reply("one two", stall_after=1, stall_seconds=0.2))
    started = time.monotonic()
    text, _ = await openai_stream(oai)
    assert text == "one two"
    assert time.monotonic() - started >= 0.2


async def test_accept_then_silent_times_out(fake_server: FakeServer, claude: anthropic.AsyncAnthropic) -> None:
    fake_server.script(Reply(accept_then_silent=True))
    with pytest.raises(anthropic.APITimeoutError):
        await claude.messages.create(
            model="claude-test", max_tokens=10, messages=USER, timeout=anthropic.Timeout(5, read=0.3)
        )


async def test_disconnect_and_refused_are_connection_errors(fake_server: FakeServer) -> None:
    fake_server.script(Disconnect())
    for base_url in (fake_server.openai_base_url, refused_base_url() + "/v1"):
        async with openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0) as oai:
            with pytest.raises(openai.APIConnectionError):
                await openai_stream(oai)


def test_close_is_prompt_with_stalled_connections() -> None:
    server = FakeServer().start()
    server.script(Reply(stall_after=1, stall_seconds=60), Reply(accept_then_silent=True))
    outcomes: list[str] = []

    def call() -> None:
        body = {"model": "m", "messages": USER, "stream": True}
        try:
            httpx2.post(server.openai_base_url + "/chat/completions", json=body, timeout=30)
        except httpx2.TransportError as exc:
            outcomes.append(type(exc).__name__)

    callers = [threading.Thread(target=call) for _ in range(2)]
    for caller in callers:
        caller.start()
    server.wait_for_requests(2)
    time.sleep(0.1)
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 1
    for caller in callers:
        caller.join(5)
    assert outcomes == ["RemoteProtocolError"] * 2


# --- Scripting and the request log ------------------------------------------------------


async def test_scripts_are_fifo_with_repeat_then_default(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    fake_server.script(Error(429, retry_after=1), repeat=2)
    fake_server.script(Reply("third"))
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            await openai_stream(oai)
    assert (await openai_stream(oai))[0] == "third"
    assert (await openai_stream(oai))[0] == DEFAULT_TEXT


async def test_match_routes_scripts_to_one_protocol(
    fake_server: FakeServer, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    fake_server.script(Reply("for claude"), match="anthropic")
    fake_server.script(Reply("for gpt"), match="/v1/chat")
    assert (await openai_stream(oai))[0] == "for gpt"
    assert anthropic_text(await anthropic_events(claude)) == "for claude"


async def test_reply_text_can_echo_the_request(fake_server: FakeServer, claude: anthropic.AsyncAnthropic) -> None:
    fake_server.script(Reply(lambda request: f"You said: {request.prompt}"))
    assert anthropic_text(await anthropic_events(claude)) == "You said: Say hello"


async def test_request_log(fake_server: FakeServer, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic) -> None:
    await openai_stream(oai, temperature=0.5)
    await anthropic_events(claude, system="Be brief.")
    first, second = fake_server.requests
    assert fake_server.requests_to("/v1/chat/completions") == [first]
    assert (first.method, first.wire, first.stream, first.model) == ("POST", "openai", True, "gpt-4o-mini")
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.body["temperature"] == 0.5 and first.prompt == "Say hello"
    # anthropic 2.x sends its api_key as a Bearer token, not as x-api-key
    assert second.path == "/v1/messages" and second.headers["authorization"] == "Bearer sk-ant-test"
    assert second.body["system"] == "Be brief." and "anthropic-version" in second.headers
    assert first.received <= second.received


async def test_models_in_each_shape(oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic) -> None:
    assert "gpt-4o-mini" in [m.id async for m in oai.models.list()]
    assert "claude-sonnet-4-5" in [m.id async for m in claude.models.list()]


async def test_delay_and_latency(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    fake_server.script(Reply("a b c d", delay=0.05, latency=0.1))
    started = time.monotonic()
    await openai_stream(oai)
    assert time.monotonic() - started >= 0.1 + 3 * 0.05


async def test_long_markdown_one_token_per_event(fake_server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    text = long_markdown(1000)
    fake_server.script(Reply(text))
    received, chunks = await openai_stream(oai)
    assert received == text
    assert len(chunks) == len(split_tokens(text)) + 2  # role chunk + finish chunk


def test_a_subprocess_can_use_the_server(fake_server: FakeServer) -> None:
    code = (
        "import json, sys, urllib.request\n"
        "body = json.dumps({'model': 'm', 'messages': [{'role': 'user', 'content': 'x'}]}).encode()\n"
        "headers = {'content-type': 'application/json'}\n"
        "request = urllib.request.Request(sys.argv[1] + '/chat/completions', body, headers)\n"
        "print(json.load(urllib.request.urlopen(request))['choices'][0]['message']['content'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, fake_server.openai_base_url], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == DEFAULT_TEXT


def test_isolated_env(isolated_env: Paths, tmp_path: Path) -> None:
    assert isolated_env.config_dir.is_relative_to(tmp_path / "config")
    assert isolated_env.database.is_relative_to(tmp_path / "data")
    assert not [name for name in os.environ if name.startswith(("OPENAI_", "ANTHROPIC_", "CHATAPP_"))]


def test_every_test_is_isolated_without_asking(tmp_path: Path) -> None:
    assert Paths.from_platform().config_dir.is_relative_to(tmp_path / "config")
    assert Paths.from_platform().database.is_relative_to(tmp_path / "data")
    assert Path.home() == tmp_path / "home"
    assert not [name for name in os.environ if name.startswith(("OPENAI_", "ANTHROPIC_", "CHATAPP_"))]
