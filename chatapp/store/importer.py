"""Import a file of conversations: chatapp's JSON export or ChatGPT's `conversations.json`.

The file is read streaming (ijson), one conversation at a time, so a file of hundreds of MB needs little
memory. Everything is written in one transaction: a file that turns out truncated, foreign or hostile
halfway through leaves the store as it was. Inside it the per-row triggers (search index, message count)
are set aside and their work done once at the end, which made the database's share of an import about
three times cheaper; the rollback of a failed import brings the triggers back with everything else.
A conversation already in the store (same id, or same source id for one imported from elsewhere) is
skipped, so importing a file twice changes nothing.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ijson

from chatapp.domain import ImportFileError, MessageStatus, Role
from chatapp.store import chatgpt_format
from chatapp.store.conversations import Store
from chatapp.store.export_format import EXPORT_FORMAT, EXPORT_VERSION
from chatapp.store.json_stream import TooDeep, top_level_items
from chatapp.textsafe import storable

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ROLES = {role.value for role in Role}
_STATUSES = {status.value for status in MessageStatus} - {MessageStatus.STREAMING.value}
_TITLE_SOURCES = {None, "user", "generated", "imported"}
_IMPORT_CACHE_KIB = -32 * 1024  # negative: KiB, as SQLite's cache_size takes it


@dataclass
class ImportReport:
    format: str
    imported: int = 0
    already_there: int = 0
    messages: int = 0
    skipped: chatgpt_format.Skipped = field(default_factory=chatgpt_format.Skipped)


def import_file(store: Store, path: Path) -> ImportReport:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        kind = _sniff(handle, path)
        report = ImportReport(format=kind)
        conn = store.connection
        cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
        # The new rows land all over the indexes (random ids): a bigger page cache for the import's length
        # kept their pages in memory (a third less time inserting on a 30 MB export); restored below.
        conn.execute(f"PRAGMA cache_size = {_IMPORT_CACHE_KIB}")
        try:
            _import(conn, handle, path, kind, report)
        finally:
            conn.execute(f"PRAGMA cache_size = {int(cache_size)}")
    return report


def _import(conn: sqlite3.Connection, handle: IO[bytes], path: Path, kind: str, report: ImportReport) -> None:
    """One transaction: everything or nothing (see the module docstring)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        bulk = _BulkLoad(conn)
        records = _chatgpt_records(handle, report) if kind == "chatgpt" else _chatapp_records(handle)
        for number, record in enumerate(records, start=1):
            try:
                _insert(conn, _validated(record), report)
            except (ValueError, TypeError, KeyError, sqlite3.IntegrityError) as exc:
                raise ImportFileError(f"{path}: conversation {number}: {_one_line(exc)}") from None
        if report.imported + report.already_there == 0:
            raise ImportFileError(f"{path}: the file holds no conversations")
        bulk.finish()
    except ImportFileError as exc:
        conn.execute("ROLLBACK")
        message = str(exc)
        raise ImportFileError(message if message.startswith(f"{path}:") else f"{path}: {message}") from None
    except TooDeep as exc:
        conn.execute("ROLLBACK")
        raise ImportFileError(f"{path}: {exc}") from None
    except ijson.IncompleteJSONError as exc:
        conn.execute("ROLLBACK")
        raise ImportFileError(f"{path}: the JSON ends early or is malformed ({_one_line(exc)})") from None
    except (ijson.JSONError, UnicodeDecodeError, ValueError) as exc:
        conn.execute("ROLLBACK")
        raise ImportFileError(f"{path}: not valid JSON ({_one_line(exc)})") from None
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _sniff(handle: IO[bytes], path: Path) -> str:
    head = handle.read(4096)
    handle.seek(0)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "chatgpt"
    if stripped.startswith(b"{"):
        return "chatapp"
    raise ImportFileError(f"{path}: not a chatapp or ChatGPT export (it does not start with a JSON object or array)")


def _chatgpt_records(handle: IO[bytes], report: ImportReport) -> Iterator[dict[str, Any]]:
    for number, (_, _, item) in enumerate(top_level_items(handle), start=1):
        try:
            yield chatgpt_format.conversation_record(item, report.skipped)
        except chatgpt_format.NotChatGPT as exc:
            raise ImportFileError(f"item {number} is not a ChatGPT conversation: {exc}") from None


def _chatapp_records(handle: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Conversations of a chatapp export, one at a time; the header may come before or after them (a
    key-sorted dump puts it after), so it is checked as it arrives and again at the end."""
    header: dict[str, Any] = {}
    for kind, key, value in top_level_items(handle):
        if kind == "member" and key in ("format", "version"):
            header[key] = value
            _check_header(header, final=False)
        elif kind == "item" and key == "conversations":
            _check_header(header, final=False)
            yield value
    _check_header(header, final=True)


def _check_header(header: dict[str, Any], *, final: bool) -> None:
    if "format" in header and header["format"] != EXPORT_FORMAT:
        raise ImportFileError(f"not a chatapp export (format {str(header['format'])[:40]!r})")
    if "version" in header and header["version"] != EXPORT_VERSION:
        raise ImportFileError(f"export version {header['version']} is not one this chatapp reads ({EXPORT_VERSION})")
    if final and "format" not in header:
        raise ImportFileError("not a chatapp or ChatGPT export (no \"format\" field)")


def _validated(record: Any) -> dict[str, Any]:
    """Types and references checked before anything is written; raises ValueError naming the problem."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    _expect_id(record.get("id"), "conversation id")
    _expect(record.get("title"), (str, type(None)), "title")
    if record.get("title_source") not in _TITLE_SOURCES:
        raise ValueError(f"title_source {str(record.get('title_source'))[:20]!r} is not known")
    _expect(record.get("source"), (str, type(None)), "source")
    for key in ("created", "updated"):
        _expect(record.get(key), (int, float), key)
    for key in ("provider", "model"):
        _expect(record.get(key), (str, type(None)), key)
    _expect(record.get("meta", {}), dict, "meta")
    messages = record.get("messages")
    if not isinstance(messages, list):
        raise ValueError(f"messages has the wrong type ({type(messages).__name__})")
    seen: set[str] = set()
    for index, message in enumerate(messages, start=1):
        where = f"message {index}"
        _expect(message, dict, where)
        _expect_id(message.get("id"), f"{where} id")
        if message["id"] in seen:
            raise ValueError(f"{where}: id {message['id']} appears twice")
        parent = message.get("parent")
        if parent is not None and parent not in seen:
            raise ValueError(f"{where}: its parent is not an earlier message of the conversation")
        seen.add(message["id"])
        if message.get("role") not in _ROLES:
            raise ValueError(f"{where}: role {str(message.get('role'))[:20]!r} is not one of {sorted(_ROLES)}")
        if message.get("status") not in _STATUSES:
            raise ValueError(f"{where}: status {str(message.get('status'))[:20]!r} is not one of {sorted(_STATUSES)}")
        _expect(message.get("content"), str, f"{where} content")
        for key in ("provider", "model", "error"):
            _expect(message.get(key), (str, type(None)), f"{where} {key}")
        for key in ("created", "updated"):
            _expect(message.get(key), (int, float), f"{where} {key}")
        usage = message.get("usage")
        _expect(usage, (dict, type(None)), f"{where} usage")
        if usage:
            for key in ("input_tokens", "output_tokens"):
                _expect(usage.get(key), (int, type(None)), f"{where} usage {key}")
    leaf = record.get("current_leaf")
    if leaf is not None and leaf not in seen:
        raise ValueError("current_leaf is not one of its messages")
    summaries = record.get("summaries", [])
    _expect(summaries, list, "summaries")
    for index, summary in enumerate(summaries, start=1):
        _expect(summary, dict, f"summary {index}")
        _expect_id(summary.get("id"), f"summary {index} id")
        for key in ("first_message", "last_message", "content", "input_hash"):
            _expect(summary.get(key), str, f"summary {index} {key}")
        _expect(summary.get("created"), (int, float), f"summary {index} created")
    return record


def _expect(value: Any, kinds: type | tuple[type, ...], what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ValueError(f"{what} has the wrong type ({type(value).__name__})")


def _expect_id(value: Any, what: str) -> None:
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"{what} is missing or not an id")


class _BulkLoad:
    """Drops the per-row insert triggers for the rest of the transaction; `finish` indexes the new rows
    in one statement and puts the triggers back. The conversations' counts are written by `_insert`."""

    _TRIGGERS = ("messages_fts_insert", "messages_counted")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._after = conn.execute("SELECT COALESCE(MAX(num), 0) FROM messages").fetchone()[0]
        self._triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messages' AND name IN "
            f"({', '.join('?' * len(self._TRIGGERS))})", self._TRIGGERS,
        ).fetchall()
        for name, _ in self._triggers:
            conn.execute(f'DROP TRIGGER "{name}"')

    def finish(self) -> None:
        self._conn.execute("INSERT INTO messages_fts (rowid, content) SELECT num, content FROM messages WHERE num > ?",
                           (self._after,))
        for _, sql in self._triggers:
            self._conn.execute(sql)


def _insert(conn: sqlite3.Connection, record: dict[str, Any], report: ImportReport) -> None:
    source = record.get("source")
    exists = conn.execute(
        "SELECT 1 FROM conversations WHERE id = ? OR (? IS NOT NULL AND source_id = ?)",
        (record["id"], source, source),
    ).fetchone()
    if exists:
        report.already_there += 1
        return
    rows = []
    first_prompt = None
    for seq, message in enumerate(record["messages"], start=1):
        usage = message.get("usage") or {}
        content = storable(message["content"])
        if first_prompt is None and message["role"] == Role.USER.value:
            first_prompt = content[:200]  # what the `messages_counted` trigger keeps (SQL substr counts characters)
        rows.append((
            message["id"], record["id"], message.get("parent"), seq, message["role"], content,
            message["status"], message.get("provider"), message.get("model"), usage.get("input_tokens"),
            usage.get("output_tokens"), _text(message.get("error")), message["created"], message["updated"],
        ))
    conn.execute(
        "INSERT INTO conversations (id, title, title_source, source_id, created, updated, provider, model, meta, "
        "message_count, first_prompt) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (record["id"], _text(record.get("title")), record.get("title_source"), source, record["created"],
         record["updated"], record.get("provider"), record.get("model"), json.dumps(record.get("meta", {})),
         len(rows), first_prompt),
    )
    conn.executemany(
        "INSERT INTO messages (id, conversation_id, parent_id, seq, role, content, status, provider, model, "
        "input_tokens, output_tokens, error, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows,
    )
    conn.execute("UPDATE conversations SET current_leaf = ? WHERE id = ?", (record.get("current_leaf"), record["id"]))
    conn.executemany(
        "INSERT INTO summaries (id, conversation_id, first_message_id, last_message_id, content, input_hash, "
        "provider, model, created) VALUES (?,?,?,?,?,?,?,?,?)",
        [(s["id"], record["id"], s["first_message"], s["last_message"], storable(s["content"]), s["input_hash"],
          s.get("provider"), s.get("model"), s["created"]) for s in record.get("summaries", [])],
    )
    report.imported += 1
    report.messages += len(rows)


def _text(value: str | None) -> str | None:
    return storable(value) if value is not None else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]
