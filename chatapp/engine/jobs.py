"""What a caller hands the engine (Job), the engine's own knobs, and the events it adds to a stream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chatapp.config import ProviderSpec
from chatapp.domain import ChatRequest, Finish, Notice, ProviderError, TextDelta, Usage
from chatapp.engine.breaker import BreakerSettings
from chatapp.engine.leases import Priority


@dataclass(frozen=True)
class Job:
    """One request to run: its priority, the providers to try in order, and how to build the request.

    `build_request` is called once per provider tried, with that provider's spec, so a fallback gets a
    request for its own model. An empty `chain` means the settings' default provider and fallbacks.
    `deadline` (seconds) overrides RetrySettings' interactive/background deadline; it is counted from
    the moment the job first gets a slot, so queueing behind other work does not eat the retry budget.
    """

    priority: Priority
    chain: tuple[str, ...]
    build_request: Callable[[ProviderSpec], ChatRequest]
    estimated_input_tokens: int = 0
    label: str = ""
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """A request is being sent. `restarted`: text from an earlier attempt was shown and is abandoned."""

    provider: str
    model: str
    attempt: int  # 1-based, per provider
    is_fallback: bool
    restarted: bool = False
    reason: str | None = None  # why this is not the first attempt (the previous error), if it is not


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """An attempt failed and the engine moves on: a retry or the fallback follows, or, when the chain is
    exhausted, the stream raises right after. Errors raised at once (invalid request, context too
    long, content filtered, deadline) come without it.

    When `had_output` the caller should close the partial reply as incomplete: the next attempt starts
    a fresh one (its AttemptStarted has restarted=True).
    """

    error: ProviderError
    had_output: bool


EngineEvent = AttemptStarted | AttemptFailed | TextDelta | Usage | Finish | Notice


@dataclass(frozen=True)
class EngineOptions:
    """Engine knobs that are not user settings (those live in chatapp.config)."""

    global_concurrency: int = 8
    stall_timeout: float | None = None  # max silence between events once text flows; None: spec.timeout
    aging_after: float = 30.0  # a background waiter older than this ranks with interactive ones
    preemption: bool = True
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    rate_decrease: float = 0.5  # AIMD: rate factor multiplied by this on a 429
    rate_increase: float = 0.05  # ... and raised by this on each success
    min_rate_factor: float = 0.05
    latency_samples: int = 1000
    notice_wait_over: float = 1.0  # announce rate-limit waits longer than this many seconds
