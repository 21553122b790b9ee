"""Storage faults (issue 13, cases 4-8 and 11): one clear line, nothing lost, nothing exposed."""

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from chatapp.cli import main
from chatapp.domain import MessageStatus, Role
from chatapp.store import live_writers
from chatapp.store.conversations import Store
from chatapp.store.db import SCHEMA_VERSION
from chatapp.store.reply_writer import ReplyNotSaved, ReplyWriter


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def seeded(paths, text="kept words"):
    store = Store.open(paths.database)
    conversation = store.create_conversation("p", "m")
    store.add_message(conversation.id, Role.USER, text)
    store.close()
    return conversation.id


def ls(capsys):
    code = main(["ls", "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# --- 8: the data dir path is a file ---------------------------------------------------------


def test_data_dir_occupied_by_a_file_is_one_line(isolated_env, capsys):
    isolated_env.data_dir.parent.mkdir(parents=True)
    isolated_env.data_dir.write_text("not a folder")
    code, _, err = ls(capsys)
    assert code == 1 and err.count("\n") == 1
    assert "is a file, not a folder" in err
    assert isolated_env.data_dir.read_text() == "not a folder"


# --- 11: private files ------------------------------------------------------------------------


def test_new_data_is_private_whatever_the_umask(isolated_env, capsys):
    old = os.umask(0o000)
    try:
        store = Store.open(isolated_env.database)
        conversation = store.create_conversation()
        store.add_message(conversation.id, Role.USER, "secret diary")
        wal = isolated_env.database.with_name("chatapp.db-wal")
        shm = isolated_env.database.with_name("chatapp.db-shm")
        assert wal.exists() and shm.exists()
        assert mode(isolated_env.data_dir) == 0o700
        assert {mode(p) for p in (isolated_env.database, wal, shm)} == {0o600}
        store.close()
    finally:
        os.umask(old)


def test_loose_modes_are_tightened_on_open_with_a_notice(isolated_env, capsys):
    seeded(isolated_env)
    isolated_env.data_dir.chmod(0o755)
    isolated_env.database.chmod(0o644)
    code, _, err = ls(capsys)
    assert code == 0
    assert "readable by other users" in err
    assert mode(isolated_env.data_dir) == 0o700 and mode(isolated_env.database) == 0o600


def test_config_holding_a_key_readable_by_others_is_warned(isolated_env, capsys):
    isolated_env.config_dir.mkdir(parents=True)
    isolated_env.config_file.write_text('[providers.p]\nkind = "openai"\nmodel = "m"\napi_key = "sk-abcdefgh"\n')
    isolated_env.config_file.chmod(0o644)
    code, _, err = ls(capsys)
    assert code == 0 and "holds an api_key and other users can read it" in err and "sk-abcdefgh" not in err
    isolated_env.config_file.chmod(0o600)
    assert ls(capsys)[2] == ""


# --- 4: damaged, truncated, newer databases --------------------------------------------------


def _assert_set_aside(paths, original: bytes):
    aside = list(paths.data_dir.glob("chatapp.db.corrupt-*"))
    assert [p.read_bytes() for p in aside if not p.name.endswith(("-wal", "-shm"))] == [original]


def test_damaged_header_is_set_aside_untouched_and_a_fresh_database_starts(isolated_env, capsys):
    seeded(isolated_env)
    raw = bytearray(isolated_env.database.read_bytes())
    raw[0:16] = b"garbage garbage!"
    isolated_env.database.write_bytes(raw)
    code, out, err = ls(capsys)
    assert code == 0 and out.strip() == "[]"
    assert err.count("\n") == 1 and "is damaged" in err and "moved it aside untouched" in err
    _assert_set_aside(isolated_env, bytes(raw))
    assert ls(capsys)[2] == ""  # said once


def test_damaged_page_behind_a_valid_header_is_one_line(isolated_env, capsys):
    seeded(isolated_env, "x" * 20000)  # overflow pages
    with sqlite3.connect(isolated_env.database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    raw = bytearray(isolated_env.database.read_bytes())
    for page in range(1, len(raw) // page_size):
        raw[page * page_size:(page + 1) * page_size] = b"\xa5" * page_size
    isolated_env.database.write_bytes(raw)
    code, _, err = ls(capsys)
    assert code in (0, 1) and err.count("\n") == 1 and "damaged" in err
    _assert_set_aside(isolated_env, bytes(raw))
    assert ls(capsys)[0] == 0


def test_truncated_file_is_one_line(isolated_env, capsys):
    seeded(isolated_env, "y" * 20000)
    with sqlite3.connect(isolated_env.database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    isolated_env.database.with_name("chatapp.db-wal").unlink(missing_ok=True)
    raw = isolated_env.database.read_bytes()[:50]
    isolated_env.database.write_bytes(raw)
    _, _, err = ls(capsys)
    assert err.count("\n") == 1 and "damaged" in err
    _assert_set_aside(isolated_env, raw)


def test_newer_schema_is_refused_in_one_line_and_left_alone(isolated_env, capsys):
    seeded(isolated_env)
    with sqlite3.connect(isolated_env.database) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    before = isolated_env.database.read_bytes()
    code, _, err = ls(capsys)
    assert code == 1 and err.count("\n") == 1 and "newer than this chatapp" in err
    assert isolated_env.database.read_bytes() == before
    assert not list(isolated_env.data_dir.glob("*.corrupt-*"))


# --- 5: a write lock held by another process --------------------------------------------------

_HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO kv (key, value) VALUES ('held', '1')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def lock_holder(isolated_env):
    seeded(isolated_env)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(isolated_env.database), "60"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield holder
    holder.kill()
    holder.wait()


def test_reading_needs_no_write_lock(isolated_env, lock_holder, capsys):
    started = time.monotonic()
    code, out, _ = ls(capsys)
    assert code == 0 and '"messages": 1' in out
    assert time.monotonic() - started < 5


def test_a_writer_waits_a_stated_time_then_fails_in_one_line(isolated_env, lock_holder, capsys, monkeypatch):
    isolated_env.config_dir.mkdir(parents=True)
    isolated_env.config_file.write_text('lock_timeout = 0.5\n[providers.p]\nkind = "openai"\nmodel = "m"\n'
                                        'base_url = "http://127.0.0.1:9/v1"\n')
    isolated_env.config_file.chmod(0o600)
    code = main(["ask", "hello"])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1, err
    assert "is locked" in err and "0.5 s" in err and "Traceback" not in err


# --- 6: only orphaned `streaming` replies are relabeled ---------------------------------------


def test_a_reply_streamed_by_a_live_process_is_not_relabeled(isolated_env):
    store = Store.open(isolated_env.database)
    conversation = store.create_conversation()
    mine = store.add_message(conversation.id, Role.ASSISTANT, "live", MessageStatus.STREAMING)
    other = Store.open(isolated_env.database)
    assert other.close_streaming() == 0
    assert other.get_message(mine.id).status is MessageStatus.STREAMING
    other.close()
    store.close()


def test_a_reply_whose_writer_died_is_relabeled(isolated_env):
    store = Store.open(isolated_env.database)
    conversation = store.create_conversation()
    dead = store.add_message(conversation.id, Role.ASSISTANT, "half", MessageStatus.STREAMING)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.connection.execute("UPDATE live_writers SET pid = ? WHERE message_id = ?", (int(gone.stdout), dead.id))
    reused = store.add_message(conversation.id, Role.ASSISTANT, "pid reused", MessageStatus.STREAMING)
    store.connection.execute("UPDATE live_writers SET started = 'earlier' WHERE message_id = ?", (reused.id,))
    assert store.close_streaming() == 2
    assert store.get_message(dead.id).status is MessageStatus.INCOMPLETE
    assert store.get_message(dead.id).content == "half"
    assert store.connection.execute("SELECT COUNT(*) FROM live_writers").fetchone()[0] == 0
    store.close()


def test_a_finished_reply_releases_its_claim(isolated_env):
    store = Store.open(isolated_env.database)
    conversation = store.create_conversation()
    reply = store.add_message(conversation.id, Role.ASSISTANT, "", MessageStatus.STREAMING)
    assert live_writers.orphans(store.connection, [reply.id]) == []
    store.update_message(reply.id, content="done", status=MessageStatus.COMPLETE)
    assert store.connection.execute("SELECT COUNT(*) FROM live_writers").fetchone()[0] == 0
    store.close()


# --- 7: disk full mid-reply -------------------------------------------------------------------


class _FullDiskStore:
    """A store whose disk fills after `room` bytes of reply text (for machines where tmpfs cannot be mounted)."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.saved = ""
        self.path = "chatapp.db"

    def without_waiting(self):
        return contextlib.nullcontext()

    def update_message(self, message_id, *, content=None, **_):
        if content is not None and len(content.encode()) > self.room:
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = 13
            raise error
        if content is not None:
            self.saved = content


def test_disk_full_keeps_what_was_flushed_and_says_how_much_was_lost(monkeypatch):
    monkeypatch.setattr("chatapp.store.reply_writer.FLUSH_SECONDS", 0)
    store = _FullDiskStore(room=10)
    writer = ReplyWriter(store, "m1")
    writer.append("12345")
    writer.append("67890")
    with pytest.raises(ReplyNotSaved, match=r"disk full: 5 bytes of the reply could not be saved"):
        writer.append("abcde")
    assert store.saved == "1234567890"


def test_doctor_still_reports_a_newer_database(isolated_env, capsys):
    seeded(isolated_env)
    with sqlite3.connect(isolated_env.database) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    code = main(["doctor"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert "database:" in out and "newer than this chatapp" in out
