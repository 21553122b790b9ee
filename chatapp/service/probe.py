"""A tiny real request to one provider, timed: `chatapp doctor --check` reports it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from chatapp.config import ProviderSpec
from chatapp.domain import ChatMessage, ChatRequest, Finish, ProviderKind, Role, TextDelta, Usage
from chatapp.providers.registry import ProviderPool

_PROMPT = "The sea is"
_TOKENS = 16


@dataclass(frozen=True, slots=True)
class ProbeResult:
    load_seconds: float | None  # a local model's load; None for remote providers
    first_token_seconds: float
    output_tokens: int
    tokens_per_second: float | None


async def probe(pool: ProviderPool, spec: ProviderSpec) -> ProbeResult:
    """Ask `spec`'s provider for a few tokens; raises ProviderError when it fails."""
    provider = pool.get(spec.name)
    load: float | None = None
    if spec.kind is ProviderKind.LLAMACPP:
        pool.start(spec.name)
        started = time.perf_counter()
        await pool.wait_ready(spec.name)
        load = time.perf_counter() - started
    request = ChatRequest(model=spec.model, messages=(ChatMessage(Role.USER, _PROMPT),), max_tokens=_TOKENS)
    sent = time.perf_counter()
    first: float | None = None
    output = 0
    async for event in provider.stream(request):
        if isinstance(event, TextDelta) and first is None:
            first = time.perf_counter()
        elif isinstance(event, Usage):
            output = event.output_tokens
        elif isinstance(event, Finish):
            break
    end = time.perf_counter()
    rate = (output - 1) / (end - first) if first is not None and output > 1 and end > first else None
    return ProbeResult(load, (first or end) - sent, output, rate)
