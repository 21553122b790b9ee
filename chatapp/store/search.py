"""Full-text search over every message (SQLite FTS5, kept in step with the messages by triggers)."""

from __future__ import annotations

import re
import sqlite3

from chatapp.domain import HIT_END, HIT_START, SearchHit
from chatapp.store.conversations import first_words

_WORD = re.compile(r"\w+", re.UNICODE)


def match_expression(text: str) -> str | None:
    """What the user typed as an FTS5 query: every word must appear, the last one as a prefix. Words are
    quoted, so FTS5's own syntax (AND, NEAR, column filters, quotes) in the text is just text."""
    words = _WORD.findall(text)
    if not words:
        return None
    quoted = [f'"{word}"' for word in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def search(conn: sqlite3.Connection, text: str, limit: int = 50) -> list[SearchHit]:
    """The newest messages containing every word of `text`, with a snippet each."""
    expression = match_expression(text)
    if expression is None:
        return []
    rows = conn.execute(
        "SELECT m.conversation_id, m.id, c.title, c.first_prompt, m.role, m.created, hits.snippet FROM ("
        f" SELECT rowid, snippet(messages_fts, 0, '{HIT_START}', '{HIT_END}', '…', 12) AS snippet"
        " FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ?"
        ") AS hits JOIN messages m ON m.num = hits.rowid JOIN conversations c ON c.id = m.conversation_id"
        " ORDER BY hits.rowid DESC",
        (expression, limit),
    )
    return [
        SearchHit(row[0], row[1], row[2] or (first_words(row[3]) if row[3] else None), row[4], row[5],
                  " ".join(row[6].split()))
        for row in rows
    ]

