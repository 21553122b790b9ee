"""Circuit breaker state machine, and how the engine uses it with the fallback chain."""

import pytest
from engine_fakes import FakeProvider, FakeTime, collect, job, make_engine, ok, texts

from chatapp.config import RetrySettings
from chatapp.domain import ErrorKind, Notice, ProviderError
from chatapp.engine import BreakerSettings, BreakerState, CircuitBreaker, EngineOptions


def breaker(time: FakeTime, **kw) -> CircuitBreaker:
    return CircuitBreaker(time.clock, BreakerSettings(**{"failure_threshold": 3, "cooldown": 10.0, **kw}))


def fail(b: CircuitBreaker) -> None:
    assert b.try_acquire()
    b.record_failure("503")


def test_opens_after_consecutive_failures_then_half_opens_then_closes():
    time = FakeTime()
    b = breaker(time)
    fail(b)
    fail(b)
    assert b.state is BreakerState.CLOSED
    fail(b)
    assert b.state is BreakerState.OPEN and not b.available() and not b.try_acquire()
    assert b.retry_in == pytest.approx(10.0)
    time.advance(9.9)
    assert b.state is BreakerState.OPEN
    time.advance(0.2)
    assert b.state is BreakerState.HALF_OPEN
    assert b.try_acquire()  # the one probe
    assert not b.try_acquire() and not b.available()  # nobody else meanwhile
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.try_acquire()


def test_a_success_resets_the_consecutive_count():
    b = breaker(FakeTime())
    fail(b)
    fail(b)
    assert b.try_acquire()
    b.record_success()
    fail(b)
    fail(b)
    assert b.state is BreakerState.CLOSED


def test_opens_on_failure_rate_in_the_window():
    time = FakeTime()
    b = breaker(time, failure_threshold=100, failure_rate=0.5, min_calls=10, window=60.0)
    for i in range(10):
        assert b.try_acquire()
        if i % 2:
            b.record_failure("503")
        else:
            b.record_success()
        time.advance(1)
    assert b.state is BreakerState.OPEN


def test_old_outcomes_leave_the_window():
    time = FakeTime()
    b = breaker(time, failure_threshold=100, failure_rate=0.5, min_calls=4, window=10.0)
    for _ in range(3):
        fail(b)
    assert b.try_acquire()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    time.advance(30)  # all of that is outside the window now
    fail(b)  # without pruning: 4 failures in 5 -> open
    assert b.state is BreakerState.CLOSED


def test_failed_probe_reopens_with_a_longer_cooldown():
    time = FakeTime()
    b = breaker(time)
    for _ in range(3):
        fail(b)
    time.advance(10)
    assert b.state is BreakerState.HALF_OPEN
    fail(b)
    assert b.state is BreakerState.OPEN and b.retry_in == pytest.approx(20.0)


def test_an_abandoned_probe_frees_the_probe_slot():
    time = FakeTime()
    b = breaker(time)
    for _ in range(3):
        fail(b)
    time.advance(10)
    assert b.try_acquire()
    b.release()
    assert b.try_acquire()


def test_disable_takes_the_provider_out_until_reset():
    time = FakeTime()
    b = breaker(time)
    b.disable("invalid API key")
    time.advance(10_000)
    assert b.state is BreakerState.DISABLED and not b.try_acquire() and b.reason == "invalid API key"
    b.record_success()  # a late success from before does not re-enable it
    assert b.state is BreakerState.DISABLED
    b.reset()
    assert b.state is BreakerState.CLOSED and b.try_acquire()


async def test_open_breaker_short_circuits_to_the_fallback():
    a = FakeProvider("a", default=[ProviderError(ErrorKind.TRANSIENT, "503")])
    b = FakeProvider("b", default=ok("b"))
    options = EngineOptions(breaker=BreakerSettings(failure_threshold=2, cooldown=30.0))
    h = make_engine([a, b], retry=RetrySettings(max_attempts=2), options=options)
    await collect(h.engine, job("a", "b"))
    assert a.calls == 2 and h.engine.breaker_state("a") == "open"
    events = await collect(h.engine, job("a", "b"))
    assert a.calls == 2  # not even tried
    assert texts(events) == "b"
    assert any("circuit open" in e.text for e in events if isinstance(e, Notice))
    # After the cooldown one probe goes through; its success closes the circuit.
    a.default = ok("a is back")
    h.time.advance(30)
    assert h.engine.breaker_state("a") == "half_open"
    events = await collect(h.engine, job("a", "b"))
    assert texts(events) == "a is back" and h.engine.breaker_state("a") == "closed"
    assert h.engine.stats.snapshot().provider("a").breaker_state == "closed"


async def test_breaker_opening_during_retries_stops_them():
    a = FakeProvider("a", default=[ProviderError(ErrorKind.TRANSIENT, "503")])
    options = EngineOptions(breaker=BreakerSettings(failure_threshold=2))
    h = make_engine([a], retry=RetrySettings(max_attempts=6), options=options)
    with pytest.raises(ProviderError) as info:
        await collect(h.engine, job("a"))
    assert a.calls == 2
    assert info.value.kind is ErrorKind.UNAVAILABLE and "circuit open" in info.value.message


@pytest.mark.parametrize("kind", [ErrorKind.AUTH, ErrorKind.UNAVAILABLE])
async def test_auth_and_unavailable_take_the_provider_out(kind):
    a = FakeProvider("a", default=[ProviderError(kind, "401 invalid key")])
    b = FakeProvider("b", default=ok("b"))
    h = make_engine([a, b])
    events = await collect(h.engine, job("a", "b"))
    assert a.calls == 1 and texts(events) == "b" and h.time.sleeps == []
    assert h.engine.breaker_state("a") == "disabled"
    assert h.engine.breaker_reason("a") == "401 invalid key"
    h.time.advance(10_000)
    await collect(h.engine, job("a", "b"))
    assert a.calls == 1  # still out
    a.default = ok("fixed")
    h.engine.reset_provider("a")
    assert texts(await collect(h.engine, job("a", "b"))) == "fixed"


async def test_get_provider_failing_as_unavailable_disables_it():
    b = FakeProvider("b", default=ok("b"))
    h = make_engine([b])

    def get_provider(name):
        if name == "a":
            raise ProviderError(ErrorKind.UNAVAILABLE, "no API key")
        return b

    from engine_fakes import settings, spec

    from chatapp.engine import RequestEngine

    engine = RequestEngine(settings([spec("a"), spec("b")]), get_provider, clock=h.time.clock, sleep=h.time.sleep)
    events = await collect(engine, job("a", "b"))
    assert texts(events) == "b" and engine.breaker_state("a") == "disabled"
    with pytest.raises(ProviderError) as info:
        await collect(engine, job("a"))
    assert info.value.kind is ErrorKind.UNAVAILABLE and info.value.provider == "a"


async def test_a_cancelled_probe_gives_the_probe_back():
    import asyncio

    from engine_fakes import HANG

    from chatapp.engine import Priority

    a = FakeProvider("a", replies=[[ProviderError(ErrorKind.TRANSIENT, "503")], [HANG]], default=ok("a"))
    options = EngineOptions(breaker=BreakerSettings(failure_threshold=1, cooldown=5.0))
    h = make_engine([a], retry=RetrySettings(max_attempts=1), options=options)
    with pytest.raises(ProviderError):
        await collect(h.engine, job("a"))
    h.time.advance(5)
    assert h.engine.breaker_state("a") == "half_open"
    background = asyncio.create_task(h.engine.complete(job("a", priority=Priority.BACKGROUND)))
    while a.active == 0:
        await asyncio.sleep(0.001)
    # While the probe is out, others short-circuit (to the fallback, or fail fast here).
    with pytest.raises(ProviderError) as info:
        await collect(h.engine, job("a"))
    assert "circuit half-open" in info.value.message and a.calls == 2
    background.cancel()
    with pytest.raises(asyncio.CancelledError):
        await background
    events = await collect(h.engine, job("a"))  # the abandoned probe was given back
    assert texts(events) == "a" and h.engine.breaker_state("a") == "closed"


async def test_an_opening_breaker_falls_back_now_without_announcing_a_retry():
    """Issue 13, case 10: the 5th consecutive 5xx opens the circuit; no "retrying in" and no sleep follow it,
    and stats count only the retries that happened."""
    a = FakeProvider("a", default=[ProviderError(ErrorKind.TRANSIENT, "503")])
    b = FakeProvider("b", default=ok("from b"))
    h = make_engine([a, b], retry=RetrySettings(max_attempts=6, base_delay=1.0, max_delay=4.0))
    events = await collect(h.engine, job("a", "b"))
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert a.calls == 5 and texts(events) == "from b"
    assert sum("retrying in" in n for n in notices) == 4, notices
    assert "falling back to b" in notices[-1] and "circuit open" in notices[-1]
    assert h.engine.stats.snapshot().provider("a").retries == 4
    assert len(h.time.sleeps) == 4


def test_max_attempts_beyond_the_breaker_threshold_is_capped():
    from chatapp.engine.runner import attempts_allowed

    assert attempts_allowed(RetrySettings(max_attempts=6), BreakerSettings(failure_threshold=5)) == 5
    assert attempts_allowed(RetrySettings(max_attempts=3), BreakerSettings(failure_threshold=5)) == 3
