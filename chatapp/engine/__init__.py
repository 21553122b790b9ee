"""The request engine: priority scheduling with preemption, rate limits, one retry loop with backoff,
circuit breakers, the fallback chain, and per-provider stats. The service's only way to a provider."""

from chatapp.engine.attempt import DeadlineExceeded
from chatapp.engine.breaker import BreakerSettings, BreakerState, CircuitBreaker
from chatapp.engine.engine import Completion, RequestEngine
from chatapp.engine.jobs import AttemptFailed, AttemptStarted, EngineEvent, EngineOptions, Job
from chatapp.engine.leases import Priority, SchedulerSnapshot
from chatapp.engine.percentiles import Percentiles
from chatapp.engine.ratelimit import RateInfo
from chatapp.engine.stats import EngineStats, ProviderStatsSnapshot, StatsSnapshot

__all__ = [
    "AttemptFailed",
    "AttemptStarted",
    "BreakerSettings",
    "BreakerState",
    "CircuitBreaker",
    "Completion",
    "DeadlineExceeded",
    "EngineEvent",
    "EngineOptions",
    "EngineStats",
    "Job",
    "Percentiles",
    "Priority",
    "ProviderStatsSnapshot",
    "RateInfo",
    "RequestEngine",
    "SchedulerSnapshot",
    "StatsSnapshot",
]
