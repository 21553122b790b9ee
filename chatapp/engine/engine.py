"""RequestEngine: the facade the service calls; wires scheduler, breakers, limiters, stats and the runner."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import NamedTuple

from chatapp.config import ProviderSpec, Settings
from chatapp.domain import ErrorKind, ProviderError, TextDelta, Usage
from chatapp.engine.breaker import CircuitBreaker
from chatapp.engine.jobs import AttemptStarted, EngineEvent, EngineOptions, Job
from chatapp.engine.ratelimit import RateInfo, RateLimiter
from chatapp.engine.runner import JobRun, RunContext
from chatapp.engine.scheduler import Priority, Scheduler, SchedulerClosed, SchedulerSnapshot, Ticket
from chatapp.engine.stats import EngineStats
from chatapp.providers.base import Provider

_DEFAULT_CONCURRENCY: int = ProviderSpec.__dataclass_fields__["max_concurrency"].default  # type: ignore[assignment]


class Completion(NamedTuple):
    """A collected reply: `text, usage, provider, model = await engine.complete(job)`."""

    text: str
    usage: Usage | None
    provider: str
    model: str


class RequestEngine:
    """Runs jobs through the scheduler and the retry/fallback loop; one per process (or per test).

    `clock` and `sleep` drive deadlines, backoff, breakers, rate limits and aging, so tests can use a
    fake time; per-event timeouts (first token, stall) use the event loop's own clock.
    """

    def __init__(
        self,
        settings: Settings,
        get_provider: Callable[[str], Provider],
        *,
        options: EngineOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        stats: EngineStats | None = None,
    ) -> None:
        self._settings = settings
        self.options = options or EngineOptions()
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._limiters: dict[str, RateLimiter] = {}
        self._closed = False
        self.scheduler = Scheduler(
            global_limit=self.options.global_concurrency,
            provider_limit=self._provider_limit,
            clock=clock,
            aging_after=self.options.aging_after,
            preemption=self.options.preemption,
        )
        self.stats = stats or EngineStats(samples=self.options.latency_samples)
        self.stats.attach(self)
        self._ctx = RunContext(
            settings=settings,
            get_provider=get_provider,
            scheduler=self.scheduler,
            stats=self.stats,
            options=self.options,
            breaker=self._breaker,
            limiter=self._limiter,
            clock=clock,
            sleep=sleep,
            rng=rng or random.Random(),
        )

    @property
    def settings(self) -> Settings:
        return self._settings

    # --- running jobs ------------------------------------------------------------------------

    async def stream(self, job: Job) -> AsyncGenerator[EngineEvent, None]:
        """Run `job` in the caller's task, yielding its events; raises the last ProviderError.

        Cancel the task to cancel the job (also during a backoff sleep: no further attempt is made).
        Leaving the loop early releases the slot when the generator is closed; wrap the call in
        `contextlib.aclosing` to make that immediate. A BACKGROUND job run this way is queued as
        background but cannot be preempted (its task is the caller's); use complete() for that.
        """
        self._check_open()
        try:
            async with aclosing(JobRun(self._ctx, job).events()) as events:
                async for event in events:
                    yield event
        except SchedulerClosed:
            raise self._closed_error() from None

    async def complete(self, job: Job) -> Completion:
        """Run `job` to the end and return the text of the reply that finished.

        BACKGROUND and BATCH jobs run in a task the scheduler owns, so more urgent work can preempt them;
        a preempted job is requeued at the front of its class and runs again from scratch.
        """
        self._check_open()
        try:
            if job.priority is not Priority.INTERACTIVE:
                return await self.scheduler.run_preemptible(
                    lambda ticket: self._collect(job, ticket), name=f"chatapp-engine:{job.label or 'job'}"
                )
            return await self._collect(job, None)
        except SchedulerClosed:
            raise self._closed_error() from None

    async def _collect(self, job: Job, ticket: Ticket | None) -> Completion:
        parts: list[str] = []
        usage: Usage | None = None
        provider = model = ""
        async with aclosing(JobRun(self._ctx, job, ticket).events()) as events:
            async for event in events:
                if isinstance(event, AttemptStarted):
                    parts.clear()  # a failed attempt's text is not part of the answer
                    usage = None
                    provider, model = event.provider, event.model
                elif isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Usage):
                    usage = event
        return Completion("".join(parts), usage, provider, model)

    # --- state for the UI --------------------------------------------------------------------

    def breaker_state(self, name: str) -> str:
        """"closed", "open", "half_open" or "disabled"."""
        breaker = self._breakers.get(name)
        return breaker.state.value if breaker is not None else "closed"

    def breaker_reason(self, name: str) -> str | None:
        breaker = self._breakers.get(name)
        return breaker.reason if breaker is not None else None

    def reset_provider(self, name: str) -> None:
        """Put a provider back in service (after the user fixed its key, for instance)."""
        breaker = self._breakers.get(name)
        if breaker is not None:
            breaker.reset()

    def provider_names(self) -> tuple[str, ...]:
        return tuple(self._settings.providers)

    def rate(self, name: str) -> RateInfo | None:
        return self._limiter(name).info() if name in self._settings.providers else None

    def load(self, name: str) -> tuple[int, int]:
        """(running, queued) slot requests for a provider."""
        return self.scheduler.running(name), self.scheduler.queued(name)

    def scheduler_snapshot(self) -> SchedulerSnapshot:
        return self.scheduler.snapshot()

    async def aclose(self) -> None:
        """Cancel queued and background work; later calls raise ProviderError(UNAVAILABLE)."""
        self._closed = True
        await self.scheduler.aclose()

    # --- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    @staticmethod
    def _closed_error() -> ProviderError:
        return ProviderError(ErrorKind.UNAVAILABLE, "the request engine is closed")

    def _provider_limit(self, name: str) -> int:
        spec = self._settings.providers.get(name)
        return spec.max_concurrency if spec is not None else _DEFAULT_CONCURRENCY

    def _breaker(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = CircuitBreaker(self._clock, self.options.breaker)
        return breaker

    def _limiter(self, name: str) -> RateLimiter:
        limiter = self._limiters.get(name)
        if limiter is None:
            spec = self._settings.providers.get(name)
            options = self.options
            limiter = self._limiters[name] = RateLimiter(
                spec.rpm if spec else None,
                spec.tpm if spec else None,
                self._clock,
                decrease=options.rate_decrease,
                increase=options.rate_increase,
                min_factor=options.min_rate_factor,
            )
        return limiter
