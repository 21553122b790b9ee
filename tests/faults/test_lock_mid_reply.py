"""The write lock held by another process while a reply streams (issue 13, case 5 continued): one line that
says how long the database was busy, the reply's text kept (flushed once the lock frees), and the row never
left `streaming`; the TUI keeps running meanwhile."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from envs import clean_env, provider_config
from fakeserver import Reply

from chatapp.config import Paths

REPLY = "tick " * 400
_HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def hold_lock(database: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(database), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait()


def one_line(process: subprocess.Popen[bytes], err: bytes, code: int) -> str:
    """What the process said on stderr: one line, no traceback; its exit status is `code`."""
    text = err.decode()
    assert process.returncode == code, text
    assert "Traceback" not in text and text.count("\n") == 1, text
    return text


def last_reply(database: Path) -> tuple[str, str] | None:
    db = sqlite3.connect(database, timeout=30)
    try:
        return db.execute("SELECT status, content FROM messages WHERE role = 'assistant' "
                          "ORDER BY created DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def setup(tmp_path, fake_server):
    env = clean_env(tmp_path)
    paths = Paths(config_dir=tmp_path / "config" / "chatapp", data_dir=tmp_path / "data" / "chatapp",
                  cache_dir=tmp_path / "cache" / "chatapp")
    provider_config(paths, fake_server.openai_base_url, before='default_provider = "p"\nlock_timeout = 0.5')
    paths.config_file.chmod(0o600)
    return env, paths


@pytest.mark.parametrize("hold_after_streaming_started", [1.5, 6.0])
def test_ask_keeps_the_reply_while_the_lock_is_held_and_says_so_in_one_line(setup, fake_server,
                                                                                hold_after_streaming_started):
    """1.5 s: the lock frees mid-reply; 6 s: it is still held when the reply ends, and the final write waits."""
    env, paths = setup
    fake_server.script(Reply(REPLY, delay=0.005))
    process = subprocess.Popen([sys.executable, "-m", "chatapp", "ask", "count"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.read(10) == b"tick tick "
    holder = hold_lock(paths.database, hold_after_streaming_started)
    try:
        out, err = process.communicate(timeout=90)
    finally:
        release(holder)
    text = one_line(process, err, 0)
    assert "database" in text and "busy for" in text, text
    assert out.endswith(b"tick \n")  # (what read(10) buffered beyond its 10 bytes is not in `out`)
    assert last_reply(paths.database) == ("complete", REPLY)


def tui_app(paths, fake_server, reply: Reply, lock_timeout: float):
    from chatapp.config import load_settings
    from chatapp.service import ChatService
    from chatapp.tui.app import ChatApp

    provider_config(paths, fake_server.openai_base_url, before=f'default_provider = "p"\nlock_timeout = {lock_timeout}')
    paths.config_file.chmod(0o600)
    fake_server.script(reply)
    service = ChatService.open(load_settings())
    return ChatApp(service, service.target_for(None))


async def send(pilot, text: str) -> None:
    from chatapp.tui.widgets.prompt import PromptInput

    prompt = pilot.app.screen.query_one(PromptInput)
    prompt.focus()
    prompt.load_text(text)
    await pilot.press("enter")


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await pilot.pause(0.05)


async def test_the_tui_streams_on_while_the_lock_is_held_and_says_so_inline(isolated_env, fake_server):
    from chatapp.tui.widgets.message import AssistantMessage, NoticeMessage

    app = tui_app(isolated_env, fake_server, Reply(REPLY, delay=0.01), lock_timeout=0.5)
    async with app.run_test() as pilot:
        await send(pilot, "count")
        await until(pilot, lambda: (row := last_reply(isolated_env.database)) is not None and len(row[1]) > 20)
        holder = await asyncio.to_thread(hold_lock, isolated_env.database, 2.0)
        try:
            shown = len(app.screen.query_one(AssistantMessage).text)
            await pilot.pause(0.8)  # the lock is held: the screen still gets the stream
            assert len(app.screen.query_one(AssistantMessage).text) > shown
            await until(pilot, lambda: not app.screen.replying)
        finally:
            release(holder)
        notices = [str(n.render()) for n in app.screen.query(NoticeMessage)]
        assert any("busy for" in n for n in notices), notices
        assert app.screen.query_one(AssistantMessage).text == REPLY
    assert last_reply(isolated_env.database) == ("complete", REPLY)


async def test_esc_while_the_final_save_waits_on_the_lock_ends_the_reply_at_once_and_saves_it_later(
        isolated_env, fake_server):
    """The stream has ended but another process holds the write lock, so the reply's final save waits: Esc
    ends the reply on screen at once (not after `lock_timeout`), and the text is saved, `cancelled`, as soon
    as the lock frees."""
    from chatapp.domain import MessageStatus
    from chatapp.tui.widgets.message import AssistantMessage

    short = "tock " * 40
    # The lock is taken in the pause after the first 10 pieces.
    app = tui_app(isolated_env, fake_server, Reply(short, stall_after=10, stall_seconds=1.0), lock_timeout=30)
    async with app.run_test() as pilot:
        await send(pilot, "count")
        await until(pilot, lambda: "tock" in "".join(view.text for view in app.screen.query(AssistantMessage)))
        holder = await asyncio.to_thread(hold_lock, isolated_env.database, 120)
        try:
            view = app.screen.query_one(AssistantMessage)
            await until(pilot, lambda: view.text == short)  # the stream ended; the final save waits on the lock
            await pilot.pause(0.3)
            assert app.screen.replying
            pressed = asyncio.get_running_loop().time()
            await pilot.press("escape")
            await until(pilot, lambda: not app.screen.replying, timeout=5)
            assert asyncio.get_running_loop().time() - pressed < 5
            assert view.status is MessageStatus.CANCELLED
            assert last_reply(isolated_env.database)[0] == "streaming"  # its writer lives, waiting for the lock
        finally:
            release(holder)
        await until(pilot, lambda: last_reply(isolated_env.database) == ("cancelled", short))
        assert app.is_running


def test_ctrl_c_in_ask_while_the_final_save_waits_on_the_lock_says_what_was_not_saved(setup, fake_server):
    """`ask` cannot outlive the lock: after Ctrl+C it waits `lock_timeout` for the cancelled reply's save,
    then says in one line how much of the reply was not saved, and exits 130."""
    env, paths = setup
    paths.config_file.write_text(paths.config_file.read_text().replace("lock_timeout = 0.5", "lock_timeout = 1"))
    short = "tock " * 40
    fake_server.script(Reply(short, stall_after=10, stall_seconds=1.0))
    process = subprocess.Popen([sys.executable, "-m", "chatapp", "ask", "count"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.read(5) == b"tock "
    holder = hold_lock(paths.database, 120)
    try:
        assert process.stdout.read(len(short) - 5) == short[5:].encode()  # the stream ended; the save waits
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
        status, saved = last_reply(paths.database)
        assert status == "streaming"  # relabeled by the next open: its writer is gone
    finally:
        release(holder)
    text = one_line(process, err, 130)
    assert "not saved" in text and f" {len(short) - len(saved)} bytes" in text, text
    assert short.startswith(saved)



def test_quitting_the_tui_while_a_cancelled_reply_waits_on_the_lock_says_what_was_not_saved(
        isolated_env, fake_server, monkeypatch, capsys):
    """The app cannot outlive the lock either: quitting waits `lock_timeout` for the save, then `chatapp`
    says on stderr, once the screen is gone, how much of the reply was not saved."""
    from chatapp.config import load_settings
    from chatapp.tui import app as tui
    from chatapp.tui.widgets.message import AssistantMessage

    short = "tock " * 40
    provider_config(isolated_env, fake_server.openai_base_url, before='default_provider = "p"\nlock_timeout = 1')
    isolated_env.config_file.chmod(0o600)
    fake_server.script(Reply(short, stall_after=10, stall_seconds=1.0))
    holders: list[subprocess.Popen[str]] = []

    async def session(app) -> None:
        async with app.run_test() as pilot:
            await send(pilot, "count")
            await until(pilot, lambda: "tock" in "".join(view.text for view in app.screen.query(AssistantMessage)))
            holders.append(await asyncio.to_thread(hold_lock, isolated_env.database, 120))
            view = app.screen.query_one(AssistantMessage)
            await until(pilot, lambda: view.text == short)
            await pilot.press("escape")
            await until(pilot, lambda: not app.screen.replying)

    monkeypatch.setattr(tui.ChatApp, "run", lambda app: asyncio.run(session(app)))
    try:
        assert tui.run(load_settings()) == 0
        status, saved = last_reply(isolated_env.database)
    finally:
        for holder in holders:
            release(holder)
    _out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("chatapp: ") and f" {len(short) - len(saved)} bytes" in err and "not saved" in err, err
    assert status == "streaming"  # relabeled by the next open: its writer is gone
