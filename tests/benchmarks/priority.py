"""Benchmark: interactive turns arriving while background work saturates a slow provider.

200 background jobs (engine.complete, ~100 ms of provider time each) are queued against one in-memory
provider whose slots (max_concurrency) are all busy; then 50 interactive turns arrive, one every
20 ms. Prints the interactive queue wait (from engine.stream() to AttemptStarted, i.e. scheduling
only, not provider time) and the background throughput before and during the interactive phase.
Target: interactive queue wait p99 < 5 ms. Run: python tests/benchmarks/priority.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from chatapp.config import Paths, ProviderSpec, Settings
from chatapp.domain import ChatMessage, ChatRequest, Finish, Role, StreamEvent, TextDelta, Usage
from chatapp.engine import AttemptStarted, EngineOptions, Job, Priority, RequestEngine
from chatapp.engine.percentiles import percentile

BACKGROUND_JOBS = 200
INTERACTIVE_TURNS = 50
SLOTS = 4
TURN_INTERVAL = 0.020
BACKGROUND_CHUNKS = 5  # x 20 ms = ~100 ms per background job
TURN_CHUNKS = 2  # x 5 ms = ~10 ms per turn
BEFORE_WINDOW = 1.0


@dataclass
class SlowProvider:
    """Streams a few chunks with real pauses; background requests are slower than turns."""

    name: str = "slow"
    kind: str = "fake"
    model: str = "slow-model"
    calls: dict[str, int] = field(default_factory=lambda: {"background": 0, "turn": 0})

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return self._play(request.messages[0].content)

    async def _play(self, label: str) -> AsyncIterator[StreamEvent]:
        self.calls[label] += 1
        chunks, pause = (BACKGROUND_CHUNKS, 0.020) if label == "background" else (TURN_CHUNKS, 0.005)
        for index in range(chunks):
            await asyncio.sleep(pause)
            yield TextDelta(f"{label}{index} ")
        yield Usage(100, chunks)
        yield Finish("stop")

    async def aclose(self) -> None:
        return None


def make_job(priority: Priority, label: str) -> Job:
    def build(spec: ProviderSpec) -> ChatRequest:
        return ChatRequest(model=spec.model, messages=(ChatMessage(Role.USER, label),))

    return Job(priority=priority, chain=("slow",), build_request=build, label=label)


async def run() -> dict[str, float]:
    provider = SlowProvider()
    root = Path("/nonexistent-chatapp-benchmark")
    settings = Settings(
        paths=Paths(root, root, root),
        providers={"slow": ProviderSpec(name="slow", kind="openai", model="slow-model", max_concurrency=SLOTS)},
        default_provider="slow",
    )
    engine = RequestEngine(settings, lambda name: provider, options=EngineOptions(global_concurrency=SLOTS * 2))
    done_at: list[float] = []

    async def background() -> None:
        result = await engine.complete(make_job(Priority.BACKGROUND, "background"))
        assert result.text.startswith("background0")
        done_at.append(time.perf_counter())

    background_tasks = [asyncio.create_task(background()) for _ in range(BACKGROUND_JOBS)]
    await asyncio.sleep(0.2)  # let the slots fill
    assert engine.scheduler.running("slow") == SLOTS
    before_start = time.perf_counter()
    await asyncio.sleep(BEFORE_WINDOW)
    before_end = time.perf_counter()
    before_done = sum(1 for t in done_at if before_start <= t < before_end)

    waits: list[float] = []

    async def turn() -> None:
        submitted = time.perf_counter()
        started = False
        async for event in engine.stream(make_job(Priority.INTERACTIVE, "turn")):
            if isinstance(event, AttemptStarted) and not started:
                started = True
                waits.append(time.perf_counter() - submitted)

    during_start = time.perf_counter()
    turn_tasks = []
    for _ in range(INTERACTIVE_TURNS):
        turn_tasks.append(asyncio.create_task(turn()))
        await asyncio.sleep(TURN_INTERVAL)
    await asyncio.gather(*turn_tasks)
    during_end = time.perf_counter()
    during_done = sum(1 for t in done_at if during_start <= t < during_end)

    await asyncio.gather(*background_tasks)
    snapshot = engine.stats.snapshot()
    await engine.aclose()
    assert snapshot.scheduler is not None
    ordered = sorted(waits)
    return {
        "turns": len(waits),
        "wait_p50_ms": (percentile(ordered, 50) or 0) * 1000,
        "wait_p99_ms": (percentile(ordered, 99) or 0) * 1000,
        "wait_max_ms": ordered[-1] * 1000,
        "sched_wait_p99_ms": (snapshot.scheduler.interactive_wait.p99 or 0) * 1000,
        "before_jobs_per_s": before_done / (before_end - before_start),
        "during_jobs_per_s": during_done / (during_end - during_start),
        "background_completed": len(done_at),
        "background_calls": provider.calls["background"],
        "preemptions": snapshot.scheduler.preemptions,
    }


def main() -> None:
    figures = asyncio.run(run())
    print(f"{BACKGROUND_JOBS} background jobs on {SLOTS} slots, {INTERACTIVE_TURNS} interactive turns "
          f"every {TURN_INTERVAL * 1000:.0f} ms")
    print(f"interactive queue wait (stream() -> AttemptStarted): p50 {figures['wait_p50_ms']:.2f} ms, "
          f"p99 {figures['wait_p99_ms']:.2f} ms, max {figures['wait_max_ms']:.2f} ms "
          f"(target p99 < 5 ms) over {figures['turns']:.0f} turns")
    print(f"scheduler slot wait, interactive: p99 {figures['sched_wait_p99_ms']:.3f} ms")
    print(f"background throughput: before {figures['before_jobs_per_s']:.1f} jobs/s, "
          f"during turns {figures['during_jobs_per_s']:.1f} jobs/s")
    print(f"preemptions {figures['preemptions']:.0f}; background completed "
          f"{figures['background_completed']:.0f}/{BACKGROUND_JOBS} "
          f"with {figures['background_calls']:.0f} provider calls (restarts after preemption included)")


if __name__ == "__main__":
    main()
