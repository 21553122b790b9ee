"""Issue acceptance: forty `chatapp ask --continue` turns of ~150-token replies against a 2,000-token window."""

import pytest
from envs import provider_config
from fakeserver import Reply

from chatapp.cli import main
from chatapp.config import load_settings
from chatapp.context import SUMMARY_PROMPT
from chatapp.store.conversations import Store

WINDOW = 2000
SENTENCE = "The quick brown fox jumps over the lazy dog. "  # 10 cl100k tokens
SUMMARY = "SUMMARY-MARKER: the user asked numbered questions and got long answers."


def answer(request):
    first = request.messages[0]["content"] if request.messages else ""
    if first.startswith(SUMMARY_PROMPT[:40]):
        return SUMMARY
    return SENTENCE * 15


@pytest.fixture
def configured(isolated_env, fake_server, monkeypatch):
    provider_config(isolated_env, fake_server.openai_base_url, name="small", model="gpt-4",
                    extra=f"context_window = {WINDOW}", before='default_provider = "small"')
    fake_server.default = Reply(answer, chunks=5)
    return isolated_env


def cl100k():
    from chatapp.context import EncodingResolver

    return EncodingResolver(allow_download=False).load("cl100k_base")


def request_tokens(body, encoding):
    """OpenAI's documented accounting: 3 tokens per message, its role and content, and 3 priming the reply."""
    total = 3
    for message in body["messages"]:
        total += 3 + len(encoding.encode(message["role"])) + len(encoding.encode(message["content"]))
    return total


def test_forty_turns_stay_in_window_with_summaries_and_keep_every_message(configured, fake_server, capsys):
    for turn in range(40):
        args = ["ask", f"Question number {turn}: tell me more."]
        if turn:
            args.insert(1, "--continue")
        assert main(args) == 0, capsys.readouterr().err
    encoding = cl100k()
    chats = [r for r in fake_server.requests if r.path.endswith("/chat/completions")]
    turns = [r for r in chats if not r.messages[0]["content"].startswith(SUMMARY_PROMPT[:40])]
    assert len(turns) == 40
    for request in chats:
        used = request_tokens(request.body, encoding)
        assert used + request.body["max_tokens"] <= WINDOW, (used, request.body["max_tokens"])
    with_summary = [r for r in turns if SUMMARY in r.messages[0]["content"]]
    assert with_summary and with_summary[-1] is turns[-1]
    assert len(chats) > len(turns)  # summaries were requested at background priority
    store = Store.open(load_settings().paths.database)
    [conversation] = store.list_conversations()
    assert conversation.message_count == 80
    assert len(store.messages(conversation.id)) == 80


def test_oversized_prompt_is_refused_or_truncated(configured, fake_server, capsys):
    huge = "word " * 5000
    assert main(["ask", huge]) == 2
    assert "--truncate" in capsys.readouterr().err
    assert fake_server.requests == []
    assert main(["ask", "--truncate", huge]) == 0
    [request] = fake_server.requests
    assert request_tokens(request.body, cl100k()) + request.body["max_tokens"] <= WINDOW
