"""A finished stream hands its connection back to the pool: a batch of thousands of requests must not pay
for a new connection (a TLS handshake, against a real API) per request."""

import pytest
from fakeserver import FakeServer, Reply

from chatapp.config import ProviderSpec
from chatapp.domain import ChatMessage, ChatRequest, Finish, Role
from chatapp.providers.anthropic_provider import AnthropicProvider
from chatapp.providers.openai_provider import OpenAIProvider


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_consecutive_streams_share_one_connection(fake_server, monkeypatch, kind):
    opened: list[object] = []
    track = FakeServer._track

    def counting(self: FakeServer, conn: object, add: bool) -> None:
        if add:
            opened.append(conn)
        track(self, conn, add)  # type: ignore[arg-type]

    monkeypatch.setattr(FakeServer, "_track", counting)
    fake_server.default = Reply("fine, thanks", chunks=2)
    spec = ProviderSpec(name=kind, kind=kind, model="test-model", timeout=5.0)  # type: ignore[arg-type]
    base_url = fake_server.openai_base_url if kind == "openai" else fake_server.anthropic_base_url
    provider = (OpenAIProvider if kind == "openai" else AnthropicProvider)(spec, "k", base_url)
    request = ChatRequest(model="test-model", messages=(ChatMessage(Role.USER, "hi"),), max_tokens=16)
    try:
        for _ in range(3):
            events = [event async for event in provider.stream(request)]
            assert events[-1] == Finish("stop")
    finally:
        await provider.aclose()
    assert len(fake_server.requests) == 3
    assert len(opened) == 1
