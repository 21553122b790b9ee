"""A batch job on the provider's own Batch API (`--mode provider`): half the price, up to a day's wait.

Items are submitted in provider batches of `chunk_size`. Before each create, an intent (a fresh tag and
the chunk's items) is committed and the tag travels with the create; the created batch and its items are
then recorded in one transaction that retires the intent. A restart polls the batches it recorded, and
first asks the provider for the batch of any intent left behind (the process died between the provider
creating it and chatapp recording its id), so nothing is submitted, or paid for, twice.
Polling backs off from `poll_initial` to `poll_max` seconds; transient errors while polling only delay
it. Results are mapped back to items by custom id (`item-<seq>`) and written like a live run's.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from chatapp.config import ProviderSpec
from chatapp.domain import ChatRequest, ProviderError
from chatapp.engine.stats import request_cost
from chatapp.service.batch import BatchOutcome, BatchProgress
from chatapp.service.batch_estimate import PROVIDER_BATCH_DISCOUNT
from chatapp.service.batch_input import BatchItem
from chatapp.service.batch_output import OutputFiles
from chatapp.store.batch_jobs import BatchJobs, ItemResult, ItemState, JobRecord, JobStatus

if TYPE_CHECKING:
    from chatapp.providers.batch_api import BatchAPI, RemoteResult


class RemoteBatchRun:
    poll_initial = 2.0
    poll_max = 60.0
    poll_growth = 1.5

    def __init__(self, *, api: BatchAPI, jobs: BatchJobs, job: JobRecord, spec: ProviderSpec,
                 items: Callable[[], Iterator[BatchItem]], max_tokens: int | None, chunk_size: int, ordered: bool,
                 redact: Callable[[str], str] = str) -> None:
        self._api = api
        self._jobs = jobs
        self.job = job
        self._spec = spec
        self._items = items
        self._max_tokens = max_tokens
        self._chunk_size = max(1, chunk_size)
        self._redact = redact
        self._output = OutputFiles(jobs, job, ordered=ordered)
        self._stopping = asyncio.Event()
        self._stop_reason: str | None = None
        counts = jobs.counts(job.id)
        self.progress = BatchProgress(total=job.total, done=counts.get(ItemState.DONE, 0),
                                      failed=counts.get(ItemState.FAILED, 0), cost=job.cost)

    def stop(self, reason: str = "interrupted") -> None:
        """Stop submitting and polling; the provider keeps working, `--resume` polls again."""
        if not self._stopping.is_set():
            self._stop_reason = reason
            self.progress.state = "stopped"
            self._stopping.set()

    cancel = stop  # nothing local is in flight to cancel

    async def run(self) -> BatchOutcome:
        self._jobs.set_status(self.job.id, JobStatus.RUNNING)
        self._output.repair()
        self._output.flush()
        try:
            self.progress.state = "submitting"
            submitted_all = await self._submit()
            self.progress.state = "waiting for the provider"
            for remote in self._jobs.remote_batches(self.job.id):
                if self._stopping.is_set():
                    break
                await self._collect(remote.remote_id)
        except ProviderError as exc:
            self.stop(self._redact(str(exc)))
            submitted_all = False
        finally:
            self._output.flush()
            await self._api.aclose()
        counts = self._jobs.counts(self.job.id)
        finished = counts.get(ItemState.DONE, 0) + counts.get(ItemState.FAILED, 0)
        complete = submitted_all and finished >= self.job.total and not self._stopping.is_set()
        self._jobs.set_status(self.job.id, JobStatus.DONE if complete else JobStatus.STOPPED)
        self.progress.state = "finished" if complete else "stopped"
        return BatchOutcome(self.job.id, complete, self.progress, None if complete else self._stop_reason)

    async def _submit(self) -> bool:
        """Submit every item without a row; True when the input was read to its end."""
        await self._settle_intents()
        started = self._jobs.started_seqs(self.job.id)
        next_started = next(started, None)
        chunk: list[tuple[BatchItem, ChatRequest]] = []
        for item in self._items():
            if self._stopping.is_set():
                return False
            while next_started is not None and next_started < item.seq:
                next_started = next(started, None)
            if next_started == item.seq:
                continue
            if item.problem is not None:
                self._finish([ItemResult(item.seq, item.item_id, ItemState.FAILED, error_class="invalid_input",
                                         error=item.problem)])
                continue
            chunk.append((item, ChatRequest(self._spec.model, item.messages, item.system, self._max_tokens)))
            if len(chunk) >= self._chunk_size:
                await self._submit_chunk(chunk)
                chunk = []
        if chunk:
            await self._submit_chunk(chunk)
        return True

    async def _settle_intents(self) -> None:
        """Creates a dead run sent without recording their result: adopt the batch the provider made, or
        let the items be submitted again when it made none."""
        for intent in self._jobs.intents(self.job.id):
            remote_id = await self._api.find(intent.tag, count=len(intent.items), since=intent.created,
                                             exclude=self._jobs.remote_ids())
            if remote_id is None:
                self._jobs.drop_intent(self.job.id, intent.tag)
            else:
                self._jobs.add_remote(self.job.id, remote_id, intent.items, tag=intent.tag)

    async def _submit_chunk(self, chunk: list[tuple[BatchItem, ChatRequest]]) -> None:
        seqs = [(item.seq, item.item_id) for item, _ in chunk]
        tag = f"{self.job.id}-{secrets.token_hex(6)}"
        self._jobs.add_intent(self.job.id, tag, seqs)  # committed before the provider hears of it
        remote_id = await self._api.submit([(f"item-{item.seq}", request) for item, request in chunk],
                                           label=self.job.id, tag=tag)
        self._jobs.add_remote(self.job.id, remote_id, seqs, tag=tag)

    async def _collect(self, remote_id: str) -> None:
        delay = self.poll_initial
        while True:
            try:
                status = await self._api.poll(remote_id)
            except ProviderError as exc:
                if not exc.kind.retryable:
                    raise
            else:
                if status.ended:
                    break
            stop = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({stop}, timeout=delay)
            finally:
                stop.cancel()
            if self._stopping.is_set():
                return
            delay = min(delay * self.poll_growth, self.poll_max)
        waiting = self._jobs.submitted_items(self.job.id, remote_id)
        results: list[ItemResult] = []
        async for result in self._api.results(remote_id):
            found = waiting.pop(result.custom_id, None)
            if found is not None:
                results.append(self._item_result(found, result))
        for seq, item_id in waiting.values():  # in neither results file: the batch expired or was cancelled
            results.append(ItemResult(seq, item_id, ItemState.FAILED, error_class="expired",
                                      error="the provider batch ended without a result for this item"))
        self._jobs.finish_remote(self.job.id, remote_id, results)
        self._count(results)
        self._output.flush()

    def _item_result(self, found: tuple[int, str], result: RemoteResult) -> ItemResult:
        seq, item_id = found
        spec = self._spec
        if result.error_class is not None:
            return ItemResult(seq, item_id, ItemState.FAILED, error_class=result.error_class,
                              error=self._redact(result.error or ""), provider=spec.name, model=spec.model)
        cost = request_cost(spec.model, result.usage, spec) if result.usage else None
        return ItemResult(seq, item_id, ItemState.DONE, text=result.text,
                          input_tokens=result.usage.input_tokens if result.usage else None,
                          output_tokens=result.usage.output_tokens if result.usage else None,
                          cost=cost * PROVIDER_BATCH_DISCOUNT if cost is not None else None,
                          provider=spec.name, model=spec.model)

    def _finish(self, results: list[ItemResult]) -> None:
        self._jobs.record_many(self.job.id, results)
        self._count(results)

    def _count(self, results: list[ItemResult]) -> None:
        for result in results:
            self.progress.finished_this_run += 1
            if result.state is ItemState.DONE:
                self.progress.done += 1
            else:
                self.progress.failed += 1
                self.progress.errors_this_run += 1
            self.progress.cost += result.cost or 0.0
