"""The fault matrix through the TUI (issue 13): each fault leaves the app running, the reply stored with a
final status, and the number of requests the server saw as expected."""

import openai  # noqa: F401  (imported once here, so no case's first-token clock pays for it)
import pytest
from envs import provider_config
from fakeserver import Error, Reply
from tui_helpers import send_prompt, wait_for

from chatapp.config import load_settings
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp

FAST = "[retry]\nbase_delay = 0.01\nmax_delay = 0.05\ninteractive_deadline = 5\n"

CASES = {
    "429 retry-after 1": ([Error(429, retry_after=1), Reply("later")], 2, "complete", "later"),
    "429 retry-after 86400": ([Error(429, retry_after=86400)], 1, "error", ""),
    "401": ([Error(401)], 1, "error", ""),
    "5xx until the breaker opens": ([Error(503)] * 6, 5, "error", ""),
    "cut midway": ([Reply("one two three four", cut_after=2), Reply("whole")], 2, "complete", "whole"),
    "in-band error": ([Reply("partial words", error_after=1), Reply("fine")], 2, "complete", "fine"),
    "escape and markup": ([Reply("\x1b]52;c;ZXZpbA==\x07 [/] [@click=app.quit] \ud800")], 1, "complete", None),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_tui_under_fault(name, isolated_env, fake_server):
    scripts, requests, status, text = CASES[name]
    provider_config(isolated_env, fake_server.openai_base_url, before=FAST,
                    extra="first_token_timeout = 4\ntimeout = 4\n")
    service = ChatService.open(load_settings())
    fake_server.script(*scripts)
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        screen = pilot.app.screen
        await send_prompt(pilot, "hello")
        await wait_for(lambda: getattr(screen, "_reply_worker", None) is not None
                       and screen._reply_worker.is_finished, pilot, timeout=30)
        assert pilot.app.is_running
        conversation = service.latest_conversation()
        reply = service.messages(conversation.id)[-1]
        assert reply.status.value == status
        if text is not None:
            assert reply.content == text
        assert len([r for r in fake_server.requests if r.prompt == "hello"]) == requests  # titles aside
