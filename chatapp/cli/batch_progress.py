"""Batch progress on stderr: a Rich bar on a terminal, one plain line per N items when piped.

Both show throughput, ETA, error rate, p50/p99 latency and the cost so far. Only numbers are rendered:
no model or file text goes through Rich.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from chatapp.service.batch_estimate import format_duration

if TYPE_CHECKING:
    from chatapp.service.batch import BatchProgress, BatchRun
    from chatapp.service.batch_remote import RemoteBatchRun

_REFRESH = 0.25


def describe(progress: BatchProgress) -> str:
    latency = progress.latency()
    eta = progress.eta
    parts = [
        f"{progress.finished:,}/{progress.total:,}",
        f"{progress.failed:,} failed",
        f"{progress.throughput:.1f} items/s",
        f"ETA {format_duration(eta)}" if eta is not None else "ETA -",
        f"errors {progress.error_rate:.1%}",
    ]
    if latency.count:
        parts.append(f"p50 {latency.p50:.2f} s p99 {latency.p99:.2f} s")
    parts.append(f"${progress.cost:,.4f}")
    if progress.state not in ("running", "finished"):
        parts.append(progress.state)
    return ", ".join(parts)


class ProgressReporter:
    """`async with ProgressReporter(run, every=100, tty=...)`: reports until the block ends."""

    def __init__(self, batch_run: BatchRun | RemoteBatchRun, *, every: int, tty: bool) -> None:
        self._run = batch_run
        self._every = every
        self._tty = tty
        self._task: asyncio.Task[None] | None = None
        self._bar: Any = None

    async def __aenter__(self) -> ProgressReporter:
        if self._tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self._bar = Progress(BarColumn(), TextColumn("{task.fields[line]}", markup=False),
                                 console=Console(stderr=True), transient=False)
            self._bar.start()
            self._bar_task = self._bar.add_task("batch", total=self._run.progress.total, line="")
        self._task = asyncio.create_task(self._report(), name="chatapp-batch-progress")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._show(final=True)
        if self._bar is not None:
            self._bar.stop()

    async def _report(self) -> None:
        last_line = self._run.progress.finished // self._every
        while True:
            await asyncio.sleep(_REFRESH)
            if self._bar is not None:
                self._show()
                continue
            step = self._run.progress.finished // self._every
            if step != last_line:
                last_line = step
                self._show()

    def _show(self, *, final: bool = False) -> None:
        progress = self._run.progress
        line = describe(progress)
        if self._bar is not None:
            self._bar.update(self._bar_task, completed=progress.finished, line=line)
        elif not final:
            print(f"chatapp: batch {self._run.job.id}: {line}", file=sys.stderr, flush=True)
