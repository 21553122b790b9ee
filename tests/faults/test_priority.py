"""Background work (titles, summaries) never delays a turn the user sends."""

import asyncio
import time

from envs import provider_config
from fakeserver import Reply

from chatapp.config import load_settings
from chatapp.domain import MessageStatus, TurnFinished, TurnStarted
from chatapp.service import ChatService
from chatapp.service.titles import TITLE_PROMPT, clean_title


def is_title(request):
    return request.prompt.startswith(TITLE_PROMPT[:30])


async def test_a_turn_preempts_a_running_title_job_on_a_single_slot(isolated_env, fake_server):
    provider_config(isolated_env, fake_server.openai_base_url, name="one", extra="max_concurrency = 1")
    fake_server.default = Reply("A Slow Title " * 50, chunks=50, delay=0.1)  # what title requests get
    fake_server.script(Reply("quick answer"))
    service = ChatService.open(load_settings())
    try:
        async for _ in service.send(None, "first question", title=True):
            pass
        [conversation] = service.conversations()
        await asyncio.to_thread(fake_server.wait_for_requests, 2)
        assert is_title(fake_server.requests[1])  # the title job now holds the only slot for ~5 s
        await asyncio.sleep(0.3)
        fake_server.script(Reply("quick answer"))
        started = time.monotonic()
        waited = None
        async for event in service.send(conversation.id, "second question"):
            if isinstance(event, TurnStarted):
                pass
            if isinstance(event, TurnFinished):
                assert event.status is MessageStatus.COMPLETE
                waited = time.monotonic() - started
        assert waited is not None and waited < 1.5  # the slow title would have held the slot for ~5 s
        turn_requests = [r for r in fake_server.requests if not is_title(r)]
        assert len(turn_requests) == 2
        await service.finish_background()  # the preempted title job was requeued, not lost
        title_requests = [r for r in fake_server.requests if is_title(r)]
        assert len(title_requests) >= 2
        assert service.conversation(conversation.id).title.startswith("A Slow Title")
    finally:
        await service.aclose()


def test_clean_title():
    assert clean_title('"Rust ownership basics."\nmore') == "Rust ownership basics"
    assert clean_title("Title: **Hello**") == "Hello"
    assert clean_title("   \n  ") is None
    assert "\x1b" not in clean_title("evil \x1b]0;x\x07 title")
    assert len(clean_title("word " * 40)) <= 60
