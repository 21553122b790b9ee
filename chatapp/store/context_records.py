"""Rows the context layer derives from a conversation: token counts per message and counting basis,
summaries of message ranges (the originals are never touched), the summary cache, and calibration."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from chatapp.textsafe import storable

_CALIBRATION_KEY = "token_calibration"


@dataclass(frozen=True, slots=True)
class SummaryRow:
    id: str
    first_message_id: str
    last_message_id: str
    content: str
    input_hash: str
    provider: str | None
    model: str | None
    created: float


class ContextRecords:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # --- token counts ------------------------------------------------------------------------

    def token_counts(self, conversation_id: str) -> dict[str, tuple[int, str]]:
        """{message_id: (raw tokens, basis)} for the messages counted so far."""
        rows = self._conn.execute(
            "SELECT id, token_count, token_basis FROM messages WHERE conversation_id = ? "
            "AND token_count IS NOT NULL AND status != 'streaming'", (conversation_id,),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def save_token_counts(self, counts: Iterable[tuple[str, int, str]]) -> None:
        rows = [(tokens, basis, message_id) for message_id, tokens, basis in counts]
        if rows:
            self._conn.executemany(
                "UPDATE messages SET token_count = ?, token_basis = ? WHERE id = ? AND status != 'streaming'", rows
            )

    # --- summaries ---------------------------------------------------------------------------

    def summaries(self, conversation_id: str) -> list[SummaryRow]:
        rows = self._conn.execute(
            "SELECT id, first_message_id, last_message_id, content, input_hash, provider, model, created "
            "FROM summaries WHERE conversation_id = ? ORDER BY created", (conversation_id,),
        )
        return [SummaryRow(*row) for row in rows]

    def add_summary(self, conversation_id: str, first_message_id: str, last_message_id: str, content: str,
                    input_hash: str, provider: str | None, model: str | None) -> SummaryRow:
        row = SummaryRow(uuid.uuid4().hex[:12], first_message_id, last_message_id, storable(content), input_hash,
                         provider, model, time.time())
        self._conn.execute(
            "INSERT INTO summaries (id, conversation_id, first_message_id, last_message_id, content, input_hash, "
            "provider, model, created) VALUES (?,?,?,?,?,?,?,?,?)",
            (row.id, conversation_id, first_message_id, last_message_id, row.content, input_hash, provider, model,
             row.created),
        )
        return row

    # --- the summary cache (the context layer's SummaryCache protocol) -------------------------

    def get(self, key: str) -> str | None:
        row = self._conn.execute("SELECT content FROM summary_cache WHERE input_hash = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, text: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO summary_cache (input_hash, content, created) VALUES (?,?,?)",
            (key, storable(text), time.time()),
        )

    # --- calibration -------------------------------------------------------------------------

    def calibration(self) -> dict[tuple[str, str], tuple[float, int]]:
        row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (_CALIBRATION_KEY,)).fetchone()
        try:
            items = json.loads(row[0]) if row else []
            return {(m, b): (float(r), int(n)) for m, b, r, n in items}
        except (ValueError, TypeError):
            return {}

    def save_calibration(self, values: dict[tuple[str, str], tuple[float, int]]) -> None:
        items = [[m, b, r, n] for (m, b), (r, n) in values.items()]
        self._conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (_CALIBRATION_KEY, json.dumps(items)),
        )
