"""Which process is writing which `streaming` reply, so that only replies whose writer is gone are relabeled.

A row holds the writer's pid and its start time (from /proc where there is one), because a pid alone is
reused. The table sits beside the versioned schema (created on first use, no version bump) and is touched
only by writers: opening the database to read never writes.
"""

from __future__ import annotations

import os
import sqlite3
from functools import cache

CREATE = ("CREATE TABLE IF NOT EXISTS live_writers (message_id TEXT PRIMARY KEY, pid INTEGER NOT NULL, "
          "started TEXT NOT NULL)")


def register(conn: sqlite3.Connection, message_id: str) -> None:
    """Record this process as the writer of `message_id` (call inside the transaction that inserts it)."""
    conn.execute(CREATE)
    conn.execute("INSERT OR REPLACE INTO live_writers (message_id, pid, started) VALUES (?, ?, ?)",
                 (message_id, os.getpid(), _own_start()))


def release(conn: sqlite3.Connection, message_id: str) -> None:
    if _exists(conn):
        conn.execute("DELETE FROM live_writers WHERE message_id = ?", (message_id,))


def orphans(conn: sqlite3.Connection, streaming_ids: list[str]) -> list[str]:
    """The ids among `streaming_ids` whose writer process is no longer running."""
    if not streaming_ids:
        return []
    writers: dict[str, tuple[int, str]] = {}
    if _exists(conn):
        marks = ",".join("?" * len(streaming_ids))
        for message_id, pid, started in conn.execute(
            f"SELECT message_id, pid, started FROM live_writers WHERE message_id IN ({marks})", streaming_ids
        ):
            writers[message_id] = (pid, started)
    return [m for m in streaming_ids if m not in writers or not _alive(*writers[m])]


def _exists(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'live_writers'").fetchone() \
        is not None


def _alive(pid: int, started: str) -> bool:
    if pid == os.getpid():
        return started == _own_start()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    return started in ("", _start_time(pid))


@cache
def _own_start() -> str:
    return _start_time(os.getpid())


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" where /proc does not say."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat_file:
            fields = stat_file.read().rpartition(")")[2].split()
        return fields[19]  # field 22 of stat(5), counted after the command name
    except (OSError, IndexError):
        return ""
