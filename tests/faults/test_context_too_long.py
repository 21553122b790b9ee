"""A provider's context-too-long answer: summarize older turns, then try exactly once more."""

from envs import provider_config
from fakeserver import Error, Reply

from chatapp.config import load_settings
from chatapp.context import SUMMARY_PROMPT
from chatapp.domain import MessageStatus, Notice, TurnFinished
from chatapp.service import ChatService


def is_summary(request):
    return request.prompt.startswith(SUMMARY_PROMPT[:40])


async def test_context_too_long_compresses_and_retries_once(isolated_env, fake_server):
    provider_config(isolated_env, fake_server.openai_base_url)
    fake_server.default = Reply(lambda r: "SUMMARY of the early turns" if is_summary(r) else "an answer")
    service = ChatService.open(load_settings())
    try:
        conversation_id = None
        for n in range(5):
            async for event in service.send(conversation_id, f"question {n}"):
                if isinstance(event, TurnFinished):
                    conversation_id = service.conversations()[0].id
        before = len(fake_server.requests)
        fake_server.script(Error(400, message="This model's maximum context length is 128000 tokens",
                                 code="context_length_exceeded"))
        events = [e async for e in service.send(conversation_id, "one more")]
        assert any(isinstance(e, Notice) and "too long" in e.text for e in events)
        assert events[-1].status is MessageStatus.COMPLETE
        after = fake_server.requests[before:]
        turns = [r for r in after if not is_summary(r)]
        assert len(turns) == 2  # the rejected request and exactly one retry
        assert any(is_summary(r) for r in after)
        assert "SUMMARY of the early turns" in turns[-1].body["messages"][0]["content"]  # the retry carries it
        assert len(service.messages(conversation_id)) == 12  # nothing was deleted
    finally:
        await service.aclose()


async def test_context_too_long_twice_fails_clearly(isolated_env, fake_server):
    provider_config(isolated_env, fake_server.openai_base_url)
    service = ChatService.open(load_settings())
    try:
        fake_server.script(Error(400, message="prompt is too long", code="context_length_exceeded"), repeat=3)
        events = [e async for e in service.send(None, "hello")]
        assert events[-1].status is MessageStatus.ERROR
        assert "too long" in events[-1].error
        assert len(fake_server.requests) == 1  # nothing to summarize: no blind retry
    finally:
        await service.aclose()
