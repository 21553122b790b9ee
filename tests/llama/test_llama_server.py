"""The llama.cpp runtime itself, over real sockets: loopback only, the per-run key, both wire formats
through the official SDKs, the Gemma chat template, and generation stopping when the client goes away.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from llama_fixtures import MODEL, LlamaFixture, needs_local, wait_until_idle

pytestmark = needs_local

SYSTEM_SHORT = "You are a pirate."
SYSTEM_LONG = "You are a pirate. " * 12 + "Always answer in rhyme, and never mention the sea."


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of LISTEN sockets on `port`, from /proc/net/tcp{,6} (Linux)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:
                found.append(address)
    return found


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("10.255.255.255", 1))  # no packet is sent; this only picks a route
            address = sock.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def _tokens(llama: LlamaFixture, text: str) -> int:
    response = httpx2.post(f"{llama.root_url}/tokenize", headers=llama.headers,
                           json={"content": text, "add_special": False})
    response.raise_for_status()
    return len(response.json()["tokens"])


def _rendered(llama: LlamaFixture, messages: list[dict[str, object]]) -> str:
    response = httpx2.post(f"{llama.root_url}/apply-template", headers=llama.headers, json={"messages": messages})
    response.raise_for_status()
    return response.json()["prompt"]


def test_listens_on_loopback_only(llama: LlamaFixture):
    parts = urlsplit(llama.root_url)
    assert parts.hostname == "127.0.0.1"
    assert parts.port
    if sys.platform.startswith("linux"):
        assert _listening_addresses(parts.port) == ["0100007F"]  # 127.0.0.1, and no IPv6 socket
    other = _non_loopback_address()
    if other is not None:
        with pytest.raises(OSError), socket.create_connection((other, parts.port), timeout=2):
            pass


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}], ids=["no key", "wrong key"])
def test_openai_endpoint_refuses_other_callers(llama: LlamaFixture, headers: dict[str, str]):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    response = httpx2.post(f"{llama.openai_base_url}/chat/completions", headers=headers, json=body)
    assert response.status_code == 401


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong-key"}], ids=["no key", "wrong key"])
def test_anthropic_endpoint_refuses_other_callers(llama: LlamaFixture, headers: dict[str, str]):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    response = httpx2.post(f"{llama.root_url}/v1/messages", headers={"anthropic-version": "2023-06-01", **headers},
                           json=body)
    assert response.status_code == 401


def test_other_endpoints_need_the_key_too(llama: LlamaFixture):
    assert httpx2.get(f"{llama.root_url}/slots").status_code == 401
    assert httpx2.get(f"{llama.root_url}/slots", headers=llama.headers).status_code == 200


async def _openai_stream(llama: LlamaFixture, system: str | None, max_tokens: int = 16) -> tuple[str, object, str]:
    import openai

    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": "Tell me about ships."}]
    async with openai.AsyncOpenAI(base_url=llama.openai_base_url, api_key=llama.api_key, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=max_tokens, stream=True,
            stream_options={"include_usage": True},
        )
        text, usage, finish = [], None, None
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    text.append(choice.delta.content)
                finish = choice.finish_reason or finish
            usage = chunk.usage or usage
    return "".join(text), usage, finish


async def test_openai_sdk_streams_text_and_usage(llama: LlamaFixture):
    text, usage, finish = await _openai_stream(llama, None, max_tokens=16)
    assert text.strip()
    assert finish in ("stop", "length")
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 16


async def _anthropic_stream(llama: LlamaFixture, system: str | None, max_tokens: int = 16) -> tuple[str, object, str]:
    import anthropic

    extra = {"system": system} if system else {}
    async with anthropic.AsyncAnthropic(base_url=llama.anthropic_base_url, api_key=llama.api_key,
                                        max_retries=0) as client, client.messages.stream(
        model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": "Tell me about ships."}],
        **extra,
    ) as stream:
        text = [piece async for piece in stream.text_stream]
        message = await stream.get_final_message()
    return "".join(text), message.usage, message.stop_reason


def _input_tokens(usage: object) -> int:
    """llama.cpp reports tokens served from its prompt cache apart, as Anthropic does."""
    return (getattr(usage, "input_tokens", 0) or 0) + (getattr(usage, "cache_read_input_tokens", 0) or 0)


async def test_anthropic_sdk_streams_text_and_usage(llama: LlamaFixture):
    text, usage, stop_reason = await _anthropic_stream(llama, None, max_tokens=16)
    assert text.strip()
    assert stop_reason in ("end_turn", "max_tokens")
    assert _input_tokens(usage) > 0
    assert 0 < usage.output_tokens <= 16


async def test_system_prompt_reaches_the_model_over_openai(llama: LlamaFixture):
    _, plain, _ = await _openai_stream(llama, None, max_tokens=1)
    _, short, _ = await _openai_stream(llama, SYSTEM_SHORT, max_tokens=1)
    _, long, _ = await _openai_stream(llama, SYSTEM_LONG, max_tokens=1)
    # The growth is the system text's own tokens (plus the "\n\n" that joins it to the user turn).
    assert short.prompt_tokens - plain.prompt_tokens == _tokens(llama, SYSTEM_SHORT + "\n\n")
    assert long.prompt_tokens - plain.prompt_tokens == _tokens(llama, SYSTEM_LONG + "\n\n")


async def test_system_prompt_reaches_the_model_over_anthropic(llama: LlamaFixture):
    _, plain, _ = await _anthropic_stream(llama, None, max_tokens=1)
    _, short, _ = await _anthropic_stream(llama, SYSTEM_SHORT, max_tokens=1)
    _, long, _ = await _anthropic_stream(llama, SYSTEM_LONG, max_tokens=1)
    assert _input_tokens(short) - _input_tokens(plain) == _tokens(llama, SYSTEM_SHORT + "\n\n")
    assert _input_tokens(long) - _input_tokens(plain) == _tokens(llama, SYSTEM_LONG + "\n\n")


def test_gemma_template_puts_the_system_text_in_the_first_user_turn(llama: LlamaFixture):
    prompt = _rendered(llama, [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "More"},
    ])
    assert prompt == (
        "<start_of_turn>user\nSYS\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nMore<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_gemma_template_handles_content_parts_and_a_lone_system_message(llama: LlamaFixture):
    parts = _rendered(llama, [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
    ])
    assert parts == "<start_of_turn>user\none\ntwo<end_of_turn>\n<start_of_turn>model\n"
    alone = _rendered(llama, [{"role": "system", "content": "SYS"}])
    assert alone == "<start_of_turn>user\nSYS<end_of_turn>\n<start_of_turn>model\n"


def test_prompt_starts_with_exactly_one_bos(llama: LlamaFixture):
    """llama.cpp adds BOS itself; a template that also emitted one would double it."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    response = httpx2.post(f"{llama.openai_base_url}/chat/completions", headers=llama.headers, json=body)
    rendered = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    assert response.json()["usage"]["prompt_tokens"] == 1 + _tokens(llama, rendered)


async def test_closing_the_stream_stops_generation(llama: LlamaFixture):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell a long story."}],
            "max_tokens": 2000, "stream": True, "ignore_eos": True}  # ~40 s of work if nobody stops it
    async with httpx2.AsyncClient(timeout=30) as client, client.stream(
        "POST", f"{llama.openai_base_url}/chat/completions", headers=llama.headers, json=body
    ) as response:
        assert response.status_code == 200
        chunks = 0
        async for line in response.aiter_lines():
            chunks += line.startswith("data:")
            if chunks == 4:
                break
    await wait_until_idle(llama)
