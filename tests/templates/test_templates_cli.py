"""`chatapp ask --template` end to end: the rendered system prompt reaches both wire formats."""

import json
import subprocess
import sys

import pytest
from envs import clean_env

TUTOR = """
name = "tutor"
version = 2
role = "system"
description = "A patient tutor"
text = "You are a patient tutor of {{topic}}. Answer at {{level}} level."
[variables.topic]
required = true
[variables.level]
default = "beginner"
"""


@pytest.fixture
def env(tmp_path):
    base = clean_env(tmp_path)
    folder = tmp_path / "config" / "chatapp" / "templates"
    folder.mkdir(parents=True)
    (folder / "tutor-2.toml").write_text(TUTOR)
    (folder / "broken.toml").write_text("name = \n")
    return base


def run(env, *args, stdin=""):
    return subprocess.run([sys.executable, "-m", "chatapp", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_user_template_becomes_the_system_prompt(env, fake_server, kind):
    if kind == "openai":
        env.update(OPENAI_API_KEY="k", OPENAI_BASE_URL=fake_server.openai_base_url)
    else:
        env.update(ANTHROPIC_API_KEY="k", ANTHROPIC_BASE_URL=fake_server.anthropic_base_url)
    result = run(env, "ask", "--template", "tutor", "--var", "topic=rust", "What is ownership?")
    assert result.returncode == 0, result.stderr
    body = fake_server.requests[-1].body
    expected = "You are a patient tutor of rust. Answer at beginner level."
    if kind == "openai":
        assert body["messages"][0] == {"role": "system", "content": expected}
        assert body["messages"][1] == {"role": "user", "content": "What is ownership?"}
    else:
        assert body["system"] == expected
        assert body["messages"] == [{"role": "user", "content": "What is ownership?"}]
    # the system prompt stays with the conversation
    assert run(env, "ask", "-c", "And borrowing?").returncode == 0
    follow_up = fake_server.requests[-1].body
    if kind == "openai":
        assert follow_up["messages"][0] == {"role": "system", "content": expected}
    else:
        assert follow_up["system"] == expected
    listed = json.loads(run(env, "ls", "--json").stdout)
    assert listed[0]["messages"] == 4


def test_missing_required_variable_exits_2_and_sends_nothing(env, fake_server):
    env.update(OPENAI_API_KEY="k", OPENAI_BASE_URL=fake_server.openai_base_url)
    result = run(env, "ask", "--template", "tutor", "What is ownership?")
    assert result.returncode == 2
    assert "topic" in result.stderr and result.stderr.count("\n") == 1
    assert fake_server.requests == []
    assert json.loads(run(env, "ls", "--json").stdout) == []


def test_user_role_template_is_the_message(env, fake_server):
    env.update(OPENAI_API_KEY="k", OPENAI_BASE_URL=fake_server.openai_base_url)
    result = run(env, "ask", "-t", "translator", "--var", "language=French", "--var", "text=Good morning")
    assert result.returncode == 0, result.stderr
    [message] = fake_server.requests[-1].body["messages"]
    assert message["role"] == "user" and "French" in message["content"] and "Good morning" in message["content"]


def test_templates_list_and_show_report_broken_file(env):
    result = run(env, "templates")
    assert result.returncode == 0
    assert "tutor@2" in result.stdout and "concise@1" in result.stdout
    assert "broken.toml" in result.stderr
    shown = run(env, "templates", "show", "tutor")
    assert "topic" in shown.stdout and "{{topic}}" in shown.stdout
    assert run(env, "templates", "show", "nope").returncode == 2
