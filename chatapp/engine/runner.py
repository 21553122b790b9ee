"""The one retry loop: attempts on a provider, backoff, Retry-After, breaker, then the fallback chain.

Hand-written rather than built on a retry library because the loop is an async generator: between
attempts it yields events the UI shows ("rate limited, retrying in 2.0 s"), it must know whether text
already reached the user (then the partial reply is closed and a fresh one starts), and it decides
per error kind between retrying, falling back and raising to the caller.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

from chatapp.config import RetrySettings, Settings
from chatapp.domain import ErrorKind, Notice, ProviderError, TextDelta, Usage
from chatapp.engine.attempt import DeadlineExceeded, timed_events
from chatapp.engine.backoff import retry_delay
from chatapp.engine.breaker import BreakerSettings, CircuitBreaker
from chatapp.engine.jobs import AttemptFailed, AttemptStarted, EngineEvent, EngineOptions, Job
from chatapp.engine.ratelimit import RateLimiter
from chatapp.engine.scheduler import Lease, Priority, Scheduler, Ticket
from chatapp.engine.stats import EngineStats
from chatapp.providers.base import Provider

# The request itself is at fault: raised to the caller at once (context-too-long goes to the context
# path), and no verdict on the provider's health.
CALLER_ERRORS = frozenset({ErrorKind.INVALID_REQUEST, ErrorKind.CONTEXT_TOO_LONG, ErrorKind.CONTENT_FILTERED})


@dataclass(frozen=True)
class RunContext:
    """Everything a run needs from the engine; one per engine, shared by its runs."""

    settings: Settings
    get_provider: Callable[[str], Provider]
    scheduler: Scheduler
    stats: EngineStats
    options: EngineOptions
    breaker: Callable[[str], CircuitBreaker]
    limiter: Callable[[str], RateLimiter]
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    rng: random.Random


def describe(error: ProviderError) -> str:
    """A phrase that follows the provider's name: "openai rate limited"."""
    kind = error.kind
    if kind is ErrorKind.RATE_LIMITED:
        return "rate limited"
    if kind is ErrorKind.AUTH:
        return f"rejected the credentials ({error.message})"
    if kind is ErrorKind.UNAVAILABLE:
        return f"is unavailable ({error.message})"
    if kind is ErrorKind.NOT_FOUND:
        return f"does not know the model or endpoint ({error.message})"
    if kind is ErrorKind.TIMEOUT:
        return f"timed out ({error.message})"
    if kind is ErrorKind.INTERRUPTED:
        return f"broke off the reply ({error.message})"
    return f"failed ({error.message})"


def attempts_allowed(retry: RetrySettings, breaker: BreakerSettings) -> int:
    """Attempts per provider per job: `max_attempts`, but never more than the consecutive failures that open
    the breaker, since the attempt after those would never be sent."""
    return max(1, min(retry.max_attempts, breaker.failure_threshold))


class _ProviderDone(Exception):
    """Internal: stop using this provider and move down the chain."""

    def __init__(self, error: ProviderError, why: str) -> None:
        super().__init__(why)
        self.error = error
        self.why = why


class JobRun:
    """One job's way through its chain. Iterate `events()`; it raises the last ProviderError at the end."""

    def __init__(self, ctx: RunContext, job: Job, ticket: Ticket | None = None) -> None:
        self._ctx = ctx
        self._job = job
        self._ticket = ticket
        retry = ctx.settings.retry
        if job.deadline is not None:
            self._budget = job.deadline
        elif job.priority is Priority.INTERACTIVE:
            self._budget = retry.interactive_deadline
        else:
            self._budget = retry.background_deadline
        self._deadline: float | None = None  # set when the first slot is granted
        # Each provider may spend only its share of what is left before its first token, so a stuck one
        # leaves time for the fallbacks after it: set when its first slot is granted.
        self._provider_deadline: float | None = None
        self._providers_left = 1
        self._reason: str | None = None  # why the next attempt is not the first
        self._restart = False  # text of a failed attempt was shown

    def chain(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self._job.chain)) if self._job.chain else self._ctx.settings.chain()

    def remaining(self) -> float:
        """Seconds the current provider may still wait (its share, within the job's deadline)."""
        left = self._job_remaining()
        if self._provider_deadline is not None:
            left = min(left, self._provider_deadline - self._ctx.clock())
        return left

    def _job_remaining(self) -> float:
        if self._deadline is None:
            return self._budget
        return self._deadline - self._ctx.clock()

    async def events(self) -> AsyncGenerator[EngineEvent, None]:
        chain = self.chain()
        if not chain:
            raise ProviderError(ErrorKind.UNAVAILABLE, "no provider configured")
        last: ProviderError | None = None
        for index, name in enumerate(chain):
            self._providers_left = len(chain) - index
            self._provider_deadline = None
            try:
                try:
                    async with aclosing(self._on_provider(name, is_fallback=index > 0)) as events:
                        async for event in events:
                            yield event
                    return
                except DeadlineExceeded as exc:
                    if index + 1 >= len(chain) or self._job_remaining() <= 0:
                        raise
                    raise _ProviderDone(exc, "did not answer within its share of the turn's deadline") from None
            except _ProviderDone as done:
                last = done.error
                self._reason = f"{name} {done.why}"
                if index + 1 < len(chain):
                    self._ctx.stats.record_fallback(name)
                    following = chain[index + 1]
                    spec = self._ctx.settings.providers.get(following)
                    model = f" ({spec.model})" if spec else ""
                    yield Notice(f"{name} {done.why}; falling back to {following}{model}")
        assert last is not None
        raise last

    async def _on_provider(self, name: str, *, is_fallback: bool) -> AsyncGenerator[EngineEvent, None]:
        """Attempts on one provider. Returns on success; raises _ProviderDone to fall back."""
        ctx = self._ctx
        spec = ctx.settings.providers.get(name)
        if spec is None:
            missing = ProviderError(ErrorKind.UNAVAILABLE, "not configured", provider=name)
            raise _ProviderDone(missing, "is not configured")
        breaker = ctx.breaker(name)
        if not breaker.available():
            raise self._unavailable(name, breaker)
        try:
            provider = ctx.get_provider(name)
        except ProviderError as exc:
            exc.provider = exc.provider or name
            if exc.kind.takes_provider_out:
                breaker.disable(exc.message)
            if exc.kind in CALLER_ERRORS:
                raise
            raise _ProviderDone(exc, describe(exc)) from None
        request = self._job.build_request(spec)
        tokens = self._job.estimated_input_tokens + (request.max_tokens or 0)
        limiter = ctx.limiter(name)
        max_attempts = attempts_allowed(ctx.settings.retry, ctx.options.breaker)
        attempt = 0
        while True:
            if not breaker.available():
                raise self._unavailable(name, breaker)
            lease = await self._acquire(name)
            claimed = False
            error: ProviderError | None = None
            had_output = False
            try:
                async for notice in self._wait_for_rate(name, limiter, tokens):
                    yield notice
                if not breaker.try_acquire():  # another job holds the half-open probe
                    raise self._unavailable(name, breaker)
                claimed = True
                attempt += 1
                charge = limiter.take(tokens)
                ctx.stats.record_request(name, request.model)
                yield AttemptStarted(name, request.model, attempt, is_fallback, self._restart, self._reason)
                self._restart = False
                started = ctx.clock()
                ttft: float | None = None
                usage: Usage | None = None
                stall = ctx.options.stall_timeout or spec.timeout
                try:
                    async with aclosing(
                        timed_events(provider, request, first_token_timeout=spec.first_token_timeout,
                                     stall_timeout=stall, remaining=self.remaining)
                    ) as stream:
                        async for event in stream:
                            if isinstance(event, TextDelta):
                                if ttft is None:
                                    ttft = ctx.clock() - started
                                had_output = True
                            elif isinstance(event, Usage):
                                usage = event  # cumulative: the last one counts
                            yield event
                except ProviderError as exc:
                    error = exc
                    error.provider = error.provider or name
                if usage is not None:
                    ctx.stats.record_usage(name, request.model, usage, spec)
                    limiter.settle(charge, usage.input_tokens + usage.output_tokens)
                claimed = False
                if error is None:
                    breaker.record_success()
                    limiter.on_success()
                    ctx.stats.record_success(name, ttft=ttft, latency=ctx.clock() - started,
                                             is_fallback=is_fallback)
                    return
                self._account_failure(name, error, breaker, limiter)
            finally:
                if claimed:  # cancelled or abandoned mid-attempt: no verdict on the provider
                    breaker.release()
                lease.release()
            # The slot is free again; decide what comes next.
            assert error is not None
            if isinstance(error, DeadlineExceeded) or error.kind in CALLER_ERRORS:
                raise error
            self._reason = f"{name} {describe(error)}"
            self._restart = self._restart or had_output
            yield AttemptFailed(error, had_output)
            if not error.kind.retryable:
                raise _ProviderDone(error, describe(error))
            if not breaker.available():  # this failure opened the circuit: fall back now, no retry to announce
                raise self._unavailable(name, breaker)
            if attempt >= max_attempts:
                raise _ProviderDone(error, f"{describe(error)} {attempt} times")
            delay = retry_delay(error, attempt, ctx.settings.retry, ctx.rng)
            if delay >= self.remaining():
                if error.retry_after is not None:
                    why = f"{describe(error)} and asks to wait {delay:.1f} s, beyond the deadline"
                else:
                    why = f"{describe(error)} with no time left to retry"
                raise _ProviderDone(error, why)
            ctx.stats.record_retry(name)
            yield Notice(f"{name} {describe(error)}, retrying in {delay:.1f} s")
            await ctx.sleep(delay)

    @staticmethod
    def _unavailable(name: str, breaker: CircuitBreaker) -> _ProviderDone:
        state = breaker.state.value.replace("_", "-")
        detail = f": {breaker.reason}" if breaker.reason else ""
        error = ProviderError(ErrorKind.UNAVAILABLE, f"circuit {state}{detail}", provider=name)
        return _ProviderDone(error, f"is unavailable (circuit {state})")

    def _account_failure(
        self, name: str, error: ProviderError, breaker: CircuitBreaker, limiter: RateLimiter
    ) -> None:
        ctx = self._ctx
        ctx.stats.record_failure(name, error.kind)
        if error.kind.takes_provider_out:
            breaker.disable(error.message)
        elif error.kind in CALLER_ERRORS:
            breaker.record_success()  # the provider answered; the request was at fault
        else:
            breaker.record_failure(describe(error))
        if error.kind is ErrorKind.RATE_LIMITED:
            limiter.on_rate_limited(error.retry_after)

    async def _acquire(self, name: str) -> Lease:
        scheduler = self._ctx.scheduler
        priority = self._job.priority
        if self._deadline is None:
            lease = await scheduler.acquire(name, priority, ticket=self._ticket)
            self._deadline = self._ctx.clock() + self._budget
        else:
            left = self.remaining()
            if left <= 0:
                raise DeadlineExceeded("the request deadline ran out", provider=name)
            try:
                async with asyncio.timeout(left):
                    lease = await scheduler.acquire(name, priority, ticket=self._ticket)
            except TimeoutError:
                raise DeadlineExceeded("the request deadline ran out waiting for a slot", provider=name) from None
        if self._provider_deadline is None:
            self._provider_deadline = self._ctx.clock() + self._job_remaining() / self._providers_left
        return lease

    async def _wait_for_rate(self, name: str, limiter: RateLimiter, tokens: int) -> AsyncIterator[Notice]:
        """Sleep until the provider's budgets allow the request; fall back if that is past the deadline."""
        while (wait := limiter.wait_time(tokens)) > 0:
            if wait >= self.remaining():
                error = ProviderError(
                    ErrorKind.RATE_LIMITED, f"its rate limit needs a {wait:.1f} s wait", provider=name,
                    retry_after=wait,
                )
                raise _ProviderDone(error, f"is at its rate limit (next slot in {wait:.1f} s, past the deadline)")
            if wait >= self._ctx.options.notice_wait_over:
                yield Notice(f"{name}: waiting {wait:.1f} s for its rate limit")
            await self._ctx.sleep(wait)

