"""Per-provider counters, latencies, tokens and cost, as plain snapshots and as a persistable dict.

`EngineStats` holds what accumulates (and survives a restart through to_dict/from_dict); what is
live (breaker state, current rate, queue) is read at snapshot time through a `LiveView`, which the
engine provides. A stats object loaded from disk without an engine reports that live part as None.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatapp import model_facts
from chatapp.config import ProviderSpec
from chatapp.domain import ErrorKind, Usage
from chatapp.engine.leases import SchedulerSnapshot
from chatapp.engine.percentiles import Percentiles
from chatapp.engine.ratelimit import RateInfo

FORMAT_VERSION = 1
DEFAULT_SAMPLES = 1000


def request_cost(model: str, usage: Usage, spec: ProviderSpec | None = None) -> float | None:
    """USD for one request: the provider's configured prices win over the model table; None if unknown."""
    if spec is not None and spec.price_input is not None and spec.price_output is not None:
        return (usage.input_tokens * spec.price_input + usage.output_tokens * spec.price_output) / 1_000_000
    return model_facts.cost(model, usage.input_tokens, usage.output_tokens)


class LiveView(Protocol):
    """The engine's current state, read when a snapshot is taken."""

    def provider_names(self) -> tuple[str, ...]: ...

    def breaker_state(self, name: str) -> str: ...

    def rate(self, name: str) -> RateInfo | None: ...

    def load(self, name: str) -> tuple[int, int]: ...  # (running, queued)

    def scheduler_snapshot(self) -> SchedulerSnapshot: ...


@dataclass(frozen=True, slots=True)
class ProviderStatsSnapshot:
    name: str
    model: str | None
    requests: int  # attempts sent
    successes: int
    failures: int
    retries: int
    fallbacks: int  # times the engine gave up on this provider for the next in the chain
    served_as_fallback: int  # replies this provider gave as a fallback
    failures_by_kind: Mapping[str, int]
    time_to_first_token: Percentiles
    latency: Percentiles
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: no priced usage at all (unknown model) -> show tokens only
    breaker_state: str | None  # None when no engine is attached (stats loaded from disk)
    rpm_limit: float | None = None
    tpm_limit: float | None = None
    rate_factor: float | None = None
    rate_limited: int = 0
    running: int = 0
    queued: int = 0


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    providers: tuple[ProviderStatsSnapshot, ...]
    scheduler: SchedulerSnapshot | None

    @property
    def total_cost_usd(self) -> float | None:
        costs = [p.cost_usd for p in self.providers if p.cost_usd is not None]
        return sum(costs) if costs else None

    def provider(self, name: str) -> ProviderStatsSnapshot | None:
        return next((p for p in self.providers if p.name == name), None)


@dataclass
class _ProviderStats:
    samples: int = DEFAULT_SAMPLES
    model: str | None = None
    requests: int = 0
    successes: int = 0
    failures: int = 0
    retries: int = 0
    fallbacks: int = 0
    served_as_fallback: int = 0
    rate_limited: int = 0
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    ttft: deque[float] = field(default_factory=deque)
    latency: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.ttft = deque(self.ttft, maxlen=self.samples)
        self.latency = deque(self.latency, maxlen=self.samples)

    _COUNTERS = ("requests", "successes", "failures", "retries", "fallbacks", "served_as_fallback",
                 "rate_limited", "input_tokens", "output_tokens")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in self._COUNTERS}
        data.update(
            model=self.model,
            cost_usd=self.cost_usd,
            failures_by_kind=dict(self.failures_by_kind),
            ttft=list(self.ttft),
            latency=list(self.latency),
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], samples: int) -> _ProviderStats:
        stats = cls(samples=samples)
        for name in cls._COUNTERS:
            value = data.get(name, 0)
            setattr(stats, name, int(value) if isinstance(value, int | float) else 0)
        model = data.get("model")
        stats.model = model if isinstance(model, str) else None
        cost = data.get("cost_usd")
        stats.cost_usd = float(cost) if isinstance(cost, int | float) else None
        kinds = data.get("failures_by_kind", {})
        if isinstance(kinds, Mapping):
            stats.failures_by_kind = {str(k): int(v) for k, v in kinds.items() if isinstance(v, int)}
        for key in ("ttft", "latency"):
            values = data.get(key, [])
            if isinstance(values, list):
                getattr(stats, key).extend(float(v) for v in values if isinstance(v, int | float))
        return stats


class EngineStats:
    """Accumulated figures per provider. Not thread-safe; lives on the event loop like the engine."""

    def __init__(self, *, samples: int = DEFAULT_SAMPLES) -> None:
        self._samples = samples
        self._providers: dict[str, _ProviderStats] = {}
        self._live: LiveView | None = None

    def attach(self, live: LiveView | None) -> None:
        self._live = live

    def _of(self, name: str) -> _ProviderStats:
        stats = self._providers.get(name)
        if stats is None:
            stats = self._providers[name] = _ProviderStats(samples=self._samples)
        return stats

    # --- recording (called by the engine) ----------------------------------------------------

    def record_request(self, name: str, model: str) -> None:
        stats = self._of(name)
        stats.requests += 1
        stats.model = model

    def record_success(
        self, name: str, *, ttft: float | None, latency: float, is_fallback: bool = False
    ) -> None:
        stats = self._of(name)
        stats.successes += 1
        if is_fallback:
            stats.served_as_fallback += 1
        if ttft is not None:
            stats.ttft.append(ttft)
        stats.latency.append(latency)

    def record_failure(self, name: str, kind: ErrorKind) -> None:
        stats = self._of(name)
        stats.failures += 1
        stats.failures_by_kind[kind.value] = stats.failures_by_kind.get(kind.value, 0) + 1
        if kind is ErrorKind.RATE_LIMITED:
            stats.rate_limited += 1

    def record_usage(self, name: str, model: str, usage: Usage, spec: ProviderSpec | None = None) -> None:
        """Tokens are billed whether or not the attempt succeeded, so every reported Usage counts."""
        stats = self._of(name)
        stats.input_tokens += usage.input_tokens
        stats.output_tokens += usage.output_tokens
        cost = request_cost(model, usage, spec)
        if cost is not None:
            stats.cost_usd = (stats.cost_usd or 0.0) + cost

    def record_retry(self, name: str) -> None:
        self._of(name).retries += 1

    def record_fallback(self, name: str) -> None:
        self._of(name).fallbacks += 1

    # --- reading -----------------------------------------------------------------------------

    def snapshot(self) -> StatsSnapshot:
        live = self._live
        names = list(self._providers)
        if live is not None:
            names += [n for n in live.provider_names() if n not in self._providers]
        providers = tuple(self._snapshot_one(name, live) for name in names)
        return StatsSnapshot(providers=providers, scheduler=live.scheduler_snapshot() if live else None)

    def _snapshot_one(self, name: str, live: LiveView | None) -> ProviderStatsSnapshot:
        stats = self._providers.get(name) or _ProviderStats(samples=self._samples)
        rate = live.rate(name) if live else None
        running, queued = live.load(name) if live else (0, 0)
        return ProviderStatsSnapshot(
            name=name,
            model=stats.model,
            requests=stats.requests,
            successes=stats.successes,
            failures=stats.failures,
            retries=stats.retries,
            fallbacks=stats.fallbacks,
            served_as_fallback=stats.served_as_fallback,
            failures_by_kind=dict(stats.failures_by_kind),
            time_to_first_token=Percentiles.of(stats.ttft),
            latency=Percentiles.of(stats.latency),
            input_tokens=stats.input_tokens,
            output_tokens=stats.output_tokens,
            cost_usd=stats.cost_usd,
            breaker_state=live.breaker_state(name) if live else None,
            rpm_limit=rate.rpm if rate else None,
            tpm_limit=rate.tpm if rate else None,
            rate_factor=rate.factor if rate else None,
            rate_limited=stats.rate_limited,
            running=running,
            queued=queued,
        )

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: counters, token totals, cost and the latest latency samples per provider."""
        return {
            "version": FORMAT_VERSION,
            "providers": {name: stats.to_dict() for name, stats in self._providers.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, samples: int = DEFAULT_SAMPLES) -> EngineStats:
        """Inverse of to_dict; unknown or malformed entries are skipped rather than fatal."""
        stats = cls(samples=samples)
        providers = data.get("providers", {})
        if isinstance(providers, Mapping):
            for name, entry in providers.items():
                if isinstance(entry, Mapping):
                    stats._providers[str(name)] = _ProviderStats.from_dict(entry, samples)
        return stats

    def merge(self, other: EngineStats) -> None:
        """Add `other`'s figures to these (e.g. stats stored by earlier runs)."""
        for name, theirs in other._providers.items():
            mine = self._of(name)
            for counter in _ProviderStats._COUNTERS:
                setattr(mine, counter, getattr(mine, counter) + getattr(theirs, counter))
            mine.model = mine.model or theirs.model
            if theirs.cost_usd is not None:
                mine.cost_usd = (mine.cost_usd or 0.0) + theirs.cost_usd
            for kind, count in theirs.failures_by_kind.items():
                mine.failures_by_kind[kind] = mine.failures_by_kind.get(kind, 0) + count
            # Older samples first, so the bounded deques keep the newest.
            mine.ttft = deque([*theirs.ttft, *mine.ttft], maxlen=self._samples)
            mine.latency = deque([*theirs.latency, *mine.latency], maxlen=self._samples)
