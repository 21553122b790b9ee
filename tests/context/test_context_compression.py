"""Compression planning and the map-reduce summary runner (with a fake summarizer)."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from chatapp.config import ProviderSpec
from chatapp.context import (
    SUMMARY_PROMPT,
    ContextMessage,
    EncodingResolver,
    MemorySummaryCache,
    Summary,
    TokenCounter,
    WindowBuilder,
    chunk_tokens_for,
    plan_budget,
    plan_compression,
    run_plan,
    split_to_tokens,
    summary_key,
)
from chatapp.context.ledger import SUMMARY_HEADER
from chatapp.domain import Role

pytestmark = pytest.mark.usefixtures("no_network")  # sockets refuse (tests/context/conftest.py)


SPEC = ProviderSpec(name="test", kind="openai", model="gpt-4", context_window=4_000, max_output_tokens=1_000)


def turn(i: int, words: int = 30) -> ContextMessage:
    rng = random.Random(i)
    body = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "epsilon"]) for _ in range(words))
    return ContextMessage(f"m{i}", Role.USER if i % 2 == 0 else Role.ASSISTANT, f"turn {i}: {body}")


def usage_of(messages: list[ContextMessage], counter: TokenCounter) -> float:
    counting = counter.counting(SPEC.model, SPEC.kind)
    raw = counting.overhead.per_request + sum(counting.raw(m.content) + counting.overhead.per_message for m in messages)
    return counting.calibrated(raw) / plan_budget(SPEC, counting.exact).input


# --- planning ----------------------------------------------------------------------------------


def test_no_plan_below_the_threshold_and_a_plan_at_it(counter: TokenCounter) -> None:
    messages: list[ContextMessage] = []
    i = 0
    while True:
        messages.append(turn(i))
        plan = plan_compression(SPEC, messages, counter, compress_at=0.75)
        if plan is not None:
            break
        assert usage_of(messages, counter) < 0.75
        i += 1
        assert i < 500
    assert usage_of(messages, counter) >= 0.75
    assert plan.usage == pytest.approx(usage_of(messages, counter))
    assert plan.first_id == "m0" and plan.messages[0].id == "m0"
    assert plan.previous == ()
    # What stays verbatim is under the target, starts with a user turn, and keeps the recent turns.
    last = int(plan.last_id[1:])
    kept = messages[last + 1 :]
    assert kept[0].role == Role.USER
    assert len(kept) >= 4
    assert usage_of(kept, counter) <= 0.4 + 0.01
    assert [m.id for m in plan.messages] == [f"m{k}" for k in range(last + 1)]
    assert plan.tokens > 0


def test_the_threshold_is_configurable(counter: TokenCounter) -> None:
    messages = [turn(i) for i in range(30)]
    usage = usage_of(messages, counter)
    assert plan_compression(SPEC, messages, counter, compress_at=usage + 0.01, target=0.1) is None
    assert plan_compression(SPEC, messages, counter, compress_at=usage - 0.01, target=0.1) is not None


def test_the_plan_starts_after_the_last_summary_and_rolls_it_in(counter: TokenCounter) -> None:
    messages = [turn(i) for i in range(80)]
    previous = Summary("m0", "m29", "The story so far.")
    plan = plan_compression(SPEC, messages, counter, summaries=[previous], compress_at=0.5, target=0.2)
    assert plan is not None
    assert plan.messages[0].id == "m30"
    assert plan.previous == (previous,)
    assert plan.first_id == "m0"


def test_a_gap_before_the_last_summary_stops_the_roll(counter: TokenCounter) -> None:
    messages = [turn(i) for i in range(80)]
    old = Summary("m0", "m9", "old")
    newer = Summary("m20", "m29", "newer")
    plan = plan_compression(SPEC, messages, counter, summaries=[old, newer], compress_at=0.5, target=0.2)
    assert plan is not None
    assert plan.previous == (newer,) and plan.first_id == "m20"


def test_recent_turns_are_never_planned_away(counter: TokenCounter) -> None:
    messages = [turn(i, words=400) for i in range(6)]
    plan = plan_compression(SPEC, messages, counter, compress_at=0.5, target=0.1, keep_recent=4)
    assert plan is not None
    assert [m.id for m in plan.messages] == ["m0", "m1"]
    assert plan_compression(SPEC, messages[:5], counter, compress_at=0.5, target=0.1, keep_recent=4) is None


def test_target_must_be_below_the_trigger(counter: TokenCounter) -> None:
    with pytest.raises(ValueError):
        plan_compression(SPEC, [turn(0)], counter, compress_at=0.5, target=0.6)


# --- the cache key -------------------------------------------------------------------------------


def test_summary_key_is_stable_and_input_sensitive() -> None:
    key = summary_key("summarize this")
    assert key == summary_key("summarize this")
    assert key == hashlib.sha256(b"\x00summarize this").hexdigest()
    assert key == "4a8fc6f42cc20f70c5bb0916e2f02fb9f01db60995ada94ba2ad777bfe733907"
    assert summary_key("summarize that") != key
    assert summary_key("summarize this", salt="claude-haiku-4-5") != key
    assert summary_key("lone \ud800 surrogate")  # never raises on text the store may hold


# --- map-reduce ----------------------------------------------------------------------------------


class FakeSummarizer:
    """Records prompts and how many calls ran at once."""

    def __init__(self, reply_words: int = 20, fail_on: str | None = None) -> None:
        self.prompts: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self.reply_words = reply_words
        self.fail_on = fail_on

    async def __call__(self, prompt: str) -> str:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if self.fail_on is not None and self.fail_on in prompt:
                while self.in_flight > 1:  # fail once the others are done: their cancellation is not raced
                    await asyncio.sleep(0.005)
                raise RuntimeError("provider down")
            self.prompts.append(prompt)
            return f"summary {len(self.prompts)} " + "word " * self.reply_words
        finally:
            self.in_flight -= 1


def long_plan(counter: TokenCounter, count: int = 120) -> tuple[list[ContextMessage], object]:
    messages = [turn(i, words=120) for i in range(count)]
    spec = ProviderSpec(name="t", kind="openai", model="gpt-4", context_window=200_000, max_output_tokens=1_000)
    plan = plan_compression(spec, messages, counter, compress_at=0.03, target=0.01)
    assert plan is not None and len(plan.messages) > 50
    return messages, plan


async def test_long_ranges_are_mapped_in_parallel_then_combined(counter: TokenCounter) -> None:
    _, plan = long_plan(counter)
    fake = FakeSummarizer()
    counting = counter.counting("gpt-4")
    run = await run_plan(plan, fake, counting, chunk_tokens=2_000)  # type: ignore[arg-type]
    assert run.chunks > 3
    assert fake.peak > 1, "chunks run in parallel"
    assert run.calls == run.chunks + 1 == len(fake.prompts)
    maps, reduce = fake.prompts[:-1], fake.prompts[-1]
    assert all(p.startswith(SUMMARY_PROMPT.split("{")[0]) for p in fake.prompts)
    assert sorted(f"of {run.chunks}):" in p for p in maps) == [True] * run.chunks
    assert "Summaries of consecutive parts of the conversation" in reduce
    assert reduce.count("Part ") == run.chunks
    assert run.summary.text.startswith(f"summary {run.calls} ")
    assert (run.summary.first_id, run.summary.last_id) == (plan.first_id, plan.last_id)  # type: ignore[attr-defined]
    # Every message of the range went into exactly one chunk, in order.
    joined = "\n".join(maps)
    positions = [joined.index(f"turn {int(m.id[1:])}:") for m in plan.messages]  # type: ignore[attr-defined]
    assert positions == sorted(positions)


async def test_the_parallelism_limit_is_respected(counter: TokenCounter) -> None:
    _, plan = long_plan(counter)
    fake = FakeSummarizer()
    await run_plan(plan, fake, counter.counting("gpt-4"), chunk_tokens=1_000, max_parallel=2)  # type: ignore[arg-type]
    assert fake.peak == 2


async def test_a_range_is_never_paid_for_twice(counter: TokenCounter) -> None:
    _, plan = long_plan(counter)
    cache = MemorySummaryCache()
    counting = counter.counting("gpt-4")
    first = await run_plan(plan, FakeSummarizer(), counting, chunk_tokens=2_000, cache=cache)  # type: ignore[arg-type]
    again = FakeSummarizer()
    second = await run_plan(plan, again, counting, chunk_tokens=2_000, cache=cache)  # type: ignore[arg-type]
    assert again.prompts == [] and second.calls == 0 and second.cached == 1
    assert second.summary == first.summary
    assert first.summary.input_hash and first.summary.input_hash in cache.entries


async def test_a_failed_run_resumes_without_repaying_finished_chunks(counter: TokenCounter) -> None:
    _, plan = long_plan(counter)
    cache = MemorySummaryCache()
    counting = counter.counting("gpt-4")
    failing = FakeSummarizer(fail_on="(part 3 of")
    with pytest.raises(RuntimeError, match="provider down"):
        await run_plan(plan, failing, counting, chunk_tokens=2_000, cache=cache, max_parallel=8)  # type: ignore[arg-type]
    resumed = FakeSummarizer()
    run = await run_plan(plan, resumed, counting, chunk_tokens=2_000, cache=cache, max_parallel=8)  # type: ignore[arg-type]
    assert run.calls == 2, "only the failed chunk and the combining call are paid"
    assert run.cached == run.chunks - 1


async def test_partials_too_long_to_combine_at_once_are_combined_in_levels(counter: TokenCounter) -> None:
    _, plan = long_plan(counter, count=200)
    fake = FakeSummarizer(reply_words=300)
    counting = counter.counting("gpt-4")
    run = await run_plan(plan, fake, counting, chunk_tokens=1_200)  # type: ignore[arg-type]
    assert run.calls > run.chunks + 1
    prompt_room = counting.raw(SUMMARY_PROMPT) + 200
    assert all(counting.raw(p) <= 1_200 + prompt_room for p in fake.prompts)
    assert run.summary.text.startswith(f"summary {run.calls}")


async def test_a_short_range_is_one_call_with_the_previous_summary(counter: TokenCounter) -> None:
    messages = [turn(i) for i in range(80)]
    previous = Summary("m0", "m29", "The story so far: a dragon.")
    plan = plan_compression(SPEC, messages, counter, summaries=[previous], compress_at=0.5, target=0.2)
    assert plan is not None
    fake = FakeSummarizer()
    run = await run_plan(plan, fake, counter.counting("gpt-4"))
    assert run.calls == 1 and run.chunks == 1
    assert "Summary of the conversation before this excerpt:\n\nThe story so far: a dragon." in fake.prompts[0]
    assert "User: turn 30:" in fake.prompts[0]
    assert run.summary.first_id == "m0" and run.summary.last_id == plan.last_id


async def test_planned_summary_then_build_uses_it(counter: TokenCounter) -> None:
    messages = [turn(i) for i in range(90)]
    plan = plan_compression(SPEC, messages, counter, compress_at=0.75)
    assert plan is not None
    run = await run_plan(plan, FakeSummarizer(), counter.counting("gpt-4"))
    built = WindowBuilder(counter).build(SPEC, messages, system="Be brief.", summaries=[run.summary])
    assert built.summary_used
    assert built.request.system is not None and SUMMARY_HEADER in built.request.system
    assert built.included_ids[0] == messages[int(plan.last_id[1:]) + 1].id
    assert built.omitted == 0
    assert plan_compression(SPEC, messages, counter, summaries=[run.summary]) is None


def test_chunk_size_follows_the_summarizing_model(counter: TokenCounter) -> None:
    small = ProviderSpec(name="e", kind="llamacpp", model="gemma-3-270m", context_window=8_192)
    assert chunk_tokens_for(plan_budget(small, exact=False)) < 8_000
    big = ProviderSpec(name="h", kind="anthropic", model="claude-haiku-4-5")
    assert chunk_tokens_for(plan_budget(big, exact=False)) == 8_000


@pytest.mark.parametrize("loaded", [True, False])
def test_split_loses_and_repeats_nothing(counter: TokenCounter, loaded: bool) -> None:
    source = "".join(f"línea {i}: 这是 🚀 text\n" for i in range(2_000))
    active = counter if loaded else TokenCounter(EncodingResolver(allow_download=False))
    counting = active.counting("gpt-4")
    pieces = split_to_tokens(source, 500, counting)
    assert len(pieces) > 5
    assert "".join(pieces) == source
    assert all(counting.raw(p) <= 520 for p in pieces)
