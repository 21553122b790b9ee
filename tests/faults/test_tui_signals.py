"""Case 15 for the TUI (issue 13): SIGTERM and SIGHUP while the TUI streams a reply end the reply `cancelled`
with its text flushed, and the process exits 128 + the signal, as `chatapp ask` does.

The real `chatapp` process runs in a pseudo-terminal against the scripted server.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import sqlite3
import struct
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from envs import clean_env
from fakeserver import Reply

TIMEOUT = 60.0


class PtyApp:
    """`python -m chatapp` in a pty of 100x30; a thread keeps reading what it draws (so it never blocks)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: nothing but exec
            os.execve(sys.executable, [sys.executable, "-m", "chatapp"], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.screen = bytearray()
        self.reading = threading.Event()  # cleared: the terminal stops reading (frozen, or its link gone)
        self.reading.set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            self.reading.wait()
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.screen += chunk

    def wait_for_output(self, needle: bytes) -> None:
        wait_until(lambda: needle in self.screen, f"{needle!r} on screen")

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait_exit(self, within: float = TIMEOUT) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        raise AssertionError(f"chatapp did not exit; screen tail: {bytes(self.screen[-600:])!r}")

    def close(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        if self.fd >= 0:
            os.close(self.fd)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def last_reply(database: Path) -> tuple[str, str] | None:
    if not database.exists():
        return None
    db = sqlite3.connect(database, timeout=10)
    try:
        return db.execute("SELECT status, content FROM messages WHERE role = 'assistant' "
                          "ORDER BY created DESC, seq DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # not migrated yet
        return None
    finally:
        db.close()


def start_streaming_reply(tmp_path, fake_server) -> tuple[PtyApp, Path]:
    """chatapp in a pty, a ~30 s reply streaming into its store; the caller closes the app."""
    fake_server.script(Reply("tick " * 3000, delay=0.01))
    env = {**clean_env(tmp_path), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_server.openai_base_url,
           "TERM": "xterm-256color"}
    database = tmp_path / "data" / "chatapp" / "chatapp.db"
    app = PtyApp(env)
    try:
        app.wait_for_output(b"New chat")
        app.type("count\r")
        wait_until(lambda: (row := last_reply(database)) is not None and row[0] == "streaming"
                   and row[1].startswith("tick tick "), "the reply streaming into the store")
    except BaseException:
        app.close()
        raise
    return app, database


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_end_a_streaming_tui_reply_cancelled(tmp_path, fake_server, signum, code):
    app, database = start_streaming_reply(tmp_path, fake_server)
    try:
        os.kill(app.pid, signum)
        assert app.wait_exit() == code
        status, content = last_reply(database) or ("", "")
        assert status == "cancelled"
        assert content.startswith("tick tick ")
        assert b"Traceback" not in app.screen
    finally:
        app.close()


def test_a_terminal_that_hangs_up_ends_the_reply_cancelled(tmp_path, fake_server):
    """The terminal itself goes away (its master side closed): the kernel sends SIGHUP, and writing the
    screen's last frame fails; the reply still ends `cancelled` with its text."""
    app, database = start_streaming_reply(tmp_path, fake_server)
    try:
        os.close(app.fd)
        app.fd = -1
        app.wait_exit()
        status, content = last_reply(database) or ("", "")
        assert status == "cancelled"
        assert content.startswith("tick tick ")
    finally:
        app.close()


def test_a_signal_while_the_terminal_reads_nothing_still_ends_the_process(tmp_path, fake_server):
    """Nothing reads the terminal any more (a tmux pane killed, an SSH link gone): Textual's writer blocks on it
    and its shutdown waited for ever, leaving the process behind. The reply is saved, and the process ends."""
    app, database = start_streaming_reply(tmp_path, fake_server)
    try:
        app.reading.clear()
        time.sleep(1.0)  # the reply keeps drawing into the terminal until its buffer is full
        os.kill(app.pid, signal.SIGHUP)
        assert app.wait_exit(within=20.0) == 129
        status, content = last_reply(database) or ("", "")
        assert status == "cancelled"
        assert content.startswith("tick tick ")
    finally:
        app.reading.set()
        app.close()
