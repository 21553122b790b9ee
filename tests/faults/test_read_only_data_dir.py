"""A data dir that cannot be written (issue 13, storage tests): every command says so in one line; `ls`,
`show` and `export` still read. Root ignores file modes, so the dir is made read-only the way a read-only
disk is: a read-only bind mount, in a mount namespace of the command's own (`unshare -m`), so nothing
outside that one process sees it and nothing needs undoing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from envs import clean_env, provider_config

from chatapp.config import Paths
from chatapp.domain import Role
from chatapp.store.conversations import Store

_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def _mount_namespaces_work(probe: Path) -> str | None:
    """None when a private read-only bind mount can be made here; otherwise why not."""
    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    probe.mkdir()
    result = subprocess.run(["unshare", "-m", "sh", "-c", _READ_ONLY + " 2>&1", str(probe), "sh", "-c",
                             'touch "$0/x" 2>/dev/null && echo writable || echo read-only', str(probe)],
                            capture_output=True, text=True, timeout=30)
    if result.stdout.strip() != "read-only":
        return f"a read-only bind mount in a private mount namespace is not allowed here: {result.stderr.strip()}"
    return None


@pytest.fixture
def seeded(tmp_path, fake_server):
    reason = _mount_namespaces_work(tmp_path / "probe")
    if reason:
        pytest.skip(reason)
    env = clean_env(tmp_path)
    paths = Paths(config_dir=tmp_path / "config" / "chatapp", data_dir=tmp_path / "data" / "chatapp",
                  cache_dir=tmp_path / "cache" / "chatapp")
    provider_config(paths, fake_server.openai_base_url, before='default_provider = "p"')
    paths.config_file.chmod(0o600)
    store = Store.open(paths.database)
    conversation = store.create_conversation("p", "gpt-4o-mini", title="kept safe")
    store.add_message(conversation.id, Role.USER, "what is kept")
    store.add_message(conversation.id, Role.ASSISTANT, "everything")
    store.close()
    (tmp_path / "import.json").write_text(json.dumps({"format": "chatapp", "version": 1, "conversations": []}))
    return env, paths, conversation.id


def run_read_only(env: dict[str, str], data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["unshare", "-m", "sh", "-c", _READ_ONLY, str(data_dir), sys.executable, "-m", "chatapp",
                           *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def digest(data_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data_dir.iterdir())}


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "is not writable" in result.stderr and "read-only file system" in result.stderr, result.stderr
    return result.stderr


def test_reading_commands_still_read_and_say_it_once(seeded, tmp_path):
    env, paths, conversation_id = seeded
    before = digest(paths.data_dir)
    listed = run_read_only(env, paths.data_dir, "ls")
    one_line(listed)
    assert listed.returncode == 0 and "kept safe" in listed.stdout
    shown = run_read_only(env, paths.data_dir, "show", conversation_id)
    one_line(shown)
    assert shown.returncode == 0 and "what is kept" in shown.stdout and "everything" in shown.stdout
    exported = run_read_only(env, paths.data_dir, "export", "--all", "-o", str(tmp_path / "out.json"))
    one_line(exported)
    assert exported.returncode == 0 and "everything" in (tmp_path / "out.json").read_text()
    doctor = run_read_only(env, paths.data_dir, "doctor")
    one_line(doctor)
    assert "integrity: ok" in doctor.stdout
    assert digest(paths.data_dir) == before


@pytest.mark.parametrize("args", [("ask", "hello"), ("rename", "{id}", "new title"), ("rm", "-y", "{id}"),
                                  ("import", "{tmp}/import.json"), ("open", "{id}"), ("-c",),
                                  ("doctor", "--salvage")])
def test_writing_commands_fail_in_one_line_and_change_nothing(seeded, tmp_path, fake_server, args):
    env, paths, conversation_id = seeded
    before = digest(paths.data_dir)
    result = run_read_only(env, paths.data_dir,
                           *(a.format(id=conversation_id, tmp=tmp_path) for a in args))
    one_line(result)
    assert result.returncode == 1
    assert fake_server.requests == []
    assert digest(paths.data_dir) == before


# --- the same through file modes: an unprivileged user whose data dir is r-x ---------------------------


def _as_nobody(*command: str) -> list[str]:
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]


@pytest.fixture
def nobody_home(fake_server):
    """A home for user 65534 (nobody) outside the root-only pytest tmp dir, with a seeded database; then
    its data dir is made r-x, which binds nobody but not root."""
    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv(1) on this machine")
    base = Path(tempfile.mkdtemp(prefix="chatapp-nobody-"))
    try:
        base.chmod(0o755)
        env = {**clean_env(base), "HOME": str(base / "home")}
        paths = Paths(config_dir=base / "config" / "chatapp", data_dir=base / "data" / "chatapp",
                      cache_dir=base / "cache" / "chatapp")
        provider_config(paths, fake_server.openai_base_url, before='default_provider = "p"')
        paths.config_file.chmod(0o600)
        store = Store.open(paths.database)
        conversation = store.create_conversation("p", "gpt-4o-mini", title="kept safe")
        store.add_message(conversation.id, Role.USER, "what is kept")
        store.close()
        for path in (base, *base.rglob("*")):
            os.chown(path, 65534, 65534)
        probe = subprocess.run(_as_nobody(sys.executable, "-c", "import chatapp.cli"), env=env, capture_output=True,
                               text=True, timeout=60)
        if probe.returncode != 0:
            pytest.skip(f"user 65534 cannot run this checkout's Python: {probe.stderr.strip()[-200:]}")
        paths.data_dir.chmod(0o500)
        yield env, paths
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_data_dir_the_user_may_not_write_reads_and_refuses_in_one_line(nobody_home, fake_server):
    env, paths = nobody_home
    before = digest(paths.data_dir)
    listed = subprocess.run(_as_nobody(sys.executable, "-m", "chatapp", "ls"), env=env, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0 and "kept safe" in listed.stdout, listed.stderr
    assert listed.stderr.count("\n") == 1 and "is not writable (permission denied)" in listed.stderr
    asked = subprocess.run(_as_nobody(sys.executable, "-m", "chatapp", "ask", "hello"), env=env,
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert asked.returncode == 1 and "Traceback" not in asked.stderr
    assert asked.stderr.count("\n") == 1 and "is not writable (permission denied)" in asked.stderr
    assert fake_server.requests == []
    assert digest(paths.data_dir) == before
