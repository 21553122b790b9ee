"""`chatapp doctor --salvage`: copy what a damaged database still reads into a fresh one, row by row, and set
the damaged file aside untouched.

Hand-written rather than SQLite's `.recover`: that lives in the sqlite3 shell, which Python does not ship
and which may not be installed. This copy walks each table in rowid order; where a read fails it probes
further rowids (doubling the step, then bisecting back) for the first one that reads again, so one bad page
costs the rows on that page and no more. The damaged file and its -wal are read from a private scratch
copy, so not one byte of them is written.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from chatapp.store.db import StoreError, connect, is_damage, quick_check, set_aside, unwritable

_BATCH = 500
_MAX_ROWID = 2**63 - 1
# Rebuilt by the fresh database's own triggers (the full-text index) or meaningful only to a live process.
_SKIPPED_PREFIXES = ("sqlite_", "messages_fts", "live_writers")


@dataclass
class SalvageReport:
    aside: Path  # where the damaged file now is
    copied: dict[str, int] = field(default_factory=dict)  # rows per table
    damaged_ranges: int = 0  # stretches of rows that could not be read
    unreadable_tables: list[str] = field(default_factory=list)

    def summary(self) -> str:
        conversations, messages = self.copied.get("conversations", 0), self.copied.get("messages", 0)
        lost = f"; {self.damaged_ranges} damaged stretch(es) of rows skipped" if self.damaged_ranges else ""
        tables = f"; unreadable tables: {', '.join(self.unreadable_tables)}" if self.unreadable_tables else ""
        return (f"salvaged {conversations} conversations and {messages} messages into a fresh database{lost}"
                f"{tables}; the damaged file is set aside untouched as {self.aside.name}")


def salvage(path: Path) -> SalvageReport:
    """Rebuild `path` from what it still reads; the original (and its -wal) is renamed aside, never written."""
    if not path.exists():
        raise StoreError(f"{path} does not exist: there is nothing to salvage")
    reason = unwritable(path.parent)
    if reason is not None:
        raise StoreError(f"cannot salvage {path}: its folder is not writable ({reason})")
    try:
        return _salvage(path)
    except OSError as exc:  # a full disk while copying: the damaged file is still where it was
        raise StoreError(f"cannot salvage {path}: {exc.strerror or exc}") from None


def _salvage(path: Path) -> SalvageReport:
    scratch = Path(tempfile.mkdtemp(prefix=".salvage-", dir=path.parent))
    fresh_path = scratch / "fresh.db"
    try:
        source = _open_copy(path, scratch)
        try:
            fresh = connect(fresh_path).connection
            try:
                counts, ranges, unreadable = _copy_all(source, fresh)
                _repair_links(fresh)
            finally:
                fresh.close()
        finally:
            source.close()
        aside = set_aside(path)
        os.replace(fresh_path, path)
        return SalvageReport(aside, counts, ranges, unreadable)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _open_copy(path: Path, scratch: Path) -> sqlite3.Connection:
    """Read from a copy: opening the original would replay and checkpoint its -wal into it."""
    copy = scratch / "damaged.db"
    shutil.copyfile(path, copy)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, scratch / "damaged.db-wal")
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        conn.execute("SELECT name FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: its table of contents is unreadable ({exc}); nothing can be salvaged by "
                         "chatapp (`sqlite3 FILE .recover` may still find text)") from None
    if not quick_check(conn, 1):
        conn.close()
        raise StoreError(f"{path} passes PRAGMA quick_check: there is nothing to salvage")
    return conn


def _copy_all(source: sqlite3.Connection, fresh: sqlite3.Connection) -> tuple[dict[str, int], int, list[str]]:
    fresh.execute("PRAGMA foreign_keys=OFF")  # parents may be lost: _repair_links deals with orphans
    tables = source.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL "
                            "AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY rootpage").fetchall()
    # conversations before messages, so the message triggers find their conversation
    tables.sort(key=lambda t: (t[0] != "conversations", t[0] != "messages"))
    counts: dict[str, int] = {}
    ranges = 0
    unreadable: list[str] = []
    for name, sql in tables:
        if name.startswith(_SKIPPED_PREFIXES):
            continue
        if not _columns(fresh, name):
            fresh.execute(sql)
        columns = [c for c in _columns(source, name) if c in set(_columns(fresh, name))]
        fresh.execute("BEGIN")
        try:
            copied, skipped, whole = _copy_table(source, fresh, name, columns)
        except BaseException:
            fresh.execute("ROLLBACK")
            raise
        fresh.execute("COMMIT")
        counts[name] = copied
        ranges += skipped
        if not whole:
            unreadable.append(name)
    return counts, ranges, unreadable


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_table(source: sqlite3.Connection, fresh: sqlite3.Connection, table: str,
                columns: list[str]) -> tuple[int, int, bool]:
    """(rows copied, damaged stretches skipped, whether the table could be walked at all)."""
    names = ", ".join(_quote(c) for c in columns)
    insert = f"INSERT OR IGNORE INTO {_quote(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"
    try:
        source.execute(f"SELECT rowid FROM {_quote(table)} LIMIT 0")
    except sqlite3.OperationalError:  # WITHOUT ROWID: all or nothing
        try:
            rows = source.execute(f"SELECT {names} FROM {_quote(table)}").fetchall()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            return 0, 1, False
        fresh.executemany(insert, rows)
        return len(rows), 0, True
    # `rowid >= start`, never `rowid > last`: a seek past a key on a damaged page lands on that page first.
    batch = f"SELECT rowid, {names} FROM {_quote(table)} WHERE rowid >= ? ORDER BY rowid LIMIT ?"
    copied = skipped = 0
    start = -_MAX_ROWID - 1
    size = _BATCH
    while True:
        try:
            rows = source.execute(batch, (start, size)).fetchall()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            if size > 1:
                size = 1  # close in on the damage one row at a time
                continue
            resume = _next_readable(source, table, start)
            skipped += 1
            if resume is None:
                return copied, skipped, copied > 0
            start, size = resume, _BATCH
            continue
        if not rows:
            return copied, skipped, True
        fresh.executemany(insert, [row[1:] for row in rows])
        copied += len(rows)
        if rows[-1][0] == _MAX_ROWID:
            return copied, skipped, True
        start = rows[-1][0] + 1
        size = _BATCH


def _next_readable(source: sqlite3.Connection, table: str, start: int) -> int | None:
    """The first row at or after `start` cannot be read: the smallest rowid from which the table reads
    again, or None if nothing past the damage does."""
    seek = f"SELECT rowid FROM {_quote(table)} WHERE rowid >= ? ORDER BY rowid LIMIT 1"

    def readable_from(at: int) -> tuple[bool, int | None]:
        try:
            row = source.execute(seek, (at,)).fetchone()
        except sqlite3.DatabaseError:
            return False, None
        return True, None if row is None else row[0]

    # The row's page may be sound and only its text (an overflow page) damaged: skip that one row.
    ok, found = readable_from(start)
    if ok:
        return None if found is None or found == _MAX_ROWID else found + 1
    bad, step = start, 1
    while True:
        probe = min(bad + step, _MAX_ROWID)
        if readable_from(probe)[0]:
            break
        if probe == _MAX_ROWID:
            return None
        bad, step = probe, step * 2
    good = probe
    while good - bad > 1:  # reads fail from `bad`, succeed from `good`
        middle = (bad + good) // 2
        if readable_from(middle)[0]:
            good = middle
        else:
            bad = middle
    return good


def _repair_links(fresh: sqlite3.Connection) -> None:
    """Make the salvaged rows a consistent chatapp database: messages whose conversation was lost get one;
    a message whose parent was lost hangs from the one before it; counts and leaves point at what exists."""
    fresh.execute("BEGIN")
    fresh.execute(
        "INSERT INTO conversations (id, title, created, updated, meta) "
        "SELECT conversation_id, 'recovered messages', MIN(created), MAX(updated), '{}' FROM messages "
        "WHERE conversation_id NOT IN (SELECT id FROM conversations) GROUP BY conversation_id")
    fresh.execute(
        "UPDATE messages SET parent_id = (SELECT p.id FROM messages p "
        "WHERE p.conversation_id = messages.conversation_id AND p.seq < messages.seq ORDER BY p.seq DESC LIMIT 1) "
        "WHERE parent_id IS NOT NULL AND parent_id NOT IN (SELECT id FROM messages)")
    fresh.execute(
        "UPDATE conversations SET message_count = (SELECT COUNT(*) FROM messages m "
        "WHERE m.conversation_id = conversations.id)")
    fresh.execute(
        "UPDATE conversations SET current_leaf = (SELECT m.id FROM messages m WHERE m.conversation_id = "
        "conversations.id ORDER BY m.seq DESC LIMIT 1) "
        "WHERE current_leaf IS NULL OR current_leaf NOT IN (SELECT id FROM messages)")
    for table, _rowid, _parent, _fk in fresh.execute("PRAGMA foreign_key_check").fetchall():
        fresh.execute(f"DELETE FROM {_quote(table)} WHERE rowid = ?", (_rowid,))
    fresh.execute("COMMIT")
    fresh.execute("PRAGMA foreign_keys=ON")
