"""The schema, as a list of versions, and the code that moves a database from one to the next.

Each upgrade of an existing database runs in one transaction, after a copy of the file is made beside it
(`chatapp.db.v1-backup`): a failed or interrupted upgrade leaves the old file as it was.

Version 2 makes conversations trees: every message has a parent (the previous message, for rows written
by version 1), a conversation has a current leaf, and the screen shows the path from the root to it. It
adds a full-text index of message text kept in step by triggers, the message count and first prompt per
conversation (so listing 10,000 conversations reads one table), who set the title, and the source id of
an imported conversation (so importing a file twice does not duplicate it).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

SCHEMA_VERSION = 2

_V1 = """
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    title TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    provider TEXT,
    model TEXT,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX conversations_updated ON conversations(updated DESC);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    error TEXT,
    token_count INTEGER,
    token_basis TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE TABLE summaries (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    first_message_id TEXT NOT NULL,
    last_message_id TEXT NOT NULL,
    content TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    created REAL NOT NULL
);
CREATE INDEX summaries_conversation ON summaries(conversation_id, created);
CREATE TABLE summary_cache (
    input_hash TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Messages are rebuilt with an INTEGER PRIMARY KEY: the full-text index refers to rows by rowid, and a
# table without one may have its rowids renumbered by VACUUM, which would point the index at the wrong text.
_V2 = """
CREATE TABLE messages_v2 (
    num INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id TEXT,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    error TEXT,
    token_count INTEGER,
    token_basis TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (conversation_id, seq)
);
INSERT INTO messages_v2 (id, conversation_id, parent_id, seq, role, content, status, provider, model, input_tokens,
    output_tokens, error, token_count, token_basis, created, updated)
SELECT m.id, m.conversation_id,
    (SELECT p.id FROM messages p WHERE p.conversation_id = m.conversation_id AND p.seq < m.seq
     ORDER BY p.seq DESC LIMIT 1),
    m.seq, m.role, m.content, m.status, m.provider, m.model, m.input_tokens, m.output_tokens, m.error,
    m.token_count, m.token_basis, m.created, m.updated
FROM messages m ORDER BY m.conversation_id, m.seq;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
CREATE INDEX messages_parent ON messages(conversation_id, parent_id);

ALTER TABLE conversations ADD COLUMN current_leaf TEXT;
ALTER TABLE conversations ADD COLUMN title_source TEXT;
ALTER TABLE conversations ADD COLUMN source_id TEXT;
ALTER TABLE conversations ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN first_prompt TEXT;
CREATE UNIQUE INDEX conversations_source ON conversations(source_id) WHERE source_id IS NOT NULL;
UPDATE conversations SET
    current_leaf = (SELECT id FROM messages m WHERE m.conversation_id = conversations.id ORDER BY seq DESC LIMIT 1),
    message_count = (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id),
    first_prompt = (SELECT substr(content, 1, 200) FROM messages m WHERE m.conversation_id = conversations.id
                    AND m.role = 'user' ORDER BY seq LIMIT 1),
    title_source = CASE WHEN title IS NULL THEN NULL ELSE 'generated' END;

CREATE TRIGGER messages_counted AFTER INSERT ON messages BEGIN
    UPDATE conversations SET message_count = message_count + 1,
        first_prompt = CASE WHEN first_prompt IS NULL AND new.role = 'user' THEN substr(new.content, 1, 200)
                       ELSE first_prompt END
    WHERE id = new.conversation_id;
END;
CREATE TRIGGER messages_uncounted AFTER DELETE ON messages BEGIN
    UPDATE conversations SET message_count = message_count - 1 WHERE id = old.conversation_id;
END;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content='messages', content_rowid='num', tokenize='unicode61 remove_diacritics 2'
);
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.num, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.num, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.num, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.num, new.content);
END;
"""

MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2}


class SchemaError(sqlite3.DatabaseError):
    """The database is from a newer chatapp, or an upgrade failed (the file is left as it was)."""


def migrate(conn: sqlite3.Connection, path: Path | None = None) -> None:
    """Bring the schema to SCHEMA_VERSION; an existing database is copied to `<name>.v<N>-backup` first."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaError(f"database schema {version} is newer than this chatapp understands ({SCHEMA_VERSION})")
    if version == SCHEMA_VERSION:
        return
    if version >= 1 and path is not None:
        backup(conn, path.with_name(f"{path.name}.v{version}-backup"))
    conn.execute("BEGIN IMMEDIATE")
    try:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _statements(MIGRATIONS[target]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def backup(conn: sqlite3.Connection, target: Path) -> None:
    """A consistent copy of the open database (SQLite's online backup), private to the user."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(target, 0o600)
    copy = sqlite3.connect(target)
    try:
        with copy:
            conn.backup(copy)
    finally:
        copy.close()
    with contextlib.suppress(OSError):
        os.chmod(target, 0o600)


def _statements(script: str) -> list[str]:
    """Split a script into statements; a trigger body's inner semicolons stay with it."""
    statements: list[str] = []
    current = ""
    for part in script.split(";"):
        current = f"{current};{part}" if current else part
        if sqlite3.complete_statement(current + ";"):
            if current.strip():
                statements.append(current.strip())
            current = ""
    return statements
