"""Stats: counters, latency percentiles, tokens and cost, snapshot and persistence."""

import json

import pytest
from engine_fakes import Advance, FakeProvider, collect, job, make_engine, spec

from chatapp.domain import ErrorKind, Finish, ProviderError, TextDelta, Usage
from chatapp.engine import EngineStats, Percentiles
from chatapp.engine.percentiles import percentile
from chatapp.engine.stats import request_cost


def test_percentiles_interpolate_between_ranks():
    samples = [float(x) for x in range(1, 101)]
    p = Percentiles.of(reversed(samples))
    assert (p.p50, p.p95, p.p99, p.count) == (pytest.approx(50.5), pytest.approx(95.05), pytest.approx(99.01), 100)
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert Percentiles.of([]) == Percentiles(None, None, None, 0)


def test_cost_uses_the_model_table_and_spec_prices_override_it():
    usage = Usage(1_000_000, 1_000_000)
    assert request_cost("gpt-4o-mini-2024-07-18", usage) == pytest.approx(0.75)
    assert request_cost("mystery-model", usage) is None
    priced = spec("x", "mystery-model", price_input=1.0, price_output=2.0)
    assert request_cost("mystery-model", usage, priced) == pytest.approx(3.0)


async def test_snapshot_after_traffic():
    a = FakeProvider("a", model="gpt-4o-mini")
    h = make_engine([a], [spec("a", "gpt-4o-mini"), spec("idle", "claude-sonnet-4-5")])
    t = h.time
    for ttft, rest in [(0.1, 0.2), (0.2, 0.3), (0.3, 0.4)]:
        a.replies.append([Advance(t, ttft), TextDelta("x"), Advance(t, rest), Usage(1000, 500), Finish("stop")])
    a.replies.append([ProviderError(ErrorKind.TRANSIENT, "503")])
    a.replies.append([TextDelta("y"), Usage(100, 10), Finish("stop")])
    for _ in range(4):
        await collect(h.engine, job("a"))
    snap = h.engine.stats.snapshot()
    s = snap.provider("a")
    assert (s.requests, s.successes, s.failures, s.retries, s.fallbacks) == (5, 4, 1, 1, 0)
    assert s.failures_by_kind == {"transient": 1}
    assert s.model == "gpt-4o-mini" and s.breaker_state == "closed"
    assert s.time_to_first_token.count == 4
    assert s.time_to_first_token.p50 == pytest.approx(0.15)
    assert s.latency.p99 == pytest.approx(0.7, abs=0.01)
    assert (s.input_tokens, s.output_tokens) == (3100, 1510)
    assert s.cost_usd == pytest.approx((3100 * 0.15 + 1510 * 0.60) / 1e6)
    assert snap.total_cost_usd == pytest.approx(s.cost_usd)
    idle = snap.provider("idle")
    assert idle is not None and idle.requests == 0 and idle.cost_usd is None
    assert snap.scheduler is not None and snap.scheduler.interactive_wait.count == 5


async def test_unknown_model_shows_tokens_without_cost():
    a = FakeProvider("a")
    h = make_engine([a], [spec("a", "local-thing")])
    await collect(h.engine, job("a"))
    s = h.engine.stats.snapshot().provider("a")
    assert (s.input_tokens, s.output_tokens, s.cost_usd) == (10, 2, None)


async def test_persisted_stats_round_trip_and_merge():
    a = FakeProvider("a", model="gpt-4o")
    h = make_engine([a], [spec("a", "gpt-4o")])
    await collect(h.engine, job("a"))
    data = json.loads(json.dumps(h.engine.stats.to_dict()))
    loaded = EngineStats.from_dict(data)
    before = h.engine.stats.snapshot().provider("a")
    after = loaded.snapshot().provider("a")
    assert after.breaker_state is None  # nothing live attached
    for field in ("requests", "successes", "input_tokens", "output_tokens", "cost_usd", "latency", "model"):
        assert getattr(after, field) == getattr(before, field)
    loaded.merge(EngineStats.from_dict(data))
    merged = loaded.snapshot().provider("a")
    assert merged.requests == 2 and merged.cost_usd == pytest.approx(2 * before.cost_usd)
    assert merged.latency.count == 2


def test_from_dict_tolerates_junk():
    stats = EngineStats.from_dict({"providers": {"a": {"requests": "many", "ttft": [1, "x"]}, "b": 3}})
    s = stats.snapshot().provider("a")
    assert s.requests == 0 and s.time_to_first_token.count == 1
    assert stats.snapshot().provider("b") is None
