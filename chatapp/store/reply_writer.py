"""Write a streaming reply to the store: flushed at most every FLUSH_SECONDS, closed with a final status."""

from __future__ import annotations

import time

from chatapp.domain import MessageStatus, Usage
from chatapp.store.conversations import Store

FLUSH_SECONDS = 0.25


class ReplyWriter:
    """Accumulates a streaming reply and flushes it to the store at most every FLUSH_SECONDS."""

    def __init__(self, store: Store, message_id: str) -> None:
        self._store = store
        self._message_id = message_id
        self._parts: list[str] = []
        self._last_flush = time.monotonic()
        self._dirty = False
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def append(self, text: str) -> None:
        self._parts.append(text)
        self._dirty = True
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self._flush(now)

    def _flush(self, now: float) -> None:
        self._store.update_message(self._message_id, content=self.text)
        self._last_flush = now
        self._dirty = False

    def close(self, status: MessageStatus, error: str | None = None) -> None:
        usage = self.usage
        self._store.update_message(
            self._message_id,
            content=self.text,
            status=status,
            error=error,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
        )
