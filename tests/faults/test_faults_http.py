"""Fault injection through the scripted HTTP server: the whole turn path (service → engine → SDK)."""

import asyncio
import os
import subprocess
import sys
import time

import pytest
from fakeserver import Error, Reply, refused_base_url

from chatapp.config import load_settings
from chatapp.domain import ErrorKind, MessageStatus, Notice, ReplyRestarted, TextDelta, TurnFinished
from chatapp.service import ChatService


def settings_for(paths, text):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(text)
    return load_settings(paths=paths)


def two_providers(a_url, b_url, extra="", a_kind="openai", b_kind="openai"):
    # Windows are configured: these tests count completion requests, and for a model the table does not know
    # chatapp would first ask the server for its window (/props, /v1/models, /api/show).
    return f"""
default_provider = "a"
fallback = ["a", "b"]
[retry]
base_delay = 0.05
max_delay = 0.2
interactive_deadline = 8
[providers.a]
kind = "{a_kind}"
base_url = "{a_url}"
api_key = "key-a"
model = "model-a"
context_window = 8192
first_token_timeout = 1
timeout = 2
{extra}
[providers.b]
kind = "{b_kind}"
base_url = "{b_url}"
api_key = "key-b"
model = "model-b"
context_window = 8192
"""


async def run_turn(service, text="hello", conversation_id=None):
    events = []
    async for event in service.send(conversation_id, text):
        events.append(event)
    return events


def finished(events):
    return next(e for e in events if isinstance(e, TurnFinished))


def text_of(events):
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.fixture
async def service_factory(isolated_env):
    made = []

    def make(config_text):
        service = ChatService.open(settings_for(isolated_env, config_text))
        made.append(service)
        return service

    yield make
    for service in made:
        await service.aclose()


def test_cli_429_retry_after_twice_then_success(fake_server, isolated_env):
    fake_server.script(Error(429, retry_after=1), repeat=2)
    fake_server.script(Reply("finally"))
    env = {**os.environ, "OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": fake_server.openai_base_url}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "chatapp", "ask", "hi"], env=env, capture_output=True,
                            text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == "finally\n"
    assert elapsed >= 2.0
    assert "rate limited, retrying in" in result.stderr
    assert len(fake_server.requests) == 3


async def test_fallback_when_a_is_down_reply_records_b(fake_server, service_factory):
    service = service_factory(two_providers(refused_base_url(), fake_server.openai_base_url))
    fake_server.script(Reply("from b"))
    events = await run_turn(service)
    end = finished(events)
    assert end.status is MessageStatus.COMPLETE and end.provider == "b"
    assert any(isinstance(e, Notice) and "falling back to b" in e.text for e in events)
    reply = service.message(end.assistant_message_id)
    assert (reply.provider, reply.model, reply.content) == ("b", "model-b", "from b")
    assert fake_server.requests[-1].model == "model-b"


@pytest.mark.parametrize("status", [500, 503])
async def test_fallback_when_a_answers_5xx(fake_server, service_factory, status):
    service = service_factory(two_providers(fake_server.url + "/a/v1", fake_server.url + "/b/v1"))
    fake_server.script(Error(status), repeat=20, match="/a/")
    fake_server.script(Reply("from b"), match="/b/")
    end = finished(await run_turn(service))
    assert end.provider == "b" and end.status is MessageStatus.COMPLETE


async def test_retry_after_a_day_moves_to_fallback_within_deadline(fake_server, service_factory):
    service = service_factory(two_providers(fake_server.url + "/a/v1", fake_server.url + "/b/v1"))
    fake_server.script(Error(429, retry_after=86400), match="/a/")
    fake_server.script(Reply("from b"), match="/b/")
    started = time.monotonic()
    end = finished(await run_turn(service))
    assert time.monotonic() - started < 5
    assert end.provider == "b"
    assert len(fake_server.requests_to("/a/v1/chat/completions")) == 1


async def test_retry_after_a_day_without_fallback_fails_clearly(fake_server, service_factory):
    config = two_providers(fake_server.url + "/a/v1", fake_server.url + "/b/v1").replace(
        'fallback = ["a", "b"]', "fallback = []")
    service = service_factory(config)
    fake_server.script(Error(429, retry_after=86400))
    started = time.monotonic()
    end = finished(await run_turn(service))
    assert time.monotonic() - started < 5
    assert end.status is MessageStatus.ERROR and end.error_kind is ErrorKind.RATE_LIMITED
    assert "rate limited" in end.error


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_5xx_n_times_then_success(fake_server, service_factory, kind):
    url = fake_server.openai_base_url if kind == "openai" else fake_server.anthropic_base_url
    config = two_providers(url, refused_base_url(), a_kind=kind).replace('fallback = ["a", "b"]', "fallback = []")
    service = service_factory(config)
    fake_server.script(Error(500), Error(503), Error(529 if kind == "anthropic" else 502))
    fake_server.script(Reply("ok now"))
    events = await run_turn(service)
    assert finished(events).status is MessageStatus.COMPLETE
    assert text_of(events) == "ok now"
    assert len(fake_server.requests) == 4


async def test_401_one_request_then_fallback(fake_server, service_factory):
    service = service_factory(two_providers(fake_server.url + "/a/v1", fake_server.url + "/b/v1"))
    fake_server.script(Error(401), match="/a/")
    end = finished(await run_turn(service))
    assert end.provider == "b"
    assert len(fake_server.requests_to("/a/v1/chat/completions")) == 1
    assert service.breaker_state("a") == "disabled"
    # the provider stays out: the next turn goes straight to b
    await run_turn(service, conversation_id=None)
    assert len(fake_server.requests_to("/a/v1/chat/completions")) == 1


async def test_a_refused_key_shows_disabled_in_the_picker_until_re_enabled(fake_server, service_factory):
    service = service_factory(two_providers(fake_server.url + "/a/v1", fake_server.url + "/b/v1"))
    fake_server.script(Error(401), match="/a/")
    await run_turn(service)
    entry = {e.name: e for e in service.model_entries()}["a"]
    assert entry.state == "disabled" and not entry.usable
    service.reenable_provider("a")
    assert service.breaker_state("a") == "closed"
    assert {e.name: e for e in service.model_entries()}["a"].state == "available"


async def test_accepted_then_silent_hits_first_token_timeout(fake_server, service_factory):
    service = service_factory(two_providers(fake_server.url + "/a/v1", fake_server.url + "/b/v1"))
    fake_server.script(Reply("never", accept_then_silent=True), repeat=10, match="/a/")
    fake_server.script(Reply("from b"), match="/b/")
    started = time.monotonic()
    end = finished(await run_turn(service))
    assert end.provider == "b"
    assert time.monotonic() - started < 8


async def test_mid_stream_cut_keeps_shown_text_and_restarts(fake_server, service_factory):
    config = two_providers(fake_server.openai_base_url, refused_base_url()).replace(
        'fallback = ["a", "b"]', "fallback = []")
    service = service_factory(config)
    fake_server.script(Reply("one two three four", chunks=4, cut_after=2), Reply("fresh answer"))
    events = await run_turn(service)
    restarted = next(e for e in events if isinstance(e, ReplyRestarted))
    end = finished(events)
    assert end.status is MessageStatus.COMPLETE
    partial = service.message(restarted.previous_message_id)
    assert partial.status is MessageStatus.INCOMPLETE
    assert partial.content and "one two three four".startswith(partial.content)
    assert partial.content != "one two three four"
    assert service.message(end.assistant_message_id).content == "fresh answer"
    # the retry did not send the partial text as history
    assert [m["content"] for m in fake_server.requests[-1].body["messages"]] == ["hello"]


async def test_stall_midway_is_detected(fake_server, service_factory):
    config = two_providers(fake_server.openai_base_url, refused_base_url()).replace(
        'fallback = ["a", "b"]', "fallback = []")
    service = service_factory(config)
    fake_server.script(Reply("one two three", chunks=3, stall_after=1, stall_seconds=30), Reply("recovered"))
    started = time.monotonic()
    events = await run_turn(service)
    assert time.monotonic() - started < 8
    assert finished(events).status is MessageStatus.COMPLETE
    assert text_of(events).endswith("recovered")


async def test_attempt_cap_per_turn(fake_server, service_factory):
    config = two_providers(fake_server.openai_base_url, refused_base_url()).replace(
        "fallback = [\"a\", \"b\"]", "fallback = []"
    ).replace("interactive_deadline = 8", "interactive_deadline = 8\nmax_attempts = 3")
    service = service_factory(config)
    fake_server.script(Error(503), repeat=10)
    end = finished(await run_turn(service))
    assert end.status is MessageStatus.ERROR
    assert len(fake_server.requests) == 3


async def test_cancel_during_backoff_sleep_sends_nothing_more(fake_server, service_factory):
    config = two_providers(fake_server.openai_base_url, refused_base_url()).replace(
        'fallback = ["a", "b"]', "fallback = []")
    service = service_factory(config)
    fake_server.script(Error(429, retry_after=2), repeat=5)

    async def consume():
        async for _ in service.send(None, "hello"):
            pass

    task = asyncio.create_task(consume())
    await asyncio.to_thread(fake_server.wait_for_requests, 1)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(2.5)
    assert len(fake_server.requests) == 1
    [conversation] = service.conversations()
    statuses = [m.status for m in service.messages(conversation.id)]
    assert statuses == [MessageStatus.COMPLETE, MessageStatus.CANCELLED]


async def test_stats_record_retries_latency_and_persist(fake_server, service_factory, isolated_env):
    config = two_providers(fake_server.openai_base_url, refused_base_url()).replace(
        'fallback = ["a", "b"]', "fallback = []")
    service = service_factory(config)
    fake_server.script(Error(503), Reply("ok", input_tokens=10, output_tokens=2))
    await run_turn(service)
    stats = service.stats().provider("a")
    assert stats.requests == 2 and stats.successes == 1 and stats.retries == 1
    assert stats.latency.count == 1 and stats.input_tokens == 10
    await service.aclose()
    again = ChatService.open(load_settings(paths=isolated_env))
    assert again.stats().provider("a").requests == 2
    await again.aclose()
