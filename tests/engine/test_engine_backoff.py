import random
import statistics

import pytest

from chatapp.config import RetrySettings
from chatapp.domain import ErrorKind, ProviderError
from chatapp.engine.backoff import full_jitter, retry_delay


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 10, 100, 10_000])
def test_full_jitter_stays_within_the_exponential_ceiling_and_the_cap(attempt):
    rng = random.Random(1)
    ceiling = min(8.0, 0.5 * 2 ** min(attempt - 1, 60))
    samples = [full_jitter(attempt, 0.5, 8.0, rng) for _ in range(2000)]
    assert all(0.0 <= s <= ceiling for s in samples)
    # full jitter: spread over the whole range, mean near half the ceiling
    assert min(samples) < ceiling * 0.05
    assert max(samples) > ceiling * 0.95
    assert statistics.mean(samples) == pytest.approx(ceiling / 2, rel=0.1)


def test_full_jitter_differs_between_calls():
    rng = random.Random(2)
    assert len({full_jitter(3, 0.5, 8.0, rng) for _ in range(50)}) == 50


def test_full_jitter_rejects_attempt_zero():
    with pytest.raises(ValueError):
        full_jitter(0, 0.5, 8.0, random.Random())


def test_retry_after_is_taken_as_given_even_above_the_cap():
    error = ProviderError(ErrorKind.RATE_LIMITED, "slow down", retry_after=20.0)
    assert retry_delay(error, 1, RetrySettings(max_delay=8.0), random.Random()) == 20.0


def test_without_retry_after_the_backoff_applies():
    error = ProviderError(ErrorKind.TRANSIENT, "503")
    delays = [retry_delay(error, 2, RetrySettings(base_delay=1.0, max_delay=8.0), random.Random(i)) for i in range(200)]
    assert all(0 <= d <= 2.0 for d in delays)
