"""Retry delays: exponential backoff with full jitter, and Retry-After taken at its word.

Hand-written rather than taken from `tenacity` or `backoff`: those wrap a callable and sleep on their
own, while the engine has to announce each wait to the UI ("retrying in 2.0 s"), weigh it against the
job's deadline and fall back instead of sleeping when it does not fit. What is left is one formula.
"""

from __future__ import annotations

import random

from chatapp.config import RetrySettings
from chatapp.domain import ProviderError


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Delay before retry number `attempt` (1 = the first retry): uniform in [0, min(cap, base·2^(attempt-1))].

    "Full jitter" (AWS architecture blog, "Exponential Backoff and Jitter") spreads the retries of many
    clients that failed together, which fixed or half-jittered delays do not.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # min() before the power would overflow for huge attempt numbers, so clamp the exponent.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 60))
    return rng.uniform(0.0, max(0.0, ceiling))


def retry_delay(error: ProviderError, attempt: int, retry: RetrySettings, rng: random.Random) -> float:
    """How long to wait before retrying after `error`.

    A server's Retry-After (the provider puts it in seconds on the error) is honoured as given, even
    above `max_delay`: the cap bounds our own guesses, not the server's instructions. Whether the wait
    fits the job's deadline is the caller's decision.
    """
    if error.retry_after is not None and error.retry_after >= 0:
        return float(error.retry_after)
    return full_jitter(attempt, retry.base_delay, retry.max_delay, rng)
