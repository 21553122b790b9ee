"""What a new user tripped over on the command line (issue 18), each reproduced before the fix."""

import subprocess
import sys

import pytest
from envs import clean_env, provider_config
from fakeserver import Error, Reply

from chatapp.domain import Role
from chatapp.store.conversations import Store


@pytest.fixture
def env(tmp_path):
    return clean_env(tmp_path)


@pytest.fixture
def paths(env, isolated_env):
    return isolated_env  # the same XDG dirs under tmp_path as `env`


def run(env, *args, stdin=""):
    return subprocess.run([sys.executable, "-m", "chatapp", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60)


def served(env, server):
    return {**env, "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": server.openai_base_url}


def test_piped_text_follows_the_prompt_argument(env, fake_server):
    result = run(served(env, fake_server), "ask", "summarize this:", stdin="file text\nline two\n")
    assert result.returncode == 0, result.stderr
    assert fake_server.requests[-1].prompt == "summarize this:\n\nfile text\nline two\n"


def test_an_empty_pipe_adds_nothing(env, fake_server):
    result = run(served(env, fake_server), "ask", "just this")
    assert result.returncode == 0, result.stderr
    assert fake_server.requests[-1].prompt == "just this"


def test_template_takes_piped_text_in_its_declared_variable(env, fake_server):
    result = run(served(env, fake_server), "ask", "-t", "translator", "--var", "language=French",
                 stdin="Good morning, world.")
    assert result.returncode == 0, result.stderr
    sent = fake_server.requests[-1].prompt
    assert "into French" in sent
    assert "<<<TEXT\nGood morning, world.\nTEXT>>>" in sent
    assert not sent.endswith("Good morning, world.")  # not appended outside the markers


def test_var_dash_reads_stdin_and_says_when_nothing_is_piped(env, fake_server):
    env = served(env, fake_server)
    result = run(env, "ask", "-t", "translator", "--var", "language=German", "--var", "text=-", stdin="Hello")
    assert result.returncode == 0, result.stderr
    assert "<<<TEXT\nHello\nTEXT>>>" in fake_server.requests[-1].prompt
    result = subprocess.run([sys.executable, "-m", "chatapp", "ask", "-t", "translator", "--var", "language=de",
                             "--var", "text=-"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "nothing is piped" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_ambiguous_prefix_lists_the_candidates(env, paths, fake_server):
    store = Store.open(paths.database)
    for suffix in ("aaa1", "bbb2", "ccc3"):
        conversation = store.create_conversation("openai", "gpt-4o-mini", conversation_id=f"e{suffix}")
        store.add_message(conversation.id, Role.USER, f"question {suffix}")
    store.close()
    result = run(served(env, fake_server), "ask", "--conversation", "e", "hi")
    assert result.returncode == 2
    assert "ambiguous" in result.stderr
    for suffix in ("aaa1", "bbb2", "ccc3"):
        assert f"e{suffix}" in result.stderr
    assert not fake_server.requests
    result = run(served(env, fake_server), "ask", "--conversation", "eb", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello from the fake server."


@pytest.mark.parametrize("command", [["ls"], ["doctor"], ["templates"]])
def test_a_reader_that_goes_away_is_no_traceback(env, paths, command):
    store = Store.open(paths.database)
    for n in range(3):
        store.add_message(store.create_conversation("openai", "m").id, Role.USER, f"message {n}")
    store.close()
    child = subprocess.Popen([sys.executable, "-m", "chatapp", *command], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    child.stdout.close()  # the reader is gone before chatapp writes a byte, as `| head -0` would be
    stderr = child.stderr.read().decode()
    assert child.wait(60) in (0, 141)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_remote_server_without_its_key_is_unavailable(env, paths, fake_server):
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text(
        '[providers.remote]\nkind = "openai"\nbase_url = "https://llm.example.com/v1"\n'
        'api_key_env = "REMOTE_KEY"\nmodel = "m"\n'
    )
    result = run(env, "ask", "hi")
    assert result.returncode == 2
    assert "set REMOTE_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_loopback_server_needs_no_key(env, paths, fake_server):
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text(
        f'[providers.local]\nkind = "openai"\nbase_url = "{fake_server.openai_base_url}"\nmodel = "m"\n'
    )
    result = run(env, "ask", "hi")
    assert result.returncode == 0, result.stderr
    assert fake_server.requests[-1].headers.get("authorization", "") != "Bearer REMOTE"


def test_key_said_empty_on_purpose_makes_a_remote_provider_keyless(env, paths):
    provider_config(paths, "https://llm.example.com/v1", name="open")
    text = paths.config_file.read_text().replace('api_key = "k"', 'api_key = ""')
    paths.config_file.write_text(text)
    result = run(env, "doctor")
    assert "open" in result.stdout and "unavailable" not in result.stdout


def two_providers(paths, server, top=""):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(
        f'{top}\nfallback = ["alpha", "badkey"]\n'
        f'[providers.alpha]\nkind = "openai"\nbase_url = "{server.url}/a/v1"\napi_key = "k"\nmodel = "gpt-4o-mini"\n'
        f'[providers.badkey]\nkind = "openai"\nbase_url = "{server.url}/b/v1"\napi_key = "wrong"\n'
        f'model = "gpt-4o-mini"\n'
    )


def test_an_explicit_provider_is_not_replaced_by_a_fallback(env, paths, fake_server):
    two_providers(paths, fake_server)
    fake_server.script(Error(401), match="/b")
    result = run(env, "ask", "--provider", "badkey", "hi")
    assert result.returncode == 1
    assert "falling back" not in result.stderr
    assert "Traceback" not in result.stderr
    assert [r.path for r in fake_server.requests] == ["/b/v1/chat/completions"]


def test_fallback_from_an_explicit_provider_when_the_config_consents(env, paths, fake_server):
    two_providers(paths, fake_server, top="fallback_on_explicit = true")
    fake_server.script(Error(401), match="/b")
    result = run(env, "ask", "--provider", "badkey", "hi")
    assert result.returncode == 0, result.stderr
    assert "alpha" in result.stderr  # the fallback is announced
    assert [r.path for r in fake_server.requests] == ["/b/v1/chat/completions", "/a/v1/chat/completions"]


def test_the_default_provider_still_falls_back(env, paths, fake_server):
    two_providers(paths, fake_server, top='default_provider = "badkey"')
    fake_server.script(Error(401), match="/b")
    result = run(env, "ask", "hi")
    assert result.returncode == 0, result.stderr
    assert fake_server.requests[-1].path == "/a/v1/chat/completions"


def test_an_unknown_model_with_a_large_window_gets_a_reply_budget_to_match(env, paths, fake_server):
    provider_config(paths, fake_server.openai_base_url, model="my-local-model", extra="context_window = 128000")
    result = run(env, "ask", "hi")
    assert result.returncode == 0, result.stderr
    assert fake_server.requests[-1].body["max_tokens"] == 32_000  # a quarter of the window, not 2,048


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_reply_cut_at_the_length_limit_is_an_answer(env, fake_server, kind):
    fake_server.script(Reply("The first half of a long", finish_reason="length"))
    if kind == "openai":
        env = served(env, fake_server)
    else:
        env = {**env, "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": fake_server.anthropic_base_url}
    result = run(env, "ask", "tell me everything")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The first half of a long\n"
    assert "length limit" in result.stderr and "saved" in result.stderr
