"""The fallback chain: order, request rebuilt per provider, events naming who answered."""

import pytest
from engine_fakes import FakeProvider, collect, make_engine, ok, settings, spec, texts

from chatapp.config import ProviderSpec, RetrySettings
from chatapp.domain import ChatMessage, ChatRequest, ErrorKind, Notice, ProviderError, Role
from chatapp.engine import AttemptStarted, Job, Priority, RequestEngine


async def test_fallback_rebuilds_the_request_for_the_fallback_spec():
    seen: list[ProviderSpec] = []

    def build(s: ProviderSpec) -> ChatRequest:
        seen.append(s)
        return ChatRequest(model=s.model, messages=(ChatMessage(Role.USER, "q"),), max_tokens=s.max_output_tokens)

    a = FakeProvider("a", default=[ProviderError(ErrorKind.AUTH, "bad key")])
    b = FakeProvider("b", default=ok("answer"))
    h = make_engine([a, b], [spec("a", "gpt-4o-mini"), spec("b", "claude-sonnet-4-5", max_output_tokens=99)])
    the_job = Job(priority=Priority.INTERACTIVE, chain=("a", "b"), build_request=build)
    events = await collect(h.engine, the_job)
    assert [s.name for s in seen] == ["a", "b"]
    assert a.requests[0].model == "gpt-4o-mini"
    assert b.requests[0].model == "claude-sonnet-4-5" and b.requests[0].max_tokens == 99
    starts = [e for e in events if isinstance(e, AttemptStarted)]
    assert [(s.provider, s.model, s.is_fallback) for s in starts] == [
        ("a", "gpt-4o-mini", False),
        ("b", "claude-sonnet-4-5", True),
    ]
    assert starts[1].reason and "a rejected the credentials" in starts[1].reason
    notice = next(e for e in events if isinstance(e, Notice))
    assert "falling back to b (claude-sonnet-4-5)" in notice.text
    assert texts(events) == "answer"


async def test_chain_is_tried_in_order_until_one_answers():
    down = [ProviderError(ErrorKind.TRANSIENT, "503")]
    a, b, c = FakeProvider("a", default=down), FakeProvider("b", default=down), FakeProvider("c", default=ok("c"))
    h = make_engine([a, b, c], retry=RetrySettings(max_attempts=1))
    events = await collect(h.engine, Job(Priority.INTERACTIVE, ("a", "b", "c"), lambda s: _req(s)))
    assert (a.calls, b.calls, c.calls) == (1, 1, 1)
    assert [e.provider for e in events if isinstance(e, AttemptStarted)] == ["a", "b", "c"]
    snap = h.engine.stats.snapshot()
    assert snap.provider("a").fallbacks == 1 and snap.provider("b").fallbacks == 1
    assert snap.provider("c").fallbacks == 0


async def test_exhausted_chain_raises_the_last_error_with_its_provider():
    a = FakeProvider("a", default=[ProviderError(ErrorKind.TRANSIENT, "503")])
    b = FakeProvider("b", default=[ProviderError(ErrorKind.AUTH, "401")])
    h = make_engine([a, b], retry=RetrySettings(max_attempts=1))
    with pytest.raises(ProviderError) as info:
        await collect(h.engine, Job(Priority.INTERACTIVE, ("a", "b"), _req))
    assert info.value.kind is ErrorKind.AUTH and info.value.provider == "b"


async def test_empty_chain_uses_default_provider_then_settings_fallback():
    a = FakeProvider("a", default=[ProviderError(ErrorKind.AUTH, "401")])
    b = FakeProvider("b", default=ok("b"))
    engine = RequestEngine(settings([spec("a"), spec("b")], fallback=("a", "b")), {"a": a, "b": b}.__getitem__)
    events = await collect(engine, Job(Priority.INTERACTIVE, (), _req))
    assert [e.provider for e in events if isinstance(e, AttemptStarted)] == ["a", "b"]


async def test_unconfigured_provider_in_the_chain_is_skipped():
    b = FakeProvider("b", default=ok("b"))
    h = make_engine([b])
    events = await collect(h.engine, Job(Priority.INTERACTIVE, ("ghost", "b"), _req))
    assert texts(events) == "b"
    assert any("ghost is not configured" in e.text for e in events if isinstance(e, Notice))


def _req(s: ProviderSpec) -> ChatRequest:
    return ChatRequest(model=s.model, messages=(ChatMessage(Role.USER, "q"),))
