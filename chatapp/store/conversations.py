"""Conversations and messages: the only code that reads or writes their rows."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chatapp.domain import Conversation, Message, MessageStatus, Role
from chatapp.store import live_writers
from chatapp.store.db import LOCK_TIMEOUT_SECONDS, connect, is_busy, is_damage, quick_check
from chatapp.textsafe import storable

AT_LEAF = object()  # add_message's default parent: the conversation's current leaf


def new_id() -> str:
    return uuid.uuid4().hex[:12]


class Store:
    """Synchronous SQLite access; every call is one short transaction (well under a millisecond)."""

    def __init__(self, conn: sqlite3.Connection, notices: list[str] | None = None,
                 read_only: str | None = None) -> None:
        self._conn = conn
        self.notices: list[str] = notices or []  # what opening did that the user should hear about once
        self.read_only = read_only  # why nothing can be saved, when the data dir cannot be written
        self.path = Path(conn.execute("PRAGMA database_list").fetchone()[2] or ":memory:")

    @classmethod
    def open(cls, path: Path, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> Store:
        opened = connect(path, lock_timeout)
        return cls(opened.connection, opened.notices, opened.read_only)

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def without_waiting(self) -> Iterator[None]:
        """Writes inside fail at once (SQLITE_BUSY) instead of waiting while another process holds the lock."""
        waits = self._conn.execute("PRAGMA busy_timeout").fetchone()[0]
        self._conn.execute("PRAGMA busy_timeout = 0")
        try:
            yield
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {int(waits)}")

    # --- conversations --------------------------------------------------------------------

    def create_conversation(
        self, provider: str | None = None, model: str | None = None, title: str | None = None,
        meta: dict[str, Any] | None = None, conversation_id: str | None = None,
    ) -> Conversation:
        now = time.time()
        conversation = Conversation(
            id=conversation_id or new_id(), title=title, created=now, updated=now, provider=provider, model=model,
            meta=meta or {}, title_source="user" if title else None,
        )
        self._conn.execute(
            "INSERT INTO conversations (id, title, title_source, created, updated, provider, model, meta) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (conversation.id, title, conversation.title_source, now, now, provider, model,
             json.dumps(conversation.meta)),
        )
        return conversation

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = self._conn.execute(
            f"{_CONVERSATION_COLUMNS} WHERE id = ?", (conversation_id,)
        ).fetchone()
        return _conversation(row) if row else None

    def find_conversation(self, id_or_prefix: str) -> Conversation | None:
        """An exact id, or a unique prefix of one (what `chatapp ls` prints is enough to type)."""
        exact = self.get_conversation(id_or_prefix)
        if exact or not id_or_prefix:
            return exact
        rows = self._conn.execute(
            "SELECT id FROM conversations WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
            (id_or_prefix.replace("%", "\\%").replace("_", "\\_") + "%",),
        ).fetchall()
        return self.get_conversation(rows[0]["id"]) if len(rows) == 1 else None

    def conversations_with_prefix(self, prefix: str, limit: int) -> list[Conversation]:
        """Conversations whose id starts with `prefix`, newest first (at most `limit`)."""
        rows = self._conn.execute(
            "SELECT id FROM conversations WHERE id LIKE ? ESCAPE '\\' ORDER BY updated DESC LIMIT ?",
            (prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", limit),
        ).fetchall()
        return [c for c in (self.get_conversation(row["id"]) for row in rows) if c is not None]

    def list_conversations(self, limit: int | None = None) -> list[Conversation]:
        sql = f"{_CONVERSATION_COLUMNS} ORDER BY updated DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        cursor = self._conn.cursor()
        cursor.row_factory = None  # plain tuples: a third of the cost of sqlite3.Row for this many rows
        return [_conversation(row) for row in cursor.execute(sql, params)]

    def latest_conversation(self) -> Conversation | None:
        items = self.list_conversations(limit=1)
        return items[0] if items else None

    def set_title(self, conversation_id: str, title: str) -> bool:
        """A generated title: it never replaces one the user gave (or one an import brought)."""
        return self._conn.execute(
            "UPDATE conversations SET title = ?, title_source = 'generated' WHERE id = ? "
            "AND (title_source IS NULL OR title_source = 'generated')", (storable(title), conversation_id),
        ).rowcount == 1

    def rename(self, conversation_id: str, title: str) -> bool:
        """The user's title: it wins over generated ones from now on."""
        return self._conn.execute(
            "UPDATE conversations SET title = ?, title_source = 'user' WHERE id = ?", (storable(title), conversation_id)
        ).rowcount == 1

    def delete_conversation(self, conversation_id: str) -> bool:
        """Delete a conversation, its messages and summaries. `secure_delete` (db.py) zeroes the freed pages;
        merging the full-text index drops the words it held (SQLite 3.40's FTS5 keeps deleted terms in old
        segments until a merge); the checkpoint moves it all out of the write-ahead log."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            deleted = self._conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount
            if deleted:
                self._conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
        if deleted:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted == 1

    def update_meta(self, conversation_id: str, **changes: Any) -> None:
        row = self._conn.execute("SELECT meta FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            return
        meta = json.loads(row["meta"] or "{}")
        meta.update(changes)
        self._conn.execute("UPDATE conversations SET meta = ? WHERE id = ?", (json.dumps(meta), conversation_id))

    def set_provider(self, conversation_id: str, provider: str, model: str) -> None:
        self._conn.execute(
            "UPDATE conversations SET provider = ?, model = ? WHERE id = ?", (provider, model, conversation_id)
        )

    # --- messages ---------------------------------------------------------------------------

    def add_message(
        self, conversation_id: str, role: Role, content: str, status: MessageStatus = MessageStatus.COMPLETE,
        provider: str | None = None, model: str | None = None, *, parent_id: str | object | None = AT_LEAF,
    ) -> Message:
        """Append a message below `parent_id` (by default the current leaf); it becomes the current leaf.
        A parent that already has children makes the new message a sibling of them: nothing is replaced."""
        now = time.time()
        message_id = new_id()
        content = storable(content)
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            seq, leaf = self._conn.execute(
                "SELECT (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id = :c), "
                "(SELECT current_leaf FROM conversations WHERE id = :c)", {"c": conversation_id},
            ).fetchone()
            parent = leaf if parent_id is AT_LEAF else parent_id
            self._conn.execute(
                "INSERT INTO messages (id, conversation_id, parent_id, seq, role, content, status, provider, model, "
                "created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (message_id, conversation_id, parent, seq, role.value, content, status.value, provider, model, now,
                 now),
            )
            if status is MessageStatus.STREAMING:
                live_writers.register(self._conn, message_id)
            self._conn.execute(
                "UPDATE conversations SET updated = ?, current_leaf = ? WHERE id = ?",
                (now, message_id, conversation_id),
            )
        return Message(message_id, conversation_id, role, content, status, now, now, provider, model,
                       parent_id=parent if isinstance(parent, str) else None)

    def update_message(
        self, message_id: str, *, content: str | None = None, status: MessageStatus | None = None,
        input_tokens: int | None = None, output_tokens: int | None = None, error: str | None = None,
        provider: str | None = None, model: str | None = None,
    ) -> None:
        sets: list[str] = ["updated = ?"]
        values: list[Any] = [time.time()]
        for column, value in (
            ("content", storable(content) if content is not None else None),
            ("status", status.value if status is not None else None),
            ("input_tokens", input_tokens),
            ("output_tokens", output_tokens),
            ("error", storable(error) if error is not None else None),
            ("provider", provider),
            ("model", model),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(value)
        values.append(message_id)
        if status is None or status is MessageStatus.STREAMING:
            self._conn.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", values)
            return
        with self._conn:  # the final status and the end of this process's claim on the reply, together
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", values)
            live_writers.release(self._conn, message_id)

    def get_message(self, message_id: str) -> Message | None:
        row = self._conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return _message(row) if row else None

    def messages(self, conversation_id: str) -> list[Message]:
        """The path from the root to the current leaf: what the screen shows and the model is sent."""
        rows = self._conn.execute(
            "WITH RECURSIVE path(id, depth) AS ("
            " SELECT current_leaf, 0 FROM conversations WHERE id = ? AND current_leaf IS NOT NULL"
            " UNION ALL SELECT m.parent_id, path.depth + 1 FROM messages m JOIN path ON m.id = path.id"
            " WHERE m.parent_id IS NOT NULL"
            ") SELECT m.* FROM path JOIN messages m ON m.id = path.id ORDER BY path.depth DESC",
            (conversation_id,),
        )
        return [_message(row) for row in rows]

    def all_messages(self, conversation_id: str) -> list[Message]:
        """Every message of every branch, oldest first (a parent always comes before its children)."""
        rows = self._conn.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,))
        return [_message(row) for row in rows]

    # --- branches ---------------------------------------------------------------------------

    def siblings(self, message_id: str) -> list[Message]:
        """The message and the others with the same parent (other replies, other edits), oldest first."""
        rows = self._conn.execute(
            "SELECT s.* FROM messages m JOIN messages s ON s.conversation_id = m.conversation_id "
            "AND s.parent_id IS m.parent_id WHERE m.id = ? ORDER BY s.seq", (message_id,),
        )
        return [_message(row) for row in rows]

    def branch_counts(self, conversation_id: str) -> dict[str | None, int]:
        """{parent id: number of children} for the parents with more than one child (None: several roots)."""
        rows = self._conn.execute(
            "SELECT parent_id, COUNT(*) FROM messages WHERE conversation_id = ? GROUP BY parent_id HAVING COUNT(*) > 1",
            (conversation_id,),
        )
        return {row[0]: row[1] for row in rows}

    def show_branch(self, message_id: str) -> str | None:
        """Make the branch through `message_id` current: its newest descendant becomes the leaf. Returns the
        conversation id (None for an unknown message)."""
        row = self._conn.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            return None
        leaf = self._conn.execute(
            "WITH RECURSIVE down(id, depth) AS (SELECT ?, 0 UNION ALL"
            " SELECT (SELECT c.id FROM messages c WHERE c.parent_id = down.id ORDER BY c.seq DESC LIMIT 1),"
            " depth + 1 FROM down WHERE down.id IS NOT NULL)"
            " SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1", (message_id,),
        ).fetchone()[0]
        self._conn.execute("UPDATE conversations SET current_leaf = ? WHERE id = ?", (leaf, row[0]))
        return str(row[0])

    def set_current_leaf(self, conversation_id: str, message_id: str | None) -> None:
        """The next message is added below `message_id` (None: a new root); e.g. to regenerate a reply,
        make its user message the leaf and add the new reply, which becomes the old one's sibling."""
        self._conn.execute("UPDATE conversations SET current_leaf = ? WHERE id = ?", (message_id, conversation_id))

    def message_seq(self, message_id: str) -> int | None:
        row = self._conn.execute("SELECT seq FROM messages WHERE id = ?", (message_id,)).fetchone()
        return row["seq"] if row else None

    def recent_prompts(self, limit: int) -> list[str]:
        """The newest distinct user prompts across conversations, oldest first (for prompt history)."""
        try:
            rows = self._conn.execute(
                "SELECT content FROM messages WHERE role = 'user' GROUP BY content ORDER BY MAX(created) DESC "
                "LIMIT ?", (limit,)).fetchall()
        except sqlite3.DatabaseError as exc:  # a damaged page: no recall, but the app still opens
            if not is_damage(exc):
                raise
            return []
        return [row["content"] for row in rows][::-1]

    def problems(self, limit: int = 5) -> list[str]:
        """What `PRAGMA quick_check` finds wrong with the file (empty when it is sound)."""
        return quick_check(self._conn, limit)

    def close_streaming(self) -> int:
        """Replies left `streaming` by a process that is gone become `incomplete` (their text is kept); a
        reply another live process is streaming is left alone. Reads first, so a database with nothing to
        relabel is never written (opening to read takes no write lock). A damaged page skips it: the reads
        that need that page say so, and `doctor` finds it."""
        if self.read_only:
            return 0
        try:
            streaming = [row[0] for row in self._conn.execute(
                "SELECT id FROM messages WHERE status = ?", (MessageStatus.STREAMING.value,))]
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            return 0
        orphaned = live_writers.orphans(self._conn, streaming)
        if not orphaned:
            return 0
        busy_timeout = self._conn.execute("PRAGMA busy_timeout").fetchone()[0]
        self._conn.execute("PRAGMA busy_timeout = 100")  # a writer holds the lock: the next open relabels
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                for message_id in orphaned:
                    self._conn.execute("UPDATE messages SET status = ? WHERE id = ? AND status = ?",
                                       (MessageStatus.INCOMPLETE.value, message_id, MessageStatus.STREAMING.value))
                    live_writers.release(self._conn, message_id)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            return 0
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout)}")
        return len(orphaned)

    def template_results(self, name: str) -> list[tuple[int, int, int, int, int]]:
        """Per template version: (version, conversations, completed replies, input tokens, output tokens),
        over conversations that recorded this template in their meta, counting only the messages made
        after it was applied (`template_from_seq` / `user_template_from_seq`)."""
        rows = self._conn.execute(
            "SELECT COALESCE(json_extract(c.meta, '$.template.version'), "
            "json_extract(c.meta, '$.user_template.version')) AS version, COUNT(DISTINCT c.id), "
            "COALESCE(SUM(m.role = 'assistant' AND m.status = 'complete'), 0), "
            "COALESCE(SUM(m.input_tokens), 0), COALESCE(SUM(m.output_tokens), 0) "
            "FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq >= "
            "CASE WHEN json_extract(c.meta, '$.template.name') = ? "
            "THEN COALESCE(json_extract(c.meta, '$.template_from_seq'), 0) "
            "ELSE COALESCE(json_extract(c.meta, '$.user_template_from_seq'), 0) END "
            "WHERE json_extract(c.meta, '$.template.name') = ? OR json_extract(c.meta, '$.user_template.name') = ? "
            "GROUP BY version ORDER BY version",
            (name, name, name),
        )
        return [tuple(row) for row in rows if row[0] is not None]

    def next_seq(self, conversation_id: str) -> int:
        """The sequence number the next message of the conversation will get."""
        return int(self._conn.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()[0])

    # --- key/value (stats and other small state) -------------------------------------------

    def get_value(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_value(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def connection(self) -> sqlite3.Connection:
        """For sibling store modules (summaries, search, export) only."""
        return self._conn


# The first prompt is read only where it stands in for a missing title (a third of a listing's reading time).
_CONVERSATION_COLUMNS = ("SELECT id, title, created, updated, provider, model, message_count, meta, title_source, "
                         "source_id, current_leaf, CASE WHEN title IS NULL OR title = '' THEN first_prompt END "
                         "FROM conversations")


def _conversation(row: sqlite3.Row | tuple[Any, ...]) -> Conversation:
    """A row of _CONVERSATION_COLUMNS. Listing 10,000 builds 10,000 of these: the fields are passed by position
    (a frozen dataclass's keyword call cost half as much again) and an empty meta is not parsed."""
    (conversation_id, title, created, updated, provider, model, count, meta, title_source, source_id, leaf,
     first_prompt) = tuple(row)
    if not title and first_prompt:
        title = first_words(first_prompt)
    return Conversation(conversation_id, title, created, updated, provider, model, count,
                        json.loads(meta) if meta and meta != "{}" else {}, title_source, source_id, leaf)


def first_words(text: str, limit: int = 48) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"], conversation_id=row["conversation_id"], role=Role(row["role"]), content=row["content"],
        status=MessageStatus(row["status"]), created=row["created"], updated=row["updated"],
        provider=row["provider"], model=row["model"], input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"], error=row["error"], parent_id=row["parent_id"],
    )
