"""Schema version 1 (a file written by chatapp before conversations were trees) opens in place."""

import itertools
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from chatapp.domain import MessageStatus, Role
from chatapp.store.conversations import Store
from chatapp.store.db import StoreError
from chatapp.store.migrations import SCHEMA_VERSION

V1_FILE = Path(__file__).parent / "fixtures" / "schema_v1.db"


@pytest.fixture
def v1_db(tmp_path):
    target = tmp_path / "chatapp.db"
    shutil.copy(V1_FILE, target)
    return target


def test_a_version_1_file_is_migrated_and_every_message_is_there(v1_db):
    before = sqlite3.connect(v1_db)
    assert before.execute("PRAGMA user_version").fetchone()[0] == 1
    old_rows = before.execute("SELECT id, content, status FROM messages ORDER BY conversation_id, seq").fetchall()
    before.close()

    store = Store.open(v1_db)
    assert store.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conversations = store.list_conversations()
    assert len(conversations) == 2
    found = [(m.id, m.content, m.status.value) for c in conversations for m in store.all_messages(c.id)]
    assert sorted(found) == sorted(old_rows)
    starter = next(c for c in conversations if c.title == "Sourdough starter")
    assert starter.title_source == "generated" and starter.message_count == 5
    path = store.messages(starter.id)
    assert [m.role for m in path] == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT, Role.ASSISTANT]
    assert path[0].parent_id is None and all(b.parent_id == a.id for a, b in itertools.pairwise(path))
    assert path[-1].content == "It is hungry: feed it twice a day." and path[3].status is MessageStatus.INCOMPLETE
    untitled = next(c for c in conversations if c is not starter)
    assert untitled.title == "Translate 'wal mode' to French"  # the first prompt stands in for a title
    assert store.connection.execute("SELECT COUNT(*) FROM summaries").fetchone()[0] == 1
    # the full-text index was built from the old rows
    hits = store.connection.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'acetone'").fetchall()
    assert len(hits) == 1
    # new turns continue the branch
    added = store.add_message(starter.id, Role.USER, "thanks")
    assert added.parent_id == path[-1].id


def test_a_backup_copy_is_made_before_the_upgrade(v1_db):
    original = V1_FILE.read_bytes()
    Store.open(v1_db).close()
    backup = v1_db.with_name("chatapp.db.v1-backup")
    assert backup.exists() and os.stat(backup).st_mode & 0o777 == 0o600
    conn = sqlite3.connect(backup)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 7
    assert len(original) > 0


def test_a_failed_upgrade_leaves_the_file_at_version_1(v1_db, monkeypatch):
    from chatapp.store import migrations

    monkeypatch.setitem(migrations.MIGRATIONS, 2, migrations.MIGRATIONS[2] + "\nCREATE TABLE kv (x);")
    with pytest.raises(StoreError):
        Store.open(v1_db)
    conn = sqlite3.connect(v1_db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 7
    assert "parent_id" not in [r[1] for r in conn.execute("PRAGMA table_info(messages)")]


def test_a_newer_schema_is_refused_in_one_line(tmp_path):
    path = tmp_path / "chatapp.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(path)
