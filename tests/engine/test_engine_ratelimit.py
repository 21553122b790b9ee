"""RPM/TPM token buckets, token estimate correction, AIMD on 429, rate in stats."""

import pytest
from engine_fakes import FakeProvider, FakeTime, collect, job, make_engine, ok, spec, texts

from chatapp.domain import ErrorKind, Notice, ProviderError, Usage
from chatapp.engine.ratelimit import RateLimiter, TokenBucket


def test_token_bucket_refills_continuously_up_to_one_minute():
    time = FakeTime()
    bucket = TokenBucket(60, time.clock)
    assert bucket.wait_time(60) == 0
    bucket.take(60)
    assert bucket.wait_time(1) == pytest.approx(1.0)
    time.advance(0.5)
    assert bucket.wait_time(1) == pytest.approx(0.5)
    time.advance(3600)
    assert bucket.tokens == 60  # capped
    assert bucket.wait_time(10_000) == 0  # above capacity counts as a full bucket


def test_token_bucket_debt_is_waited_out():
    time = FakeTime()
    bucket = TokenBucket(60, time.clock)
    bucket.take(90)
    assert bucket.tokens == -30
    assert bucket.wait_time(1) == pytest.approx(31.0)
    bucket.give(1000)
    assert bucket.tokens == 60


def test_tpm_charge_is_corrected_with_the_reported_usage():
    time = FakeTime()
    limiter = RateLimiter(None, 1000, time.clock)
    charge = limiter.take(600)
    assert charge.tokens == 600 and limiter.wait_time(600) > 0
    limiter.settle(charge, 12)
    assert limiter.wait_time(600) == 0  # 988 left
    charge = limiter.take(600)
    limiter.settle(charge, 1500)  # more than estimated: 988 - 1500 is debt
    assert limiter.wait_time(1) == pytest.approx((512 + 1) / (1000 / 60))


def test_aimd_on_429_and_recovery():
    time = FakeTime()
    limiter = RateLimiter(60, 10_000, time.clock, decrease=0.5, increase=0.1)
    limiter.on_rate_limited(None)
    info = limiter.info()
    assert (info.rpm, info.tpm, info.factor) == (30, 5000, 0.5)
    limiter.on_rate_limited(None)
    assert limiter.info().rpm == 15
    for _ in range(3):
        limiter.on_success()
    assert limiter.info().factor == pytest.approx(0.55)
    for _ in range(20):
        limiter.on_success()
    assert limiter.info().rpm == 60 and limiter.info().factor == 1.0


def test_factor_has_a_floor():
    limiter = RateLimiter(60, None, FakeTime().clock, min_factor=0.1)
    for _ in range(20):
        limiter.on_rate_limited(None)
    assert limiter.info().factor == pytest.approx(0.1)


def test_retry_after_pauses_the_whole_provider():
    time = FakeTime()
    limiter = RateLimiter(None, None, time.clock)
    limiter.on_rate_limited(5.0)
    assert limiter.wait_time(0) == pytest.approx(5.0)
    assert limiter.info().blocked_for == pytest.approx(5.0)
    time.advance(5)
    assert limiter.wait_time(0) == 0


def test_unconfigured_rpm_is_learned_from_429s_and_dropped_on_recovery():
    time = FakeTime()
    limiter = RateLimiter(None, None, time.clock, increase=0.25, learn_above=10)
    for _ in range(40):
        limiter.take(0)
        time.advance(1)
    limiter.on_rate_limited(None)
    info = limiter.info()
    assert info.learned and info.rpm == pytest.approx(20)  # 40 sent in the last minute, halved
    limiter.on_success()
    assert limiter.info().rpm == pytest.approx(30)
    limiter.on_success()
    assert limiter.info().rpm is None and not limiter.info().learned


def test_a_429_at_low_volume_teaches_nothing():
    time = FakeTime()
    limiter = RateLimiter(None, None, time.clock, learn_above=10)
    limiter.take(0)
    limiter.on_rate_limited(None)
    assert limiter.info().rpm is None and limiter.wait_time(0) == 0


async def test_engine_waits_for_the_rpm_budget():
    a = FakeProvider("a")
    h = make_engine([a], [spec("a", rpm=2)])
    for _ in range(2):
        await collect(h.engine, job("a"))
    assert h.time.sleeps == []
    events = await collect(h.engine, job("a"))
    assert h.time.sleeps == [pytest.approx(30.0)]
    assert Notice("a: waiting 30.0 s for its rate limit") in events


async def test_engine_rate_wait_past_the_deadline_falls_back_without_sleeping():
    a, b = FakeProvider("a"), FakeProvider("b", default=ok("b"))
    h = make_engine([a, b], [spec("a", rpm=1), spec("b")])
    await collect(h.engine, job("a", "b"))
    events = await collect(h.engine, job("a", "b"))
    assert h.time.sleeps == [] and a.calls == 1 and b.calls == 1
    assert texts(events) == "b"


async def test_engine_charges_tpm_estimate_then_corrects_it():
    a = FakeProvider("a", default=ok(usage=Usage(10, 2)))
    h = make_engine([a], [spec("a", tpm=1000)])
    await collect(h.engine, job("a", estimated=600))
    await collect(h.engine, job("a", estimated=600))
    assert h.time.sleeps == []  # the first charge was refunded down to 12 tokens
    a.default = ok(usage=Usage(900, 100))
    await collect(h.engine, job("a", estimated=600))
    await collect(h.engine, job("a", estimated=600))
    assert len(h.time.sleeps) == 1


async def test_engine_estimate_includes_max_tokens():
    a = FakeProvider("a", default=ok(usage=None))
    h = make_engine([a], [spec("a", tpm=1000)])
    await collect(h.engine, job("a", estimated=100, max_tokens=500))
    await collect(h.engine, job("a", estimated=100, max_tokens=500))
    assert len(h.time.sleeps) == 1  # 600 + 600 > 1000 with no usage to correct it


async def test_engine_429_lowers_the_rate_visible_in_stats():
    a = FakeProvider("a", replies=[[ProviderError(ErrorKind.RATE_LIMITED, "429", retry_after=1.0)], ok()])
    h = make_engine([a], [spec("a", rpm=60, tpm=100_000)])
    await collect(h.engine, job("a"))
    snap = h.engine.stats.snapshot().provider("a")
    assert snap.rate_factor == pytest.approx(0.55)  # halved, then one success
    assert snap.rpm_limit == pytest.approx(33) and snap.tpm_limit == pytest.approx(55_000)
    assert snap.rate_limited == 1 and snap.failures_by_kind == {"rate_limited": 1}
