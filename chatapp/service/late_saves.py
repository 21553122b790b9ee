"""A reply's final save that has to wait for another process's write lock after the reply was cancelled.

Esc (or a signal) must end the reply at once, but its final write may find the database locked by another
process. Blocking on the lock would freeze the event loop (the screen) for up to `lock_timeout`; dropping
the write would lose the text. Instead the write is retried in a task, every RETRY_SECONDS without waiting
on SQLite's busy timeout, until the lock frees; the row stays `streaming` meanwhile, as its writer lives.
"""

from __future__ import annotations

import asyncio
import contextlib

from chatapp.domain import MessageStatus
from chatapp.store.db import StoreError
from chatapp.store.reply_writer import ReplyWriter

RETRY_SECONDS = 0.1  # between tries of a reply's final write while another process holds the lock


class LateSaves:
    def __init__(self) -> None:
        self._pending: dict[asyncio.Task[None], ReplyWriter] = {}

    def close(self, writer: ReplyWriter, status: MessageStatus) -> None:
        """Write the reply's final state now if the lock is free, else as soon as it frees (in a task)."""
        if writer.try_close(status):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to retry on (a generator collected late): wait as long as the store does
            writer.close(status)
            return
        task = loop.create_task(self._retry(writer, status), name="late-save")
        self._pending[task] = writer
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._pending.pop(task, None)

    @staticmethod
    async def _retry(writer: ReplyWriter, status: MessageStatus) -> None:
        with contextlib.suppress(StoreError):  # not the lock but a full disk: the row keeps what was flushed
            while not writer.try_close(status):
                await asyncio.sleep(RETRY_SECONDS)

    async def drain(self, timeout: float) -> list[str]:
        """Before the store closes: give waiting saves up to `timeout` for the lock to free. A save still
        waiting then is given up, and said in the line returned for it; its row, whose writer is then gone, is
        marked incomplete by the next open (it keeps the text flushed before the lock was taken)."""
        if not self._pending:
            return []
        _done, waiting = await asyncio.wait(set(self._pending), timeout=timeout)
        lines = []
        for task in waiting:
            lines.append(f"the cancelled reply's last {self._pending[task].unsaved_bytes:,} bytes were not saved: "
                         f"another process held the database's write lock for more than {timeout:g} s")
            task.cancel()
        for task in waiting:
            with contextlib.suppress(asyncio.CancelledError, StoreError):
                await task
        return lines
