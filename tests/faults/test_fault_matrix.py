"""The fault matrix (issue 13): every provider fault the scripted server can produce, driven through
`chatapp ask` (in process, for speed) and the TUI. For each: the exit code, no traceback, the last stderr
line, the stored status and text, and the number of requests the server saw."""

import sqlite3

import openai  # noqa: F401  (imported once here, so no case's first-token clock pays for it)
import pytest
from envs import provider_config
from fakeserver import Disconnect, Error, Reply

from chatapp.cli import main

FAST = """
[retry]
base_delay = 0.01
max_delay = 0.05
interactive_deadline = 5
"""
TIMEOUTS = "first_token_timeout = 2\ntimeout = 2\n"

# name: (scripts, exit code, requests, final status, stored text, words in the last stderr line)
CASES = {
    "ok": ([Reply("all fine")], 0, 1, "complete", "all fine", None),
    "429 retry-after 1": ([Error(429, retry_after=1), Reply("later")], 0, 2, "complete", "later", None),
    "429 retry-after 30": ([Error(429, retry_after=30)], 1, 1, "error", "", "rate limited"),
    "429 retry-after 300": ([Error(429, retry_after=300)], 1, 1, "error", "", "rate limited"),
    "429 retry-after 86400": ([Error(429, retry_after=86400)], 1, 1, "error", "", "rate limited"),
    "5xx burst then ok": ([Error(500), Error(502), Error(503), Reply("back")], 0, 4, "complete", "back", None),
    "5xx until the breaker opens": ([Error(503)] * 6, 1, 5, "error", "", "circuit open"),
    "401": ([Error(401)], 1, 1, "error", "", "invalid API key"),
    "403": ([Error(403)], 1, 1, "error", "", None),
    "404": ([Error(404)], 1, 1, "error", "", None),
    "disconnect": ([Disconnect(), Reply("again")], 0, 2, "complete", "again", None),
    "silent": ([Reply(accept_then_silent=True, stall_seconds=4)] * 6, 1, None, "error", "", None),
    "headers only then ok": ([Reply(accept_then_silent=True, stall_seconds=4), Reply("ok")], 0, 2, "complete",
                             "ok", None),
    "drip": ([Reply("slow but sure", delay=0.02)], 0, 1, "complete", "slow but sure", None),
    "cut midway": ([Reply("one two three four", cut_after=2), Reply("whole")], 0, 2, "complete", "whole", None),
    "missing terminator": ([Reply("half", no_terminator=True, finish_reason=None), Reply("full")], 0, 2,
                           "complete", "full", None),
    "in-band error": ([Reply("partial words here", error_after=2), Reply("fine")], 0, 2, "complete", "fine",
                      None),
    "malformed JSON": ([Reply("a b c", raw_after=(1, b"data: {not json\n\n")), Reply("ok")], None, None, None,
                       None, None),
    "0xff bytes": ([Reply("a b c", raw_after=(1, b"data: \xff\xfe{\n\n")), Reply("ok")], None, None, None, None,
                   None),
    "lone surrogate": ([Reply("x\ud800y", chunks=1)], 0, 1, "complete", "x\ufffdy", None),
    # 2 requests may be seen: the 20 MB reply overflows the window and a summary is asked for in the background
    "20 MB chunk": ([Reply("z" * 20_000_000, chunks=1)], 0, None, "complete", None, None),
}


@pytest.fixture
def configured(isolated_env, fake_server):
    provider_config(isolated_env, fake_server.openai_base_url, extra=TIMEOUTS, before=FAST)
    isolated_env.config_file.chmod(0o600)
    return isolated_env


def last_reply(paths):
    with sqlite3.connect(paths.database) as db:
        return db.execute("SELECT status, content FROM messages WHERE role = 'assistant' "
                          "ORDER BY created DESC, seq DESC LIMIT 1").fetchone()


@pytest.mark.parametrize("name", list(CASES))
def test_ask_under_fault(name, configured, fake_server, capsys):
    scripts, code, requests, status, text, words = CASES[name]
    fake_server.script(*scripts)
    result = main(["ask", "hello"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Task exception" not in err, err
    assert all(line.startswith("chatapp: ") for line in err.splitlines()), err
    stored_status, stored_text = last_reply(configured)
    if code is None:  # a garbled stream: either skipped or restarted, but it ends and is stored final
        assert result in (0, 1) and stored_status in ("complete", "incomplete", "error")
        return
    assert result == code, err
    if requests is not None:
        assert len(fake_server.requests) == requests, [r.path for r in fake_server.requests]
    assert stored_status == status
    if text is not None:
        assert stored_text == text
        if code == 0:
            assert out.endswith(text + "\n")
    if words is not None:
        assert words in err.splitlines()[-1], err
