"""`chatapp export`, `import`, `show`, `ls --search`, `rm`, `rename` end to end in a subprocess."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from envs import clean_env
from fakeserver import Reply

CHATGPT = Path(__file__).parent.parent / "store" / "fixtures" / "chatgpt_conversations.json"
SECRET = "sk-test-secret-export-123456"


def run(env, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "chatapp", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60)


def ls_json(env):
    result = run(env, "ls", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def env(tmp_path):
    return clean_env(tmp_path / "one")


def test_export_import_into_an_empty_dir_and_export_again_is_identical(env, tmp_path, fake_server):
    fake_server.script(Reply("Write-ahead logging keeps readers going."), Reply("Yes."))
    chat_env = {**env, "OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": fake_server.openai_base_url}
    assert run(chat_env, "ask", "Explain WAL").returncode == 0
    assert run(chat_env, "ask", "-c", "Really?").returncode == 0
    [conversation] = ls_json(env)
    out = tmp_path / "conv.json"
    result = run(chat_env, "export", conversation["id"][:6], "--format", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert SECRET not in out.read_text()

    empty = clean_env(tmp_path / "two")
    result = run(empty, "import", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported 1 conversation (4 messages)")
    again = run(empty, "export", conversation["id"], "--format", "json")
    assert again.returncode == 0 and again.stdout == out.read_text()
    assert run(empty, "import", str(out)).stdout.startswith("imported 0 conversations (0 messages); 1 already there")
    assert len(ls_json(empty)) == 1


@pytest.mark.parametrize("content", [b'{"conversations": [{"id": "abc"', random.Random(7).randbytes(2000),
                                     b'{"some": "thing"}', b"[{\"title\": \"no mapping\"}]"])
def test_a_bad_file_exits_2_with_one_line_and_changes_nothing(env, tmp_path, content):
    assert run(env, "import", str(CHATGPT)).returncode == 0
    before = ls_json(env)
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = run(env, "import", str(bad))
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("chatapp: import: ") and "Traceback" not in result.stderr
    assert ls_json(env) == before


def test_chatgpt_import_then_search_show_rename_and_rm(env):
    result = run(env, "import", str(CHATGPT))
    assert result.returncode == 0, result.stderr
    assert "imported 3 conversations (13 messages)" in result.stdout and "skipped 5 messages" in result.stdout
    listed = ls_json(env)
    assert {c["title"] for c in listed} == {"Bread questions", "What is in this picture", "Two roots"}
    assert all(c["source"].startswith("chatgpt:") for c in listed)
    bread = next(c for c in listed if c["title"] == "Bread questions")

    hits = run(env, "ls", "--search", "crispest")
    assert hits.returncode == 0 and bread["id"] in hits.stdout and "*crispest*" in hits.stdout
    hits_json = json.loads(run(env, "ls", "--search", "crispest", "--json").stdout)
    assert [h["conversation"] for h in hits_json] == [bread["id"]]

    shown = run(env, "show", bread["id"][:8])
    assert shown.returncode == 0
    assert shown.stdout.index("How do I bake bread?") < shown.stdout.index("crispest crust")
    assert "Which flour is best?" not in shown.stdout  # another branch
    assert "## Assistant · chatgpt · gpt-4o" in shown.stdout
    assert json.loads(run(env, "show", bread["id"], "--json").stdout)["conversations"][0]["id"] == bread["id"]

    assert run(env, "rename", bread["id"], "My", "bread").returncode == 0
    renamed = next(c for c in ls_json(env) if c["id"] == bread["id"])
    assert renamed["title"] == "My bread" and renamed["title_source"] == "user"

    refused = run(env, "rm", bread["id"])  # no terminal to confirm in
    assert refused.returncode == 2 and len(ls_json(env)) == 3
    assert run(env, "rm", bread["id"], "--yes").returncode == 0
    assert bread["id"] not in [c["id"] for c in ls_json(env)]
    assert run(env, "ls", "--search", "crispest").stdout.strip() == "no messages match"
    missing = run(env, "show", "zzzz")
    assert missing.returncode == 2 and "no conversation matches" in missing.stderr


def test_open_and_continue_start_the_tui_on_a_conversation(isolated_env, monkeypatch):
    import chatapp.tui.app
    from chatapp.cli import main
    from chatapp.config import load_settings
    from chatapp.domain import Role
    from chatapp.store.conversations import Store

    store = Store.open(load_settings().paths.database)
    older = store.create_conversation()
    store.add_message(older.id, Role.USER, "older")
    newer = store.create_conversation()
    store.add_message(newer.id, Role.USER, "newer")
    store.close()
    calls = []
    monkeypatch.setattr(chatapp.tui.app, "run", lambda settings, **kwargs: calls.append(kwargs) or 0)
    assert main(["open", older.id[:8]]) == 0
    assert calls[-1]["conversation_id"] == older.id
    assert main(["-c"]) == 0
    assert calls[-1]["latest"] is True
    assert main(["open", "zzzz"]) == 2
