"""The fault matrix (issue 13): every provider fault the scripted server can produce, driven through
`chatapp ask` (in process, for speed) and the TUI. For each: the exit code, no traceback, the last stderr
line, the stored status and text, and the number of requests the server saw."""

import json
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
interactive_deadline = 7
"""
TIMEOUTS = "first_token_timeout = 3\ntimeout = 3\n"

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
    "silent": ([Reply(accept_then_silent=True, stall_seconds=5)] * 6, 1, None, "error", "", None),
    "headers only then ok": ([Reply(accept_then_silent=True, stall_seconds=5), Reply("ok")], 0, 2, "complete",
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


# --- disk full mid-reply, through `chatapp ask` -----------------------------------------------


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """XDG_DATA_HOME on a 1 MB tmpfs when this machine lets us mount one (CI runs as root), else on the normal
    disk with the store's writes refused past 300 kB, as a full disk refuses them (a test double)."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                             capture_output=True).returncode == 0
    monkeypatch.setenv("XDG_DATA_HOME", str(mount))
    if not mounted:
        from chatapp.store.conversations import Store

        real = Store.update_message

        def full_after_300k(self, message_id, **changes):
            content = changes.get("content")
            if content is not None and len(content.encode()) > 300_000:
                error = sqlite3.OperationalError("database or disk is full")
                error.sqlite_errorcode = 13
                raise error
            return real(self, message_id, **changes)

        monkeypatch.setattr(Store, "update_message", full_after_300k)
    yield mount
    if mounted:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_mid_reply_keeps_the_flushed_text_and_says_what_was_lost(configured, fake_server, small_disk,
                                                                           capsys, monkeypatch):
    from chatapp.config import load_settings

    monkeypatch.setattr("chatapp.store.reply_writer.FLUSH_SECONDS", 0)
    fake_server.script(Reply("word " * 250_000, chunks=100))
    result = main(["ask", "hello"])
    _, err = capsys.readouterr()
    assert result == 1 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("chatapp: disk full: ")
    assert "bytes of the reply could not be saved" in err.splitlines()[-1]
    with sqlite3.connect(load_settings().paths.database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = db.execute("SELECT content FROM messages WHERE role = 'assistant'").fetchone()[0]
    assert stored.startswith("word word") and len(stored) < 2_000_000


# --- after a session: no key anywhere, every file private -------------------------------------


def test_after_a_session_keys_are_nowhere_and_everything_is_private(isolated_env, fake_server, tmp_path, capsys,
                                                                    monkeypatch):
    import os
    import stat

    secret = "sk-live-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    old_umask = os.umask(0o022)
    try:
        fake_server.script(Error(401, message=f"Incorrect API key provided: {secret}"), Reply("fine"))
        main(["ask", "first"])
        fake_server.script(Reply("second answer"))
        monkeypatch.setenv("OPENAI_API_KEY", secret)
        assert main(["ask", "-c", "second"]) == 0
        assert main(["ls", "--json"]) == 0
        assert main(["stats"]) == 0
        exports = tmp_path / "exports"
        exports.mkdir()
        assert main(["export", "--all", "--format", "json", "-o", str(exports / "all.json")]) == 0
        latest = json.loads((exports / "all.json").read_text())
        assert latest, "the export holds the session's conversations"
        assert main(["export", "--format", "md", "-o", str(exports / "one.md"),
                     _first_conversation_id(latest)]) == 0
        assert main(["show", "--json", _first_conversation_id(latest)]) == 0
    finally:
        os.umask(old_umask)
    out, err = capsys.readouterr()
    assert secret not in out + err
    assert {p.name for p in (tmp_path / "exports").iterdir()} == {"all.json", "one.md"}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    data = isolated_env.data_dir
    created = [data, *data.rglob("*")]
    for path in created:
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def _first_conversation_id(export: object) -> str:
    """The id of a conversation in an `export --all` document, whatever its envelope."""
    text = json.dumps(export)
    import re

    match = re.search(r'"id": "([0-9a-f]{6,})"', text)
    assert match, text[:300]
    return match.group(1)
