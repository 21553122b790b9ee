"""Scheduler: priority classes, FIFO, limits, preemption with requeue, aging, cancellation."""

import asyncio

import pytest
from engine_fakes import FakeProvider, FakeTime, Pause, collect, job, make_engine, ok, spec, texts

from chatapp.domain import Finish, TextDelta
from chatapp.engine import AttemptStarted, EngineOptions, Priority
from chatapp.engine.scheduler import Scheduler, SchedulerClosed, Ticket

INT, BG = Priority.INTERACTIVE, Priority.BACKGROUND


def scheduler(global_limit=1, per_provider=4, time=None, **kw) -> Scheduler:
    time = time or FakeTime()
    return Scheduler(global_limit=global_limit, provider_limit=lambda name: per_provider, clock=time.clock, **kw)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_interactive_goes_before_queued_background_and_each_class_is_fifo():
    s = scheduler(global_limit=1)
    holder = await s.acquire("p", INT)
    order: list[str] = []

    async def want(label: str, priority: Priority) -> None:
        lease = await s.acquire("p", priority)
        order.append(label)
        await asyncio.sleep(0)
        lease.release()

    tasks = []
    for label, priority in [("b1", BG), ("b2", BG), ("i1", INT), ("b3", BG), ("i2", INT)]:
        tasks.append(asyncio.create_task(want(label, priority)))
        await settle()
    assert order == [] and s.queued() == 5
    holder.release()
    await asyncio.gather(*tasks)
    assert order == ["i1", "i2", "b1", "b2", "b3"]


async def test_global_and_per_provider_limits():
    s = scheduler(global_limit=3, per_provider=2)
    a1 = await s.acquire("a", INT)
    a2 = await s.acquire("a", INT)
    a3 = asyncio.create_task(s.acquire("a", INT))
    b1 = await s.acquire("b", INT)  # a3 waits on a's limit, b still has room
    b2 = asyncio.create_task(s.acquire("b", INT))  # global limit reached
    await settle()
    assert not a3.done() and not b2.done()
    assert (s.running("a"), s.running("b"), s.running()) == (2, 1, 3)
    b1.release()  # frees a global slot; a is still full, so b2 gets it
    await settle()
    assert b2.done() and not a3.done()
    a1.release()
    await settle()
    assert a3.done()
    for lease in (a2, a3.result(), b2.result()):
        lease.release()
    assert s.running() == 0


async def test_interactive_preempts_background_and_the_victim_is_requeued_and_completes():
    s = scheduler(global_limit=2, per_provider=2)
    runs: list[str] = []
    gate = asyncio.Event()

    def background(label: str):
        async def work(ticket: Ticket) -> str:
            lease = await s.acquire("p", BG, ticket=ticket)
            try:
                runs.append(label)
                await gate.wait()
                return label
            finally:
                lease.release()

        return work

    first = asyncio.create_task(s.run_preemptible(background("first")))
    await settle()
    second = asyncio.create_task(s.run_preemptible(background("second")))
    await settle()
    assert s.running("p") == 2
    lease = await asyncio.wait_for(s.acquire("p", INT), 0.5)  # no waiting behind background work
    assert lease.waited == 0 and s.snapshot().preemptions == 1
    await settle()
    assert runs == ["first", "second"]  # the most recently started one was preempted ...
    assert s.queued() == 1  # ... and is queued again, not lost
    lease.release()
    await settle()
    assert runs == ["first", "second", "second"]
    gate.set()
    assert await first == "first" and await second == "second"


async def test_preempted_job_goes_to_the_front_of_its_class():
    s = scheduler(global_limit=1)
    order: list[str] = []
    gate = asyncio.Event()

    def background(label: str):
        async def work(ticket: Ticket) -> None:
            lease = await s.acquire("p", BG, ticket=ticket)
            try:
                order.append(label)
                await gate.wait()
            finally:
                lease.release()

        return work

    victim = asyncio.create_task(s.run_preemptible(background("victim")))
    await settle()
    queued = asyncio.create_task(s.run_preemptible(background("queued")))
    await settle()
    turn = await s.acquire("p", INT)
    await settle()
    turn.release()
    gate.set()
    await asyncio.gather(victim, queued)
    assert order == ["victim", "victim", "queued"]


async def test_preemption_frees_a_global_slot_held_on_another_provider():
    s = scheduler(global_limit=1)
    started = asyncio.Event()

    async def work(ticket: Ticket) -> None:
        lease = await s.acquire("slow", BG, ticket=ticket)
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            lease.release()

    task = asyncio.create_task(s.run_preemptible(work))
    await started.wait()
    lease = await asyncio.wait_for(s.acquire("fast", INT), 0.5)
    assert lease.provider == "fast" and s.running("slow") == 0
    task.cancel()
    lease.release()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_no_preemption_of_background_work_run_in_the_callers_task():
    s = scheduler(global_limit=1)
    held = await s.acquire("p", BG)  # no ticket: not preemptible
    waiting = asyncio.create_task(s.acquire("p", INT))
    await settle()
    assert not waiting.done() and s.snapshot().preemptions == 0
    held.release()
    (await waiting).release()


async def test_interactive_waits_behind_interactive_without_preempting():
    s = scheduler(global_limit=2, per_provider=1)
    turn = await s.acquire("p", INT)
    gate = asyncio.Event()

    async def work(ticket: Ticket) -> None:
        lease = await s.acquire("other", BG, ticket=ticket)
        try:
            await gate.wait()
        finally:
            lease.release()

    bg = asyncio.create_task(s.run_preemptible(work))
    await settle()
    second = asyncio.create_task(s.acquire("p", INT))
    await settle()
    # p's only slot is interactive; freeing the background slot on "other" would not help
    assert not second.done() and s.snapshot().preemptions == 0
    turn.release()
    (await second).release()
    gate.set()
    await bg


async def test_aging_lets_old_background_work_ahead_of_newer_turns():
    time = FakeTime()
    s = scheduler(global_limit=1, time=time, aging_after=30.0)
    holder = await s.acquire("p", INT)
    order: list[str] = []

    async def want(label: str, priority: Priority, ticket: Ticket | None = None) -> None:
        lease = await s.acquire("p", priority, ticket=ticket)
        order.append(label)
        await asyncio.sleep(0)
        lease.release()

    old = asyncio.create_task(want("old background", BG))
    await settle()
    time.advance(31)
    young = asyncio.create_task(want("young background", BG))
    turn = asyncio.create_task(want("turn", INT))
    await settle()
    holder.release()
    await asyncio.gather(old, young, turn)
    assert order == ["old background", "turn", "young background"]
    assert s.snapshot().aged_grants == 1


async def test_a_slot_won_by_aging_is_not_preemptible():
    time = FakeTime()
    s = scheduler(global_limit=1, time=time, aging_after=30.0)
    holder = await s.acquire("p", INT)
    got = asyncio.Event()
    gate = asyncio.Event()

    async def work(ticket: Ticket) -> None:
        lease = await s.acquire("p", BG, ticket=ticket)
        got.set()
        try:
            await gate.wait()
        finally:
            lease.release()

    bg = asyncio.create_task(s.run_preemptible(work))
    await settle()
    time.advance(31)
    holder.release()
    await got.wait()
    turn = asyncio.create_task(s.acquire("p", INT))
    await settle()
    assert not turn.done() and s.snapshot().preemptions == 0
    gate.set()
    await bg
    (await turn).release()


async def test_cancelled_waiter_leaves_the_queue():
    s = scheduler(global_limit=1)
    holder = await s.acquire("p", INT)
    waiter = asyncio.create_task(s.acquire("p", BG))
    await settle()
    assert s.queued() == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert s.queued() == 0
    holder.release()
    assert s.running() == 0


async def test_waiter_cancelled_just_after_its_grant_gives_the_slot_back():
    s = scheduler(global_limit=1)
    holder = await s.acquire("p", INT)
    waiter = asyncio.create_task(s.acquire("p", INT))
    await settle()
    holder.release()  # grants to waiter, which has not resumed yet
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert s.running() == 0


async def test_aclose_fails_waiters_and_cancels_owned_work():
    s = scheduler(global_limit=1)
    holder = await s.acquire("p", INT)
    waiter = asyncio.create_task(s.acquire("p", INT))

    async def work(ticket: Ticket) -> None:
        await asyncio.sleep(3600)

    owned = asyncio.create_task(s.run_preemptible(work))
    await settle()
    await s.aclose()
    with pytest.raises(SchedulerClosed):
        await waiter
    with pytest.raises(SchedulerClosed):
        await owned
    holder.release()
    with pytest.raises(SchedulerClosed):
        await s.acquire("p", INT)


# --- through the engine --------------------------------------------------------------------


async def test_engine_turn_preempts_background_job_which_then_completes():
    slow = [TextDelta("summary "), Pause(0.3), TextDelta("text"), Finish("stop")]
    a = FakeProvider("a", replies=[slow, ok("turn reply"), slow])
    h = make_engine([a], [spec("a", max_concurrency=1)], fake_time=False)
    background = asyncio.create_task(h.engine.complete(job("a", priority=Priority.BACKGROUND, label="summary")))
    while a.active == 0:
        await asyncio.sleep(0.001)
    loop = asyncio.get_running_loop()
    start = loop.time()
    events = await collect(h.engine, job("a"))
    assert texts(events) == "turn reply"
    assert loop.time() - start < 0.2  # did not wait for the 0.3 s background stream
    result = await asyncio.wait_for(background, 2)
    assert result.text == "summary text" and result.provider == "a"
    assert a.calls == 3
    snap = h.engine.stats.snapshot()
    assert snap.scheduler.preemptions == 1
    assert snap.provider("a").failures == 0 and h.engine.breaker_state("a") == "closed"


async def test_engine_honours_max_concurrency():
    a = FakeProvider("a", default=[TextDelta("x"), Pause(0.02), Finish("stop")])
    h = make_engine([a], [spec("a", max_concurrency=2)], options=EngineOptions(global_concurrency=8),
                    fake_time=False)
    results = await asyncio.gather(*(h.engine.complete(job("a", priority=Priority.BACKGROUND)) for _ in range(6)))
    assert [r.text for r in results] == ["x"] * 6
    assert a.max_active == 2


async def test_engine_global_limit_spans_providers():
    a = FakeProvider("a", default=[TextDelta("x"), Pause(0.02), Finish("stop")])
    b = FakeProvider("b", default=[TextDelta("y"), Pause(0.02), Finish("stop")])
    h = make_engine([a, b], options=EngineOptions(global_concurrency=3), fake_time=False)
    jobs = [job(name, priority=Priority.BACKGROUND) for name in "abababab"]
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, a.active + b.active)
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(h.engine.complete(j) for j in jobs))
    watcher.cancel()
    assert peak == 3


async def test_engine_close_fails_background_work_cleanly():
    a = FakeProvider("a", default=[TextDelta("x"), Pause(3600)])
    h = make_engine([a], fake_time=False)
    pending = asyncio.create_task(h.engine.complete(job("a", priority=Priority.BACKGROUND)))
    while a.active == 0:
        await asyncio.sleep(0.001)
    await h.engine.aclose()
    from chatapp.domain import ErrorKind, ProviderError

    with pytest.raises(ProviderError) as info:
        await pending
    assert info.value.kind is ErrorKind.UNAVAILABLE
    with pytest.raises(ProviderError):
        await collect(h.engine, job("a"))


async def test_attempt_started_comes_only_once_a_slot_is_held():
    a = FakeProvider("a", default=ok())
    h = make_engine([a], [spec("a", max_concurrency=1)], fake_time=False)
    blocker = await h.engine.scheduler.acquire("a", Priority.INTERACTIVE)
    seen: list[object] = []

    async def run() -> None:
        async for event in h.engine.stream(job("a")):
            seen.append(event)

    task = asyncio.create_task(run())
    await settle()
    assert seen == []
    blocker.release()
    await task
    assert isinstance(seen[0], AttemptStarted)


# --- the batch class -----------------------------------------------------------------------


async def test_batch_waiters_go_after_background_and_interactive_and_never_age():
    time = FakeTime()
    s = scheduler(global_limit=1, time=time, aging_after=1.0)
    holder = await s.acquire("p", INT)
    order: list[str] = []

    async def want(label: str, priority: Priority) -> None:
        lease = await s.acquire("p", priority)
        order.append(label)
        await asyncio.sleep(0)
        lease.release()

    tasks = [asyncio.create_task(want("batch", Priority.BATCH))]
    await settle()
    time.advance(60)  # far past aging_after: a batch item still ranks last
    for label, priority in [("bg", BG), ("int", INT)]:
        tasks.append(asyncio.create_task(want(label, priority)))
        await settle()
    holder.release()
    await asyncio.gather(*tasks)
    assert order == ["int", "bg", "batch"]
    snap = s.snapshot()
    assert (snap.running_batch, snap.queued_batch) == (0, 0)


async def test_interactive_and_background_work_preempt_a_running_batch_item():
    slow = [TextDelta("batch "), Pause(0.3), TextDelta("item"), Finish("stop")]
    a = FakeProvider("a", replies=[slow, ok("title"), slow])
    h = make_engine([a], [spec("a", max_concurrency=1)], fake_time=False)
    batch = asyncio.create_task(h.engine.complete(job("a", priority=Priority.BATCH, label="batch")))
    while a.active == 0:
        await asyncio.sleep(0.001)
    assert h.engine.scheduler.snapshot().running_batch == 1
    start = asyncio.get_running_loop().time()
    title = await h.engine.complete(job("a", priority=Priority.BACKGROUND, label="title"))
    assert title.text == "title"
    assert asyncio.get_running_loop().time() - start < 0.2  # did not wait for the batch item
    result = await asyncio.wait_for(batch, 2)
    assert result.text == "batch item" and a.calls == 3
    assert h.engine.stats.snapshot().scheduler.preemptions == 1
