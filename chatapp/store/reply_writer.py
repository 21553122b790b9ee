"""Write a streaming reply to the store: flushed at most every FLUSH_SECONDS, closed with a final status."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from chatapp.domain import MessageStatus, Usage
from chatapp.store.conversations import Store
from chatapp.store.db import StoreError, describe_failure, is_full


class ReplyNotSaved(StoreError):
    """The store refused the reply's text (a full disk): the stream stops, what was flushed stays."""

FLUSH_SECONDS = 0.25


class ReplyWriter:
    """Accumulates a streaming reply and flushes it to the store at most every FLUSH_SECONDS."""

    def __init__(self, store: Store, message_id: str, initial: str = "") -> None:
        self._store = store
        self._message_id = message_id
        self._parts: list[str] = [initial] if initial else []
        self._last_flush = time.monotonic()
        self._saved_bytes = 0
        self.usage: Usage | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def append(self, text: str) -> None:
        self._parts.append(text)
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self._flush(now)

    def _flush(self, now: float) -> None:
        text = self.text
        self._save(lambda: self._store.update_message(self._message_id, content=text))
        self._saved_bytes = len(text.encode("utf-8", "replace"))
        self._last_flush = now

    def close(self, status: MessageStatus, error: str | None = None) -> None:
        usage = self.usage
        self._save(lambda: self._store.update_message(
            self._message_id,
            content=self.text,
            status=status,
            error=error,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
        ))

    def _save(self, write: Callable[[], None]) -> None:
        try:
            write()
        except sqlite3.OperationalError as exc:
            if is_full(exc):
                lost = len(self.text.encode("utf-8", "replace")) - self._saved_bytes
                raise ReplyNotSaved(f"disk full: {lost:,} bytes of the reply could not be saved") from None
            raise StoreError(describe_failure(self._store.path, exc)) from None
