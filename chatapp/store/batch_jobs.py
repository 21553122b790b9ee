"""Batch job state in a sidecar SQLite database (`batches.db` in the data dir), apart from the chat store.

One row per job (its options, where its files are, how far its output is written) and one row per item
that was ever handed to a provider. An input item with no row is pending: the input file stays the
source of the prompts, so a 100,000-item job costs a few MB here and nothing in memory.

The database, not the output file, is the record of what was paid for: a result is committed the moment
it arrives; rows are then appended to OUTPUT (and the dead-letter file) and marked written together with
the file's new length. After a crash the output is cut back to the last recorded length and the
unwritten results are appended again, so every id lands exactly once. Provider-mode records (created
provider batches, intents to create one) live in batch_remote_records, mixed into the same class.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from chatapp.store.batch_remote_records import SUBMITTED, RemoteBatch, RemoteBatchRecords, RemoteIntent
from chatapp.store.db import StoreError

__all__ = ["BatchJobs", "ItemResult", "ItemState", "JobRecord", "JobStatus", "RemoteBatch", "RemoteIntent",
           "WriteMark", "private_file"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL,
    mode TEXT NOT NULL,
    input_path TEXT NOT NULL,
    output_path TEXT NOT NULL,
    dead_letter_path TEXT NOT NULL,
    options TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    out_offset INTEGER NOT NULL DEFAULT 0,
    dead_offset INTEGER NOT NULL DEFAULT 0,
    written_through INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    state TEXT NOT NULL,
    written INTEGER NOT NULL DEFAULT 0,
    text TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost REAL,
    provider TEXT,
    model TEXT,
    error_class TEXT,
    error TEXT,
    latency REAL,
    remote TEXT,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_unwritten ON items(job_id, written, seq);
CREATE TABLE IF NOT EXISTS remote_batches (
    job_id TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (job_id, remote_id)
);
CREATE TABLE IF NOT EXISTS remote_intents (
    job_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    created REAL NOT NULL,
    items TEXT NOT NULL,
    PRIMARY KEY (job_id, tag)
);
"""


class JobStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # interrupted or killed: `--resume` continues it
    DONE = "done"


class ItemState(StrEnum):
    INFLIGHT = "inflight"  # sent (live mode); back to pending when the process dies
    SUBMITTED = SUBMITTED  # part of a provider batch that was created
    DONE = "done"
    FAILED = "failed"


FINISHED = (ItemState.DONE.value, ItemState.FAILED.value)


@dataclass(frozen=True)
class JobRecord:
    id: str
    created: float
    updated: float
    status: JobStatus
    mode: str
    input_path: Path
    output_path: Path
    dead_letter_path: Path
    options: dict[str, Any]
    total: int
    pid: int | None
    out_offset: int
    dead_offset: int
    written_through: int
    done: int = 0
    failed: int = 0
    cost: float = 0.0

    @property
    def alive(self) -> bool:
        """A running job whose process still exists (a SIGKILLed one stays `running` in the table)."""
        return self.status is JobStatus.RUNNING and self.pid is not None and _pid_alive(self.pid)


@dataclass(frozen=True, slots=True)
class ItemResult:
    seq: int
    item_id: str
    state: ItemState
    text: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    provider: str | None = None
    model: str | None = None
    error_class: str | None = None
    error: str | None = None
    latency: float | None = None

    def output_row(self) -> dict[str, Any]:
        usage = None
        if self.input_tokens is not None or self.output_tokens is not None:
            usage = {"input_tokens": self.input_tokens or 0, "output_tokens": self.output_tokens or 0}
        return {
            "id": self.item_id, "status": "ok" if self.state is ItemState.DONE else "failed",
            "text": self.text if self.state is ItemState.DONE else None,
            "usage": usage, "provider": self.provider, "model": self.model, "cost": self.cost,
            "error": None if self.error_class is None else {"class": self.error_class, "message": self.error},
        }


@dataclass
class WriteMark:
    """Where a job's files end after a write pass (see BatchJobs.mark_written)."""

    out_offset: int
    dead_offset: int
    written_through: int
    seqs: list[int] = field(default_factory=list)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def private_file(path: Path) -> None:
    """Results are the user's data: 0600 whatever the umask."""
    with suppress(OSError):
        os.chmod(path, 0o600)


class BatchJobs(RemoteBatchRecords):
    """The sidecar database. One connection, used from one thread (the event loop's)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> BatchJobs:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open the batch database: {exc}") from None
        conn.row_factory = sqlite3.Row
        for suffix in ("", "-wal", "-shm"):
            if (file := Path(f"{path}{suffix}")).exists():
                private_file(file)
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT (the connection autocommits otherwise); nested uses join the outer one."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # --- jobs --------------------------------------------------------------------------------

    def create_job(self, job_id: str, *, mode: str, input_path: Path, output_path: Path, dead_letter_path: Path,
                   options: dict[str, Any], total: int) -> JobRecord:
        now = time.time()
        self._conn.execute(
            "INSERT INTO jobs (id, created, updated, status, mode, input_path, output_path, dead_letter_path,"
            " options, total, pid) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (job_id, now, now, JobStatus.RUNNING.value, mode, str(input_path), str(output_path),
             str(dead_letter_path), json.dumps(options), total, os.getpid()),
        )
        job = self.job(job_id)
        assert job is not None
        return job

    def job(self, id_or_prefix: str) -> JobRecord | None:
        rows = self._conn.execute(
            "SELECT * FROM jobs WHERE id = ? OR id LIKE ? ESCAPE '\\' ORDER BY id = ? DESC LIMIT 2",
            (id_or_prefix, f"{_escape_like(id_or_prefix)}%", id_or_prefix),
        ).fetchall()
        if not rows or (len(rows) > 1 and rows[0]["id"] != id_or_prefix):
            return None
        return self._record(rows[0])

    def jobs(self, limit: int = 20) -> list[JobRecord]:
        rows = self._conn.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [self._record(row) for row in rows]

    def running_jobs(self) -> list[JobRecord]:
        """Jobs marked running whose process is alive (a killed run stays marked until resumed)."""
        rows = self._conn.execute("SELECT * FROM jobs WHERE status = ? ORDER BY created", (JobStatus.RUNNING.value,))
        return [job for job in (self._record(row) for row in rows.fetchall()) if job.alive]

    def set_status(self, job_id: str, status: JobStatus) -> None:
        pid = os.getpid() if status is JobStatus.RUNNING else None
        self._conn.execute("UPDATE jobs SET status = ?, pid = ?, updated = ? WHERE id = ?",
                           (status.value, pid, time.time(), job_id))

    def _record(self, row: sqlite3.Row) -> JobRecord:
        done, failed, cost = self._conn.execute(
            "SELECT COALESCE(SUM(state = 'done'), 0), COALESCE(SUM(state = 'failed'), 0), COALESCE(SUM(cost), 0)"
            " FROM items WHERE job_id = ?", (row["id"],),
        ).fetchone()
        return JobRecord(
            id=row["id"], created=row["created"], updated=row["updated"], status=JobStatus(row["status"]),
            mode=row["mode"], input_path=Path(row["input_path"]), output_path=Path(row["output_path"]),
            dead_letter_path=Path(row["dead_letter_path"]), options=json.loads(row["options"]), total=row["total"],
            pid=row["pid"], out_offset=row["out_offset"], dead_offset=row["dead_offset"],
            written_through=row["written_through"], done=done, failed=failed, cost=cost,
        )

    # --- items -------------------------------------------------------------------------------

    def mark_inflight(self, job_id: str, seq: int, item_id: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO items (job_id, seq, item_id, state) VALUES (?,?,?,?)",
            (job_id, seq, item_id, ItemState.INFLIGHT.value),
        )

    def record(self, job_id: str, result: ItemResult) -> None:
        """Commit one finished item at once (one statement: its own transaction): this row is what keeps
        it from being paid for twice."""
        self._conn.execute(_RECORD, _record_values(job_id, result))

    def record_many(self, job_id: str, results: Iterable[ItemResult]) -> None:
        with self._transaction():
            self._conn.executemany(_RECORD, [_record_values(job_id, r) for r in results])

    def release_unfinished(self, job_id: str) -> int:
        """In-flight items of a stopped run become pending again (their rows go); returns how many."""
        cursor = self._conn.execute("DELETE FROM items WHERE job_id = ? AND state = ?",
                                    (job_id, ItemState.INFLIGHT.value))
        return cursor.rowcount

    def release_items(self, job_id: str, seqs: Iterable[int]) -> None:
        with self._transaction():
            self._conn.executemany("DELETE FROM items WHERE job_id = ? AND seq = ? AND state = ?",
                                   [(job_id, seq, ItemState.INFLIGHT.value) for seq in seqs])

    def started_seqs(self, job_id: str) -> Iterator[int]:
        """Seqs with a row (finished, in flight or submitted), ascending: the input items to skip."""
        cursor = self._conn.execute("SELECT seq FROM items WHERE job_id = ? ORDER BY seq", (job_id,))
        for (seq,) in cursor:
            yield seq

    def unwritten(self, job_id: str, *, from_seq: int | None = None, limit: int = 2000) -> list[ItemResult]:
        """Up to `limit` finished items not yet in the output, by seq. `from_seq`: only the gap-free run
        starting there (input order: a row waits until every earlier item is finished)."""
        if from_seq is None:
            rows = self._conn.execute(
                "SELECT * FROM items WHERE job_id = ? AND written = 0 AND state IN (?, ?) ORDER BY seq LIMIT ?",
                (job_id, *FINISHED, limit),
            ).fetchall()
            return [_result(row) for row in rows]
        rows = self._conn.execute("SELECT * FROM items WHERE job_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
                                  (job_id, from_seq, limit)).fetchall()
        results: list[ItemResult] = []
        for expected, row in enumerate(rows, start=from_seq):
            if row["seq"] != expected or row["state"] not in FINISHED:
                break
            results.append(_result(row))
        return results

    def mark_written(self, job_id: str, mark: WriteMark) -> None:
        with self._transaction():
            self._conn.executemany("UPDATE items SET written = 1 WHERE job_id = ? AND seq = ?",
                                   [(job_id, seq) for seq in mark.seqs])
            self._conn.execute(
                "UPDATE jobs SET out_offset = ?, dead_offset = ?, written_through = ?, updated = ? WHERE id = ?",
                (mark.out_offset, mark.dead_offset, mark.written_through, time.time(), job_id),
            )

    def counts(self, job_id: str) -> dict[str, int]:
        rows = self._conn.execute("SELECT state, COUNT(*) FROM items WHERE job_id = ? GROUP BY state", (job_id,))
        return {state: count for state, count in rows}


_RECORD = ("INSERT OR REPLACE INTO items (job_id, seq, item_id, state, written, text, input_tokens, output_tokens,"
           " cost, provider, model, error_class, error, latency) VALUES (?,?,?,?,0,?,?,?,?,?,?,?,?,?)")


def _record_values(job_id: str, r: ItemResult) -> tuple[object, ...]:
    return (job_id, r.seq, r.item_id, r.state.value, r.text, r.input_tokens, r.output_tokens, r.cost, r.provider,
            r.model, r.error_class, r.error, r.latency)


def _result(row: sqlite3.Row) -> ItemResult:
    return ItemResult(
        seq=row["seq"], item_id=row["item_id"], state=ItemState(row["state"]), text=row["text"],
        input_tokens=row["input_tokens"], output_tokens=row["output_tokens"], cost=row["cost"],
        provider=row["provider"], model=row["model"], error_class=row["error_class"], error=row["error"],
        latency=row["latency"],
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
