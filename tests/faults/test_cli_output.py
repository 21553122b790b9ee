"""`chatapp ask` output and process faults (issue 13, cases 1-3, 12-15): one line, never a traceback,
the reply row always ends with a final status."""

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from envs import clean_env
from fakeserver import Reply, refused_base_url

SECRET = "sk-test-secret-123456"


@pytest.fixture
def env(tmp_path, fake_server):
    return {**clean_env(tmp_path), "OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": fake_server.openai_base_url}


def run(env, *args, stdin=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "chatapp", *args], env=env, input=stdin, capture_output=True,
                          timeout=timeout)


def rows(env):
    db = sqlite3.connect(Path(env["XDG_DATA_HOME"]) / "chatapp" / "chatapp.db")
    try:
        return db.execute("SELECT role, status, content FROM messages ORDER BY created, seq").fetchall()
    finally:
        db.close()


def one_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text and "Task exception" not in text, text
    assert text.count("\n") == 1, text
    return text


def test_lone_surrogate_in_reply_is_printed_replaced_and_stored_complete(env, fake_server):
    fake_server.script(Reply("a\ud800b", chunks=1))
    result = run(env, "ask", "hello")
    assert result.returncode == 0, result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
    assert result.stdout.decode() == "a\ufffdb\n"
    assert rows(env)[-1] == ("assistant", "complete", "a\ufffdb")


def test_latin1_stdout_gets_what_it_can_encode(env, fake_server):
    fake_server.script(Reply("caf\u00e9 \x1b[2J \ud800 done", chunks=1))
    result = run({**env, "PYTHONIOENCODING": "latin-1"}, "ask", "hello")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode("latin-1")
    assert out.startswith("caf\u00e9 ") and out.endswith(" done\n") and "\x1b" not in out
    assert rows(env)[-1][1] == "complete"


@pytest.mark.parametrize("prompt", ["", " ", "\n"])
def test_blank_prompt_argument_is_a_usage_error_and_saves_nothing(env, fake_server, prompt):
    result = run(env, "ask", prompt)
    assert result.returncode == 2
    assert "the prompt is empty" in one_line(result.stderr)
    assert not (Path(env["XDG_DATA_HOME"]) / "chatapp" / "chatapp.db").exists() or rows(env) == []
    assert fake_server.requests == []


def test_closed_pipe_ends_the_turn_quietly_as_cancelled(env, fake_server):
    fake_server.script(Reply("word " * 400, delay=0.002))
    command = f"{sys.executable} -m chatapp ask story | head -c 20"
    result = subprocess.run(["bash", "-c", f"{command}; exit ${{PIPESTATUS[0]}}"], env=env, capture_output=True,
                            timeout=60)
    assert result.stdout == b"word word word word "
    assert result.stderr == b"", result.stderr.decode()
    assert result.returncode in (0, 141)
    role, status, content = rows(env)[-1]
    assert (role, status) == ("assistant", "cancelled")
    assert content.startswith("word word word word ")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_sigterm_and_sighup_cancel_like_sigint(env, fake_server, signum, code):
    fake_server.script(Reply("tick " * 2000, delay=0.01))
    process = subprocess.Popen([sys.executable, "-m", "chatapp", "ask", "count"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.read(10) == b"tick tick "  # the reply is streaming
    process.send_signal(signum)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == code, err.decode()
    assert "Traceback" not in err.decode()
    role, status, content = rows(env)[-1]
    assert (role, status) == ("assistant", "cancelled")
    assert content.startswith("tick tick ")


def test_missing_chatapp_config_file_is_named(env):
    result = run({**env, "CHATAPP_CONFIG": "/no/such.toml"}, "ls")
    assert result.returncode == 2
    assert "/no/such.toml" in one_line(result.stderr) and "not found" in result.stderr.decode()


def test_socks_proxy_is_supported_or_refused_in_one_line(env):
    env = {**env, "OPENAI_BASE_URL": refused_base_url(), "ALL_PROXY": f"socks5://{refused_base_url()[7:]}"}
    result = run(env, "ask", "hello")
    assert result.returncode == 1
    text = result.stderr.decode()
    assert "Traceback" not in text and "Task exception" not in text and "socksio" not in text, text
    assert all(line.startswith("chatapp: ") for line in text.splitlines()), text
    assert "cannot reach the server" in text.splitlines()[-1]


def test_ls_json_escapes_bidi_and_c1_characters(env, fake_server):
    fake_server.script(Reply("ok"))
    assert run(env, "ask", "evil \u202e txt.exe \x9b31m").returncode == 0
    result = run(env, "ls", "--json")
    assert result.returncode == 0
    assert "\u202e".encode() not in result.stdout and "\x9b".encode() not in result.stdout
    [conversation] = json.loads(result.stdout)
    assert "\u202e" in conversation["title"]  # the data is intact, only escaped on the way out

