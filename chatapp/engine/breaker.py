"""A circuit breaker per provider: stop sending to a provider that keeps failing, probe it later.

Hand-written because the breakers on PyPI (pybreaker, aiobreaker, purgatory) wrap a call and count
exceptions, while here the outcome of one attempt is known only after a stream has been consumed, some
failures say nothing about the provider's health (a 400 is the request's fault), and AUTH/UNAVAILABLE
must switch a provider off until the user acts. It is also not a dependency of this project.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"  # requests flow
    OPEN = "open"  # short-circuit to the fallback until the cooldown has passed
    HALF_OPEN = "half_open"  # one probe request may go; its outcome closes or reopens
    DISABLED = "disabled"  # auth/unavailable: out until reset() (the user fixes the key, or a restart)


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 5  # consecutive failures that open the circuit
    failure_rate: float = 0.5  # ... or this share of failures among the recent outcomes
    window: float = 60.0  # seconds of outcomes the failure rate looks at
    min_calls: int = 10  # fewer outcomes than this in the window never open on rate
    cooldown: float = 30.0  # open -> half-open after this long
    max_cooldown: float = 300.0  # each failed probe doubles the cooldown up to this


class CircuitBreaker:
    """State machine: closed -> open -> half-open -> closed (or back to open); disabled until reset.

    The open -> half-open transition happens lazily when the state is read, so no timer task exists.
    """

    def __init__(self, clock: Callable[[], float], settings: BreakerSettings | None = None) -> None:
        self._clock = clock
        self._settings = settings or BreakerSettings()
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._opened_at = 0.0
        self._cooldown = self._settings.cooldown
        self._probe_in_flight = False
        self.reason: str | None = None  # why it is open or disabled, for the UI
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._cooldown:
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
        return self._state

    @property
    def retry_in(self) -> float | None:
        """Seconds until an open circuit lets a probe through (None unless open)."""
        if self.state is not BreakerState.OPEN:
            return None
        return max(0.0, self._opened_at + self._cooldown - self._clock())

    def available(self) -> bool:
        """Whether a request could go now, without claiming anything (used before queueing)."""
        state = self.state
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._probe_in_flight)

    def try_acquire(self) -> bool:
        """Claim the right to send one request; in half-open only one probe is let through at a time.

        Every True must be followed by exactly one of record_success(), record_failure() or release().
        """
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def release(self) -> None:
        """The claimed request was abandoned (cancelled, preempted) with no verdict on the provider."""
        self._probe_in_flight = False

    def record_success(self) -> None:
        self._probe_in_flight = False
        if self._state is BreakerState.DISABLED:
            return
        self._consecutive = 0
        self._remember(ok=True)
        if self._state is not BreakerState.CLOSED:
            self._state = BreakerState.CLOSED
            self._cooldown = self._settings.cooldown
            self._outcomes.clear()
            self.reason = None

    def record_failure(self, reason: str = "repeated failures") -> None:
        was_probe = self._probe_in_flight
        self._probe_in_flight = False
        state = self.state
        if state is BreakerState.DISABLED:
            return
        if state is BreakerState.HALF_OPEN or (state is BreakerState.OPEN and was_probe):
            self._cooldown = min(self._settings.max_cooldown, self._cooldown * 2)
            self._open(f"probe failed: {reason}")
            return
        if state is BreakerState.OPEN:
            return  # a request that started before the circuit opened; nothing new to learn
        self._consecutive += 1
        self._remember(ok=False)
        settings = self._settings
        if self._consecutive >= settings.failure_threshold:
            self._open(f"{self._consecutive} failures in a row: {reason}")
        elif len(self._outcomes) >= settings.min_calls:
            failures = sum(1 for _, ok in self._outcomes if not ok)
            if failures / len(self._outcomes) >= settings.failure_rate:
                self._open(f"{failures} of the last {len(self._outcomes)} requests failed: {reason}")

    def disable(self, reason: str) -> None:
        """Take the provider out until reset(): its key is wrong or it cannot run at all."""
        self._state = BreakerState.DISABLED
        self._probe_in_flight = False
        self.reason = reason

    def reset(self) -> None:
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._outcomes.clear()
        self._cooldown = self._settings.cooldown
        self._probe_in_flight = False
        self.reason = None

    def _open(self, reason: str) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self.reason = reason
        self.times_opened += 1

    def _remember(self, *, ok: bool) -> None:
        now = self._clock()
        self._outcomes.append((now, ok))
        horizon = now - self._settings.window
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()
