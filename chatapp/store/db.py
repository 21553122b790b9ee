"""Open the SQLite database in WAL mode and bring its schema up to date.

WAL keeps every committed row through a process kill; `synchronous=NORMAL` is durable against
application crashes, which is what a chat client needs, at a fraction of FULL's fsync cost.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, str] = {
    1: """
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
    """,
}


class StoreError(Exception):
    """The database cannot be opened or is from a newer chatapp."""


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Only the event-loop thread may use the connection: a thread racing close() crashed the process.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot open the database: {exc}") from None
    conn.row_factory = sqlite3.Row
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"database schema {version} is newer than this chatapp understands ({SCHEMA_VERSION})")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        for statement in _statements(_MIGRATIONS[target]):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
