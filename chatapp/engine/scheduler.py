"""Who may talk to which provider now: a priority queue of slot requests with preemption.

Hand-written because nothing in the standard library or on PyPI schedules asyncio work by priority
class under global and per-key concurrency limits *and* preempts running low-priority work: an
`asyncio.PriorityQueue` or `Semaphore` can order waiters but cannot take a slot back.

The unit of scheduling is a slot for one attempt on one provider (`acquire` -> `Lease`), so a job
holds nothing while it sleeps in a backoff. Rules:

- INTERACTIVE waiters are served before BACKGROUND ones, and those before BATCH ones; FIFO within a
  class.
- Aging: a background waiter queued longer than `aging_after` ranks with the interactive class by
  arrival, so background work is not starved by a steady stream of turns. A slot won that way is
  not preemptible (or the aged job could be preempted forever).
- Preemption: when an interactive waiter cannot start because its provider's slots (or the global
  ones) are held by preemptible background work, the most recently started such holder is revoked:
  its slot passes to the interactive waiter at once and its task is cancelled. Only work started
  through `run_preemptible` is preemptible; that helper restarts the cancelled work at the front of
  its class, so a preempted job is never lost.
- BATCH work (thousands of queued items) never ages, and is preempted before background work, also
  by a blocked background waiter: titles and summaries keep running beside a batch.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from chatapp.engine.leases import PREEMPTED, Lease, Priority, SchedulerClosed, SchedulerSnapshot, Ticket
from chatapp.engine.percentiles import Percentiles

__all__ = ["Lease", "Priority", "Scheduler", "SchedulerClosed", "SchedulerSnapshot", "Ticket"]

T = TypeVar("T")


@dataclass(eq=False)
class _Waiter:
    key: int
    provider: str
    priority: Priority
    order: int
    front: bool
    enqueued_at: float
    future: asyncio.Future[Lease]
    ticket: Ticket | None


@dataclass
class _Counters:
    preemptions: int = 0
    aged_grants: int = 0
    waits: dict[Priority, deque[float]] = field(default_factory=dict)


class Scheduler:
    def __init__(
        self,
        *,
        global_limit: int,
        provider_limit: Callable[[str], int],
        clock: Callable[[], float],
        aging_after: float = 30.0,
        preemption: bool = True,
        wait_samples: int = 1000,
    ) -> None:
        if global_limit < 1:
            raise ValueError("global_limit must be at least 1")
        self._global_limit = global_limit
        self._provider_limit = provider_limit
        self._clock = clock
        self._aging_after = aging_after
        self._preemption = preemption
        self._seq = itertools.count()
        self._waiting: dict[Priority, dict[int, _Waiter]] = {p: {} for p in Priority}
        self._waiting_on: Counter[str] = Counter()  # queued slot requests per provider
        self._holders: dict[int, Lease] = {}
        self._running: dict[str, int] = {}
        self._running_total = 0
        self._owned: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._counters = _Counters(waits={p: deque(maxlen=wait_samples) for p in Priority})

    # --- slots ------------------------------------------------------------------------------

    async def acquire(self, provider: str, priority: Priority, *, ticket: Ticket | None = None) -> Lease:
        """Wait for a slot on `provider`. Cancelling the caller while it waits leaves the queue clean."""
        if self._closed:
            raise SchedulerClosed("scheduler closed")
        seq = next(self._seq)
        front = ticket is not None and ticket.front
        waiter = _Waiter(
            key=seq,
            provider=provider,
            priority=priority,
            order=ticket.order if front and ticket is not None else seq,
            front=front,
            enqueued_at=self._clock(),
            future=asyncio.get_running_loop().create_future(),
            ticket=ticket,
        )
        self._waiting[priority][seq] = waiter
        self._waiting_on[provider] += 1
        self._dispatch()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if self._waiting[priority].pop(seq, None) is not None:
                self._forget(provider)
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                future.result().release()
            raise

    def running(self, provider: str | None = None) -> int:
        return self._running_total if provider is None else self._running.get(provider, 0)

    def queued(self, provider: str | None = None) -> int:
        if provider is None:
            return sum(len(queue) for queue in self._waiting.values())
        return self._waiting_on.get(provider, 0)

    def _limit(self, provider: str) -> int:
        return max(1, self._provider_limit(provider))

    def _has_room(self, provider: str) -> bool:
        return self._running_total < self._global_limit and self._running.get(provider, 0) < self._limit(provider)

    def _rank(self, waiter: _Waiter, now: float) -> tuple[int, int, int]:
        if waiter.priority is Priority.INTERACTIVE or self._is_aged(waiter, now):
            return (0, 0, waiter.order)
        return (int(waiter.priority), 0 if waiter.front else 1, waiter.order)

    def _is_aged(self, waiter: _Waiter, now: float) -> bool:
        return waiter.priority is Priority.BACKGROUND and now - waiter.enqueued_at >= self._aging_after

    def _dispatch(self) -> None:
        """Grant free slots in rank order, then preempt background work for blocked interactive waiters."""
        now = self._clock()
        if self._running_total < self._global_limit:
            # Only waiters whose provider has room can start; skipping the rest keeps this cheap when
            # hundreds of background jobs queue on a saturated provider.
            roomy = {p for p in self._waiting_on if self._has_room(p)}
            waiting = [w for queue in self._waiting.values() for w in queue.values() if w.provider in roomy]
            for waiter in sorted(waiting, key=lambda w: self._rank(w, now)):
                if self._running_total >= self._global_limit:
                    break
                if self._has_room(waiter.provider):
                    self._grant(waiter, now)
        if self._preemption and (self._waiting[Priority.INTERACTIVE] or self._waiting[Priority.BACKGROUND]):
            self._preempt(now)

    def _preempt(self, now: float) -> None:
        """Interactive waiters take slots from background or batch work; background ones from batch work."""
        blocked = [*self._waiting[Priority.INTERACTIVE].values(), *self._waiting[Priority.BACKGROUND].values()]
        for waiter in blocked:
            if waiter.future.done() or self._has_room(waiter.provider):
                continue  # cancelled, or only waiting behind a higher-ranked waiter on its provider
            rank = Priority.INTERACTIVE if self._is_aged(waiter, now) else waiter.priority
            provider_full = self._running.get(waiter.provider, 0) >= self._limit(waiter.provider)
            victims = [
                lease for lease in self._holders.values()
                if lease.preemptible and lease.priority > rank
                and (not provider_full or lease.provider == waiter.provider)
            ]
            if not victims:
                continue
            # Batch before background; the most recently started first (it has done the least work).
            victim = max(victims, key=lambda lease: (lease.priority, lease.seq))
            self._revoke(victim)
            if self._has_room(waiter.provider):
                self._grant(waiter, now)

    def _grant(self, waiter: _Waiter, now: float) -> None:
        del self._waiting[waiter.priority][waiter.key]
        self._forget(waiter.provider)
        if waiter.future.done():  # cancelled while queued; its own handler has nothing left to do
            return
        aged = self._is_aged(waiter, now)
        if aged:
            self._counters.aged_grants += 1
        waited = now - waiter.enqueued_at
        lease = Lease(self._on_release, waiter.provider, waiter.priority, waiter.ticket,
                      seq=next(self._seq), aged=aged, granted_at=now, waited=waited)
        self._holders[lease.seq] = lease
        self._running[waiter.provider] = self._running.get(waiter.provider, 0) + 1
        self._running_total += 1
        self._counters.waits[waiter.priority].append(waited)
        if waiter.ticket is not None:
            waiter.ticket.front = False
        waiter.future.set_result(lease)

    def _forget(self, provider: str) -> None:
        self._waiting_on[provider] -= 1
        if self._waiting_on[provider] <= 0:
            del self._waiting_on[provider]

    def _revoke(self, lease: Lease) -> None:
        """Take the slot back now and cancel its holder; run_preemptible requeues the work."""
        self._free(lease)
        lease.revoked = True
        self._counters.preemptions += 1
        ticket = lease.ticket
        if ticket is not None and ticket.task is not None:
            ticket.preempted = True
            ticket.task.cancel(PREEMPTED)

    def _free(self, lease: Lease) -> None:
        del self._holders[lease.seq]
        self._running[lease.provider] -= 1
        if not self._running[lease.provider]:
            del self._running[lease.provider]
        self._running_total -= 1

    def _on_release(self, lease: Lease) -> None:
        self._free(lease)
        self._dispatch()

    # --- preemptible work --------------------------------------------------------------------

    async def run_preemptible(
        self, work: Callable[[Ticket], Coroutine[Any, Any, T]], *, name: str | None = None
    ) -> T:
        """Run `work(ticket)` in a task this scheduler owns; restart it when it is preempted.

        `work` must pass the ticket to every `acquire` so its slots can be preempted. A restart
        starts from scratch at the front of its class. Cancelling the caller cancels the
        work for good.
        """
        ticket = Ticket(order=next(self._seq))
        while True:
            if self._closed:
                raise SchedulerClosed("scheduler closed")
            task = asyncio.create_task(work(ticket), name=name)
            ticket.task = task
            ticket.preempted = False
            self._owned.add(task)
            try:
                return await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                if self._closed:
                    raise SchedulerClosed("scheduler closed") from None
                if not ticket.preempted:
                    raise
                ticket.front = True
                ticket.requeues += 1
            finally:
                self._owned.discard(task)

    # --- lifecycle and reporting -------------------------------------------------------------

    async def aclose(self) -> None:
        """Fail every waiter and cancel every owned task."""
        self._closed = True
        for queue in self._waiting.values():
            for waiter in queue.values():
                if not waiter.future.done():
                    waiter.future.set_exception(SchedulerClosed("scheduler closed"))
            queue.clear()
        self._waiting_on.clear()
        tasks = list(self._owned)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def snapshot(self) -> SchedulerSnapshot:
        running = {p: 0 for p in Priority}
        for lease in self._holders.values():
            running[lease.priority] += 1
        return SchedulerSnapshot(
            running_interactive=running[Priority.INTERACTIVE],
            running_background=running[Priority.BACKGROUND],
            queued_interactive=len(self._waiting[Priority.INTERACTIVE]),
            queued_background=len(self._waiting[Priority.BACKGROUND]),
            running_batch=running[Priority.BATCH],
            queued_batch=len(self._waiting[Priority.BATCH]),
            preemptions=self._counters.preemptions,
            aged_grants=self._counters.aged_grants,
            interactive_wait=Percentiles.of(self._counters.waits[Priority.INTERACTIVE]),
            background_wait=Percentiles.of(self._counters.waits[Priority.BACKGROUND]),
        )
