"""Latency percentiles over a bounded window of samples."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(sorted_samples: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks, as numpy's default."""
    if not sorted_samples:
        return None
    if len(sorted_samples) == 1:
        return float(sorted_samples[0])
    position = (len(sorted_samples) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_samples) - 1)
    weight = position - low
    return float(sorted_samples[low] * (1 - weight) + sorted_samples[high] * weight)


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50/p95/p99 in seconds over the last `count` samples; None when there are none."""

    p50: float | None
    p95: float | None
    p99: float | None
    count: int

    @classmethod
    def of(cls, samples: Iterable[float]) -> Percentiles:
        ordered = sorted(samples)
        return cls(percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99), len(ordered))
