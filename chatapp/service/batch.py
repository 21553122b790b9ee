"""A batch job run through the request engine: a bounded producer/consumer over the input file.

The feeder reads items one at a time into a queue of `concurrency` slots; `concurrency` workers take
them, each a `Priority.BATCH` job in the engine (so interactive turns and background work of the same
process go first, and the provider's rpm/tpm buckets, retries and breaker apply). Memory is bounded by
the queue and the in-flight items, whatever the input's size. Every result is committed to the sidecar
database as it arrives and the output files are written from there (see batch_output).

Stopping: `stop()` stops feeding and lets in-flight items finish (bounded by `drain_timeout`, then they
are cancelled); `cancel()` cancels them at once. Cancelled items go back to pending for `--resume`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatapp.config import ProviderSpec
from chatapp.domain import ChatRequest, ErrorKind, ProviderError, Usage
from chatapp.engine import Job, Percentiles, Priority
from chatapp.engine.stats import request_cost
from chatapp.service.batch_estimate import ASSUMED_OUTPUT_TOKENS, ItemCounter
from chatapp.service.batch_input import BatchItem
from chatapp.service.batch_output import OutputFiles
from chatapp.store.batch_jobs import BatchJobs, ItemResult, ItemState, JobRecord, JobStatus
from chatapp.store.interactive_marks import InteractiveMarks

if TYPE_CHECKING:
    from chatapp.engine import RequestEngine

FLUSH_EVERY = 0.5  # seconds between output write passes
_PAUSE_ON_OPEN_CIRCUIT = (1.0, 30.0)  # first and longest wait when the provider's circuit is open
_MAX_ROUNDS = 3  # an item whose provider was out this many times is dead-lettered


@dataclass
class BatchProgress:
    """Live figures for a progress display (this run's; `done`/`failed` include earlier runs)."""

    total: int
    done: int = 0
    failed: int = 0
    cost: float = 0.0
    started_at: float = field(default_factory=time.monotonic)
    finished_this_run: int = 0
    errors_this_run: int = 0
    in_flight: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    state: str = "running"  # running, draining, cancelling, finished, stopped

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def throughput(self) -> float:
        """Items per second in this run."""
        elapsed = time.monotonic() - self.started_at
        return self.finished_this_run / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.throughput
        return (self.total - self.finished) / rate if rate > 0 else None

    @property
    def error_rate(self) -> float:
        return self.errors_this_run / self.finished_this_run if self.finished_this_run else 0.0

    def latency(self) -> Percentiles:
        return Percentiles.of(self.latencies)


@dataclass(frozen=True)
class BatchOutcome:
    job_id: str
    complete: bool  # every item is done or dead-lettered
    progress: BatchProgress
    stopped_because: str | None = None


class BatchRun:
    """One run of a live job (a fresh start or a resume). Create with ChatService.open_batch()."""

    def __init__(self, *, engine: RequestEngine, jobs: BatchJobs, job: JobRecord, spec: ProviderSpec,
                 items: Callable[[], Iterator[BatchItem]], marks: InteractiveMarks, concurrency: int,
                 max_tokens: int | None, max_cost: float | None, ordered: bool, drain_timeout: float = 30.0,
                 redact: Callable[[str], str] = str) -> None:
        self._engine = engine
        self._jobs = jobs
        self.job = job
        self._spec = spec
        self._items = items
        self._marks = marks
        self._concurrency = max(1, concurrency)
        self._max_tokens = max_tokens
        self._max_cost = max_cost
        self._drain_timeout = drain_timeout
        self._redact = redact
        self._output = OutputFiles(jobs, job, ordered=ordered)
        self._queue: asyncio.Queue[BatchItem | None] = asyncio.Queue(maxsize=self._concurrency)
        self._stopping = asyncio.Event()
        self._reserved: dict[int, float] = {}  # seq -> estimated cost of items in flight
        self._working: dict[int, asyncio.Task[None]] = {}
        self._stop_reason: str | None = None
        self._counter: ItemCounter | None = None
        counts = jobs.counts(job.id)
        self.progress = BatchProgress(total=job.total, done=counts.get(ItemState.DONE, 0),
                                      failed=counts.get(ItemState.FAILED, 0), cost=job.cost)

    # --- control -----------------------------------------------------------------------------

    def stop(self, reason: str = "interrupted") -> None:
        """Stop feeding; in-flight items finish (up to drain_timeout)."""
        if not self._stopping.is_set():
            self._stop_reason = reason
            self.progress.state = "draining"
            self._stopping.set()

    def cancel(self) -> None:
        """Cancel in-flight items now; they return to pending."""
        self.stop()
        self.progress.state = "cancelling"
        for task in list(self._working.values()):
            task.cancel()

    # --- the run -----------------------------------------------------------------------------

    async def run(self) -> BatchOutcome:
        released = self._jobs.release_unfinished(self.job.id)
        del released  # in-flight rows of a dead run: pending again, re-sent below
        self._jobs.set_status(self.job.id, JobStatus.RUNNING)
        self._output.repair()
        self._output.flush()
        self._counter = ItemCounter(self._spec)
        feeder = asyncio.create_task(self._feed(), name="chatapp-batch-feeder")
        workers = [asyncio.create_task(self._work(), name=f"chatapp-batch-worker-{n}")
                   for n in range(self._concurrency)]
        flusher = asyncio.create_task(self._flush_periodically(), name="chatapp-batch-flusher")
        exhausted = False
        closer: asyncio.Task[None] | None = None
        try:
            exhausted = await feeder
            closer = asyncio.create_task(self._close_queue(), name="chatapp-batch-closer")
            await self._wait_for_workers(workers)
        finally:
            for task in (feeder, *workers, *([closer] if closer else [])):
                task.cancel()
            await asyncio.gather(feeder, *workers, *([closer] if closer else []), return_exceptions=True)
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            self._jobs.release_items(self.job.id, list(self._working))
            self._output.flush()
            counts = self._jobs.counts(self.job.id)
            finished = counts.get(ItemState.DONE, 0) + counts.get(ItemState.FAILED, 0)
            complete = exhausted and finished >= self.job.total and self._stop_reason is None
            self._jobs.set_status(self.job.id, JobStatus.DONE if complete else JobStatus.STOPPED)
            self.progress.state = "finished" if complete else "stopped"
        return BatchOutcome(self.job.id, complete, self.progress, None if complete else self._stop_reason)

    async def _close_queue(self) -> None:
        for _ in range(self._concurrency):
            await self._queue.put(None)  # one end-of-input mark per worker

    async def _wait_for_workers(self, workers: list[asyncio.Task[None]]) -> None:
        """Until the workers end; once stopping, at most drain_timeout more, then cancel what is left."""
        pending: set[asyncio.Future[Any]] = set(workers)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while pending:
                done, pending = await asyncio.wait(pending | {stopping}, return_when=asyncio.FIRST_COMPLETED)
                done.discard(stopping)
                pending.discard(stopping)
                if stopping.done() and pending:
                    _, pending = await asyncio.wait(pending, timeout=self._drain_timeout)
                    for task in list(self._working.values()):
                        task.cancel()
                    if pending:
                        await asyncio.wait(pending)
                    return
        finally:
            stopping.cancel()

    async def _feed(self) -> bool:
        """Put pending items on the queue; True when the input was read to its end."""
        started = self._jobs.started_seqs(self.job.id)
        next_started = next(started, None)
        for item in self._items():
            if self._stopping.is_set():
                return False
            while next_started is not None and next_started < item.seq:
                next_started = next(started, None)
            if next_started == item.seq:
                continue  # finished, or in a provider batch: never sent twice
            if item.problem is not None:
                self._finish(ItemResult(item.seq, item.item_id, ItemState.FAILED, error_class="invalid_input",
                                        error=item.problem))
                continue
            queued = asyncio.ensure_future(self._queue.put(item))
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({queued, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not queued.done():
                queued.cancel()
                return False
        return True

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            if self._stopping.is_set():
                continue  # never started: stays pending
            await self._give_way()
            assert self._counter is not None
            tokens = self._counter.tokens(item)
            if not self._within_budget(item, tokens):
                self.stop(f"the next item would pass --max-cost ${self._max_cost:g}")
                continue
            task = asyncio.create_task(self._run_item(item, tokens), name=f"chatapp-batch-item-{item.seq}")
            self._working[item.seq] = task
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
                self._jobs.release_items(self.job.id, [item.seq])  # back to pending
            finally:
                self._working.pop(item.seq, None)
                self._reserved.pop(item.seq, None)

    async def _give_way(self) -> None:
        """While a user in another process waits on this provider, start nothing new."""
        while self._marks.waiting(self._spec.name) and not self._stopping.is_set():
            await asyncio.sleep(0.02)

    def _within_budget(self, item: BatchItem, tokens: int) -> bool:
        if self._max_cost is None:
            return True
        guess = request_cost(self._spec.model, Usage(tokens, self._max_tokens or ASSUMED_OUTPUT_TOKENS), self._spec)
        if guess is None:
            return True
        if self.progress.cost + sum(self._reserved.values()) + guess > self._max_cost:
            return False
        self._reserved[item.seq] = guess
        return True

    async def _run_item(self, item: BatchItem, tokens: int) -> None:
        spec = self._spec
        self._jobs.mark_inflight(self.job.id, item.seq, item.item_id)  # `batch status` counts it in flight
        self.progress.in_flight += 1
        rounds = 0
        try:
            while True:
                started = time.monotonic()
                job = Job(priority=Priority.BATCH, chain=(spec.name,), build_request=lambda s: self._request(s, item),
                          estimated_input_tokens=tokens, label="batch")
                try:
                    text, usage, provider, model = await self._engine.complete(job)
                except ProviderError as exc:
                    if exc.kind is ErrorKind.UNAVAILABLE and exc.message.startswith("circuit") and rounds < _MAX_ROUNDS:
                        rounds += 1  # the provider is out for a while: wait, do not dead-letter
                        await asyncio.sleep(min(_PAUSE_ON_OPEN_CIRCUIT[0] * 4 ** rounds, _PAUSE_ON_OPEN_CIRCUIT[1]))
                        continue
                    if exc.kind in (ErrorKind.AUTH, ErrorKind.NOT_FOUND) or (
                            exc.kind is ErrorKind.UNAVAILABLE and not exc.message.startswith("circuit")):
                        self.stop(f"{spec.name}: {self._redact(exc.message)}")
                        raise asyncio.CancelledError from None  # the item goes back to pending
                    self._finish(ItemResult(
                        item.seq, item.item_id, ItemState.FAILED, text=_messages_json(item),
                        error_class=exc.kind.value, error=self._redact(exc.message), provider=spec.name,
                        model=spec.model, latency=time.monotonic() - started,
                    ))
                    return
                cost = request_cost(model, usage, self._engine.settings.providers.get(provider)) if usage else None
                self._finish(ItemResult(
                    item.seq, item.item_id, ItemState.DONE, text=text,
                    input_tokens=usage.input_tokens if usage else None,
                    output_tokens=usage.output_tokens if usage else None, cost=cost, provider=provider, model=model,
                    latency=time.monotonic() - started,
                ))
                return
        finally:
            self.progress.in_flight -= 1

    def _request(self, spec: ProviderSpec, item: BatchItem) -> ChatRequest:
        return ChatRequest(model=spec.model, messages=item.messages, system=item.system,
                           max_tokens=self._max_tokens)

    def _finish(self, result: ItemResult) -> None:
        self._jobs.record(self.job.id, result)  # committed before anything else happens to it
        progress = self.progress
        progress.finished_this_run += 1
        if result.state is ItemState.DONE:
            progress.done += 1
            if result.latency is not None:
                progress.latencies.append(result.latency)
        else:
            progress.failed += 1
            progress.errors_this_run += 1
        progress.cost += result.cost or 0.0

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self._output.flush()


def _messages_json(item: BatchItem) -> str:
    messages: list[dict[str, Any]] = []
    if item.system:
        messages.append({"role": "system", "content": item.system})
    messages.extend({"role": m.role.value, "content": m.content} for m in item.messages)
    return json.dumps(messages, ensure_ascii=False)
