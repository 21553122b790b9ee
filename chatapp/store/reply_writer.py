"""Write a streaming reply to the store: flushed at most every FLUSH_SECONDS, closed with a final status.

Another process may hold the database's write lock while a reply streams. A flush then does not wait (that
would freeze the stream and the screen): the text stays in memory and the next flush tries again. The
final write is tried the same way, again and again, by the turn (`try_close`), until the lock frees.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from chatapp.domain import MessageStatus, Usage
from chatapp.store.conversations import Store
from chatapp.store.db import StoreError, describe_failure, is_busy, is_full


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
        self._busy_since: float | None = None
        self._busy_reports: list[float] = []
        self.usage: Usage | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def busy_seconds(self) -> float:
        """How long writes have found the database locked by another process (0 when the last one worked)."""
        return 0.0 if self._busy_since is None else time.monotonic() - self._busy_since

    @property
    def unsaved_bytes(self) -> int:
        """How much of the reply's text (UTF-8) the store does not hold yet."""
        return len(self.text.encode("utf-8", "replace")) - self._saved_bytes

    def take_busy_periods(self) -> list[float]:
        """The lengths of the busy periods that have ended since the last call (each ended by a save)."""
        periods, self._busy_reports = self._busy_reports, []
        return periods

    def append(self, text: str) -> None:
        self._parts.append(text)
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self._flush(now)

    def _flush(self, now: float) -> None:
        text = self.text
        self._last_flush = now  # saved or not, the next try is one interval away
        if self._attempt(lambda: self._store.update_message(self._message_id, content=text)):
            self._saved_bytes = len(text.encode("utf-8", "replace"))

    def close(self, status: MessageStatus, error: str | None = None) -> None:
        """The final write, waiting up to the store's lock timeout (StoreError after that)."""
        self._save(self._final_write(status, error))

    def try_close(self, status: MessageStatus, error: str | None = None) -> bool:
        """The final write if the database's write lock is free now; False (nothing written) when it is not."""
        return self._attempt(self._final_write(status, error))

    def _final_write(self, status: MessageStatus, error: str | None) -> Callable[[], None]:
        usage = self.usage
        return lambda: self._store.update_message(
            self._message_id,
            content=self.text,
            status=status,
            error=error,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
        )

    def _attempt(self, write: Callable[[], None]) -> bool:
        """One write that does not wait for another process's lock: False when it is held."""
        try:
            with self._store.without_waiting():
                write()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                self._raise_for(exc)
            if self._busy_since is None:
                self._busy_since = time.monotonic()
            return False
        if self._busy_since is not None:
            self._busy_reports.append(time.monotonic() - self._busy_since)
            self._busy_since = None
        return True

    def _save(self, write: Callable[[], None]) -> None:
        try:
            write()
        except sqlite3.OperationalError as exc:
            self._raise_for(exc)

    def _raise_for(self, exc: sqlite3.OperationalError) -> None:
        if is_full(exc):
            raise ReplyNotSaved(f"disk full: {self.unsaved_bytes:,} bytes of the reply could not be saved") from None
        raise StoreError(describe_failure(self._store.path, exc)) from None
