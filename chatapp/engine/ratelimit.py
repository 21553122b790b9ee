"""Per-provider request (RPM) and token (TPM) budgets, adapted when the server says 429.

Hand-written: `aiolimiter` (not a dependency here) offers a fixed-rate leaky bucket, but this engine
needs to know *how long* a request would wait before deciding to wait or fall back, to charge a token
estimate and correct it with the reported usage, and to move the rate with AIMD on 429s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

_MINUTE = 60.0


class TokenBucket:
    """A bucket holding up to one minute's allowance, refilled continuously.

    The balance may go negative: a charge corrected upwards by the reported usage is debt that the
    following requests wait out.
    """

    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        if per_minute <= 0:
            raise ValueError("a bucket needs a positive rate")
        self._clock = clock
        self._per_minute = float(per_minute)
        self._tokens = float(per_minute)
        self._updated = clock()

    @property
    def per_minute(self) -> float:
        return self._per_minute

    @property
    def capacity(self) -> float:
        return self._per_minute

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def set_rate(self, per_minute: float) -> None:
        self._refill()
        self._per_minute = max(float(per_minute), 1e-9)
        self._tokens = min(self._tokens, self._per_minute)

    def wait_time(self, amount: float) -> float:
        """Seconds until `amount` can be taken (amounts above capacity count as a full bucket)."""
        self._refill()
        need = min(amount, self._per_minute)
        if self._tokens >= need:
            return 0.0
        return (need - self._tokens) / (self._per_minute / _MINUTE)

    def take(self, amount: float) -> None:
        self._refill()
        self._tokens -= amount

    def give(self, amount: float) -> None:
        self._refill()
        self._tokens = min(self._per_minute, self._tokens + amount)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        self._updated = now
        if elapsed > 0:
            self._tokens = min(self._per_minute, self._tokens + elapsed * self._per_minute / _MINUTE)


@dataclass(frozen=True, slots=True)
class RateInfo:
    """What the limiter currently allows; None means unlimited."""

    rpm: float | None
    tpm: float | None
    factor: float  # 1.0 = the configured rate; lower after 429s
    learned: bool  # the RPM limit was learned from 429s, none being configured
    blocked_for: float  # seconds left of a server-imposed pause (Retry-After)


@dataclass(frozen=True, slots=True)
class Charge:
    """Tokens taken from the TPM bucket for one request, to be settled with the real usage."""

    tokens: float


class RateLimiter:
    """RPM and TPM token buckets for one provider with additive-increase/multiplicative-decrease.

    On a 429 the rate factor is multiplied by `decrease`; every success adds `increase` back until the
    configured rate is reached. With no RPM configured, a 429 while at least `learn_above` requests went
    out in the last minute makes the limiter learn a limit from that rate, and drop it again once the
    factor has climbed back to 1. Below that volume a 429 is not about our pace (quota, overload), so
    only Retry-After and the backoff apply. A Retry-After also pauses every request to the provider.
    """

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None,
        clock: Callable[[], float],
        *,
        decrease: float = 0.5,
        increase: float = 0.05,
        min_factor: float = 0.05,
        learn_above: int = 10,
    ) -> None:
        self._clock = clock
        self._rpm_ceiling = rpm
        self._tpm_ceiling = tpm
        self._learned = False
        self._rpm = TokenBucket(rpm, clock) if rpm else None
        self._tpm = TokenBucket(tpm, clock) if tpm else None
        self._decrease = decrease
        self._increase = increase
        self._min_factor = min_factor
        self._learn_above = learn_above
        self._factor = 1.0
        self._blocked_until = 0.0
        self._recent: deque[float] = deque()
        self.rate_limited = 0  # 429s seen

    @property
    def factor(self) -> float:
        return self._factor

    def info(self) -> RateInfo:
        return RateInfo(
            rpm=self._rpm.per_minute if self._rpm else None,
            tpm=self._tpm.per_minute if self._tpm else None,
            factor=self._factor,
            learned=self._learned,
            blocked_for=max(0.0, self._blocked_until - self._clock()),
        )

    def wait_time(self, tokens: float) -> float:
        """Seconds before a request estimated at `tokens` may be sent (0 = now)."""
        wait = max(0.0, self._blocked_until - self._clock())
        if self._rpm is not None:
            wait = max(wait, self._rpm.wait_time(1))
        if self._tpm is not None:
            wait = max(wait, self._tpm.wait_time(tokens))
        return wait

    def take(self, tokens: float) -> Charge:
        """Charge one request and its token estimate (capped at one minute's worth, or it never fits)."""
        now = self._clock()
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - _MINUTE:
            self._recent.popleft()
        if self._rpm is not None:
            self._rpm.take(1)
        charged = 0.0
        if self._tpm is not None:
            charged = min(float(tokens), self._tpm.capacity)
            self._tpm.take(charged)
        return Charge(charged)

    def settle(self, charge: Charge, actual_tokens: int) -> None:
        """Correct the estimate with the usage the provider reported (refund or extra debt)."""
        if self._tpm is not None and charge.tokens:
            difference = charge.tokens - actual_tokens
            if difference > 0:
                self._tpm.give(difference)
            elif difference < 0:
                self._tpm.take(-difference)

    def on_rate_limited(self, retry_after: float | None) -> None:
        self.rate_limited += 1
        now = self._clock()
        if retry_after is not None and retry_after > 0:
            self._blocked_until = max(self._blocked_until, now + retry_after)
        if self._rpm is None:
            recent = sum(1 for t in self._recent if t > now - _MINUTE)
            if recent < self._learn_above:
                return
            self._rpm_ceiling = float(recent)
            self._learned = True
            self._rpm = TokenBucket(self._rpm_ceiling, self._clock)
            self._factor = 1.0
        self._factor = max(self._min_factor, self._factor * self._decrease)
        self._apply()

    def on_success(self) -> None:
        if self._factor >= 1.0:
            return
        self._factor = min(1.0, self._factor + self._increase)
        if self._factor >= 1.0 and self._learned:
            self._rpm = None
            self._rpm_ceiling = None
            self._learned = False
            return
        self._apply()

    def _apply(self) -> None:
        if self._rpm is not None and self._rpm_ceiling:
            self._rpm.set_rate(self._rpm_ceiling * self._factor)
        if self._tpm is not None and self._tpm_ceiling:
            self._tpm.set_rate(self._tpm_ceiling * self._factor)
