"""The provider-batch half of the batch job database (see chatapp.store.batch_jobs): which provider
batches a job created, which items each holds, and the intent recorded before each create."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatapp.store.batch_jobs import ItemResult

SUBMITTED = "submitted"  # an item's state once its provider batch exists (ItemState.SUBMITTED)


@dataclass(frozen=True, slots=True)
class RemoteBatch:
    remote_id: str
    first_seq: int
    last_seq: int
    status: str


@dataclass(frozen=True, slots=True)
class RemoteIntent:
    """A provider batch about to be created: written before the create request is sent, and replaced by
    its RemoteBatch once the provider's id is recorded. One still here after a crash may or may not have
    been created; a resume looks it up by `tag` before submitting its items again."""

    tag: str
    created: float  # time.time() before the create request was sent
    items: list[tuple[int, str]]  # (seq, item id)


class RemoteBatchRecords:
    """Mixed into BatchJobs, which provides the connection, transactions and result rows."""

    _conn: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def record_many(self, job_id: str, results: Iterable[ItemResult]) -> None:
        raise NotImplementedError

    def add_intent(self, job_id: str, tag: str, seqs: list[tuple[int, str]]) -> RemoteIntent:
        """Record that a provider batch of these items is about to be created under `tag`."""
        intent = RemoteIntent(tag, time.time(), seqs)
        self._conn.execute("INSERT INTO remote_intents (job_id, tag, created, items) VALUES (?,?,?,?)",
                           (job_id, tag, intent.created, json.dumps(seqs)))
        return intent

    def intents(self, job_id: str) -> list[RemoteIntent]:
        rows = self._conn.execute("SELECT tag, created, items FROM remote_intents WHERE job_id = ? ORDER BY created",
                                  (job_id,)).fetchall()
        return [RemoteIntent(tag, created, [(seq, item_id) for seq, item_id in json.loads(items)])
                for tag, created, items in rows]

    def drop_intent(self, job_id: str, tag: str) -> None:
        """The provider has no batch under `tag`: its items are pending again."""
        self._conn.execute("DELETE FROM remote_intents WHERE job_id = ? AND tag = ?", (job_id, tag))

    def remote_ids(self) -> set[str]:
        """Every provider batch id recorded, by any job."""
        return {remote_id for (remote_id,) in self._conn.execute("SELECT remote_id FROM remote_batches")}

    def add_remote(self, job_id: str, remote_id: str, seqs: list[tuple[int, str]], *, tag: str | None = None) -> None:
        """Record a created provider batch and its items, and retire its intent, in one transaction."""
        with self._transaction():
            if tag is not None:
                self._conn.execute("DELETE FROM remote_intents WHERE job_id = ? AND tag = ?", (job_id, tag))
            self._conn.execute(
                "INSERT INTO remote_batches (job_id, remote_id, first_seq, last_seq, status) VALUES (?,?,?,?,?)",
                (job_id, remote_id, seqs[0][0], seqs[-1][0], "submitted"),
            )
            self._conn.executemany(
                "INSERT OR REPLACE INTO items (job_id, seq, item_id, state, remote) VALUES (?,?,?,?,?)",
                [(job_id, seq, item_id, SUBMITTED, remote_id) for seq, item_id in seqs],
            )

    def remote_batches(self, job_id: str, *, open_only: bool = True) -> list[RemoteBatch]:
        query = "SELECT * FROM remote_batches WHERE job_id = ?" + (" AND status != 'fetched'" if open_only else "")
        rows = self._conn.execute(query + " ORDER BY first_seq", (job_id,)).fetchall()
        return [RemoteBatch(r["remote_id"], r["first_seq"], r["last_seq"], r["status"]) for r in rows]

    def submitted_items(self, job_id: str, remote_id: str) -> dict[str, tuple[int, str]]:
        """custom_id -> (seq, item id) for one provider batch's items still awaiting a result."""
        rows = self._conn.execute("SELECT seq, item_id FROM items WHERE job_id = ? AND remote = ? AND state = ?",
                                  (job_id, remote_id, SUBMITTED))
        return {f"item-{seq}": (seq, item_id) for seq, item_id in rows}

    def finish_remote(self, job_id: str, remote_id: str, results: list[ItemResult]) -> None:
        with self._transaction():
            self.record_many(job_id, results)
            self._conn.execute("UPDATE remote_batches SET status = 'fetched' WHERE job_id = ? AND remote_id = ?",
                               (job_id, remote_id))
