"""The window builder: never over the window, newest turns first, summaries for the rest, no silent cut."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest

from chatapp.config import ProviderSpec
from chatapp.context import (
    BuiltContext,
    ContextMessage,
    EncodingResolver,
    MessageTooLarge,
    Summary,
    SystemPromptTooLarge,
    TokenCounter,
    WindowBuilder,
)
from chatapp.context.ledger import SUMMARY_HEADER, is_sendable
from chatapp.context.tokens import ESTIMATE
from chatapp.domain import Message, MessageStatus, Role

WORDS = [
    *("the", "model", "reads", "every", "turn", "of", "history", "again", "so", "context"),
    *("grows", "with", "each", "reply", "and", "must", "be", "trimmed", "before", "the"),
    *("window", "fills", "def", "return", "import", "numpy", "42", "3.14159", "{json: true}"),
    *("café", "naïve", "这是", "测试", "🚀", "—", "…"),
]


pytestmark = pytest.mark.usefixtures("no_network")  # sockets refuse (tests/context/conftest.py)


@pytest.fixture
def estimating() -> TokenCounter:
    """A counter whose encodings have not loaded yet."""
    return TokenCounter(EncodingResolver(allow_download=False))


def spec(model: str = "gpt-4", kind: str = "openai", **overrides: object) -> ProviderSpec:
    return ProviderSpec(name="test", kind=kind, model=model, **overrides)  # type: ignore[arg-type]


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def conversation(count: int, words: int = 40, seed: int = 1) -> list[ContextMessage]:
    rng = random.Random(seed)
    return [
        ContextMessage(f"m{i}", Role.USER if i % 2 == 0 else Role.ASSISTANT, text(rng, words)) for i in range(count)
    ]


def recount(built: BuiltContext, counter: TokenCounter, provider: ProviderSpec) -> int:
    """The request's size counted from scratch, as sent, independently of the builder's bookkeeping."""
    counting = counter.counting(provider.model, provider.kind)
    per_message = counting.overhead.per_message
    raw = counting.overhead.per_request
    if built.request.system:
        raw += counting.raw(built.request.system) + per_message
    raw += sum(counting.raw(turn.content) + per_message for turn in built.request.messages)
    return counting.calibrated(raw)


# --- properties over many random conversations ------------------------------------------------


def random_case(rng: random.Random) -> tuple[ProviderSpec, list[ContextMessage], list[Summary], str]:
    model, kind = rng.choice(
        [("gpt-4", "openai"), ("gpt-4o-mini", "openai"), ("claude-sonnet-4-5", "anthropic"),
         ("llama3.2", "openai"), ("gemma-3-270m", "llamacpp")]
    )  # fmt: skip
    window = rng.choice([1_500, 3_000, 6_000, 12_000, 30_000])
    max_output = rng.choice([None, 256, 1_024, 4_096])
    provider = spec(model, kind, context_window=window, max_output_tokens=max_output)
    messages: list[ContextMessage] = []
    for i in range(rng.randint(1, 120)):
        roll = rng.random()
        if roll < 0.04:
            content = rng.choice(["", "   ", "\n"])
        elif roll < 0.08:
            content = text(rng, rng.randint(300, 3_000))  # a paste
        else:
            content = text(rng, rng.randint(1, 120))
        if rng.random() < 0.02:
            role = Role.SYSTEM
        elif rng.random() < 0.1:
            role = rng.choice([Role.USER, Role.ASSISTANT])  # a failed reply, a double send
        else:
            role = Role.USER if i % 2 == 0 else Role.ASSISTANT
        messages.append(ContextMessage(f"m{i}", role, content))
    if rng.random() < 0.15:  # the turn being sent is a huge paste
        messages.append(ContextMessage("paste", Role.USER, text(rng, rng.randint(2_000, 12_000))))
    summaries = []
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        if len(messages) < 3:
            break
        first = rng.randrange(0, len(messages) - 2)
        last = rng.randrange(first, len(messages) - 1)
        summaries.append(Summary(f"m{first}", f"m{last}", text(rng, rng.randint(20, 300))))
    system = text(rng, rng.randint(0, 200))
    return provider, messages, summaries, system


def check_invariants(
    built: BuiltContext,
    counter: TokenCounter,
    provider: ProviderSpec,
    messages: Sequence[ContextMessage],
) -> None:
    budget = built.budget
    assert budget.input + budget.reply + budget.margin == budget.window
    assert built.request.max_tokens == budget.reply
    assert built.input_tokens <= budget.input
    assert recount(built, counter, provider) <= budget.input

    position = {m.id: i for i, m in enumerate(messages)}
    sendable = [i for i, m in enumerate(messages) if is_sendable(m)]
    picked = [position[message_id] for message_id in built.included_ids]
    assert picked == sorted(picked)
    assert picked[-1] == sendable[-1], "the turn being answered is always sent"
    # Contiguous: every sendable message between the oldest sent and the newest is sent.
    assert [i for i in sendable if i >= picked[0]] == picked
    for summary in built.summaries:
        assert position[summary.last_id] < picked[0], "a summary stands only for older turns"
    turns = built.request.messages
    if len(turns) > 1 or turns[0].role == Role.USER:
        assert turns[0].role == Role.USER
    assert all(a.role != b.role for a, b in itertools.pairwise(turns)), "roles alternate"
    assert all(turn.role in (Role.USER, Role.ASSISTANT) for turn in turns)
    if built.summaries:
        assert built.request.system is not None and SUMMARY_HEADER in built.request.system
    # Newest turns kept: the next older uncovered turn would not have fitted (or was a dropped reply).
    covered = set()
    for summary in built.summaries:
        covered.update(range(position[summary.first_id], position[summary.last_id] + 1))
    older = [i for i in sendable if i < picked[0] and i not in covered]
    if older and messages[older[-1]].role != Role.ASSISTANT:
        counting = counter.counting(provider.model, provider.kind)
        cost = counting.raw(messages[older[-1]].content) + counting.overhead.per_message
        summary_bound = max((position[s.last_id] for s in built.summaries), default=-1)
        if older[-1] > summary_bound:
            assert built.raw_input_tokens + cost > counting.raw_budget(budget.input)


@pytest.mark.parametrize("seed", range(4))
def test_random_conversations_never_exceed_the_window(counter: TokenCounter, seed: int) -> None:
    rng = random.Random(seed)
    builder = WindowBuilder(counter)
    built_count = oversize = 0
    for _ in range(100):
        provider, messages, summaries, system = random_case(rng)
        if not any(is_sendable(m) for m in messages):
            with pytest.raises(ValueError):
                builder.build(provider, messages, system=system, summaries=summaries)
            continue
        try:
            built = builder.build(provider, messages, system=system, summaries=summaries)
        except SystemPromptTooLarge:
            continue
        except MessageTooLarge as error:
            oversize += 1
            assert error.tokens > error.limit
            newest = max(i for i, m in enumerate(messages) if is_sendable(m))
            assert error.message_id == messages[newest].id
            cut = builder.truncate(messages[newest].content, provider, error.limit)
            messages[newest] = ContextMessage(messages[newest].id, messages[newest].role, cut)
            built = builder.build(provider, messages, system=system, summaries=summaries)
        check_invariants(built, counter, provider, messages)
        built_count += 1
    assert built_count > 50 and oversize > 0


def test_estimates_also_respect_the_window(estimating: TokenCounter) -> None:
    rng = random.Random(99)
    builder = WindowBuilder(estimating)
    for _ in range(60):
        provider, messages, summaries, system = random_case(rng)
        if not any(is_sendable(m) for m in messages):
            continue
        try:
            built = builder.build(provider, messages, system=system, summaries=summaries)
        except (MessageTooLarge, SystemPromptTooLarge):
            continue
        assert built.basis == ESTIMATE and not built.exact and built.budget.margin > 0
        check_invariants(built, estimating, provider, messages)


# --- specific behaviour ----------------------------------------------------------------------


def test_everything_fits_in_a_large_window(counter: TokenCounter) -> None:
    messages = conversation(21)
    built = WindowBuilder(counter).build(spec("gpt-4o-mini"), messages, system="Be brief.")
    assert built.included_ids == tuple(m.id for m in messages)
    assert built.omitted == 0 and not built.summary_used
    assert built.request.system == "Be brief."
    assert built.request.model == "gpt-4o-mini"
    assert [t.content for t in built.request.messages] == [m.content for m in messages]


def test_newest_turns_are_kept_when_the_window_is_small(counter: TokenCounter) -> None:
    messages = conversation(201)
    built = WindowBuilder(counter).build(spec("gpt-4", context_window=2_000), messages)
    assert built.included_ids[-1] == "m200"
    assert 2 < len(built.included_ids) < 201
    first = int(built.included_ids[0][1:])
    assert built.included_ids == tuple(f"m{i}" for i in range(first, 201))
    assert messages[first].role == Role.USER
    assert built.omitted == first
    assert built.input_tokens <= built.budget.input


def test_summary_stands_in_for_dropped_turns(counter: TokenCounter) -> None:
    messages = conversation(201)
    summary = Summary("m0", "m149", "The user and the assistant discussed trimming context.")
    built = WindowBuilder(counter).build(
        spec("gpt-4", context_window=2_000), messages, system="Be brief.", summaries=[summary]
    )
    assert built.summary_used and built.summaries == (summary,)
    assert built.request.system is not None
    assert built.request.system.startswith("Be brief.\n\n" + SUMMARY_HEADER)
    assert built.request.system.endswith(summary.text)
    first = int(built.included_ids[0][1:])
    assert first > 149
    assert built.omitted == first - 150  # the turns between the summary and the window


def test_covered_turns_are_not_sent_twice_even_when_they_would_fit(counter: TokenCounter) -> None:
    messages = conversation(30)
    summary = Summary("m0", "m19", "Earlier: greetings and a plan.")
    built = WindowBuilder(counter).build(spec("gpt-4o-mini"), messages, summaries=[summary])
    assert built.included_ids == tuple(f"m{i}" for i in range(20, 30))
    assert built.omitted == 0
    assert built.request.system == f"{SUMMARY_HEADER}\n\nEarlier: greetings and a plan."


def test_the_widest_of_overlapping_summaries_wins(counter: TokenCounter) -> None:
    messages = conversation(30)
    old = Summary("m0", "m9", "old")
    rolled = Summary("m0", "m19", "rolled")
    stale = Summary("gone", "m5", "refers to a deleted message")
    covering_newest = Summary("m0", "m29", "covers everything")
    built = WindowBuilder(counter).build(spec("gpt-4o-mini"), messages, summaries=[old, stale, rolled, covering_newest])
    assert built.summaries == (rolled,)
    assert built.included_ids[0] == "m20"


def test_oldest_summaries_go_first_when_room_is_short(counter: TokenCounter) -> None:
    messages = conversation(60, words=10)
    first = Summary("m0", "m19", "first part " * 500)
    second = Summary("m20", "m39", "second part " * 40)
    built = WindowBuilder(counter).build(
        spec("gpt-4", context_window=1_200, max_output_tokens=200), messages, summaries=[first, second]
    )
    assert built.summaries == (second,)
    assert built.omitted == 20
    assert built.input_tokens <= built.budget.input


def test_an_oversize_message_raises_a_typed_error_and_truncation_fixes_it(counter: TokenCounter) -> None:
    provider = spec("gpt-4", context_window=4_000, max_output_tokens=1_000)
    builder = WindowBuilder(counter)
    paste = "A log line with some numbers 12345 and words.\n" * 2_000
    messages = [*conversation(6), ContextMessage("big", Role.USER, paste)]
    with pytest.raises(MessageTooLarge) as caught:
        builder.build(provider, messages, system="You read logs.")
    error = caught.value
    assert error.message_id == "big"
    assert error.exact
    assert error.tokens > error.limit > 2_000
    assert "at most" in str(error)

    cut = builder.truncate(paste, provider, error.limit)
    assert cut.startswith(paste[:200]) and cut.endswith(paste[-200:])
    assert "tokens cut here" in cut
    assert counter.counting("gpt-4").raw(cut) <= error.limit
    messages[-1] = ContextMessage("big", Role.USER, cut)
    built = builder.build(provider, messages, system="You read logs.")
    assert built.included_ids == ("big",)
    assert built.input_tokens <= built.budget.input


@pytest.mark.parametrize("keep", ["head", "tail", "both"])
def test_truncate_keeps_the_chosen_end(counter: TokenCounter, keep: str) -> None:
    provider = spec("claude-sonnet-4-5", "anthropic")
    source = "".join(f"line {i}: café 这是 🚀\n" for i in range(3_000))
    cut = WindowBuilder(counter).truncate(source, provider, 500, keep=keep)  # type: ignore[arg-type]
    counting = counter.counting("claude-sonnet-4-5", "anthropic")
    assert counting.calibrated(counting.raw(cut)) <= 500
    assert "\ufffd" not in cut
    if keep in ("head", "both"):
        assert cut.startswith("line 0: café")
    if keep in ("tail", "both"):
        assert cut.endswith("line 2999: café 这是 🚀\n")
    assert WindowBuilder(counter).truncate("short", provider, 500) == "short"


def test_truncate_with_estimates(estimating: TokenCounter) -> None:
    cut = WindowBuilder(estimating).truncate("word " * 10_000, spec("gpt-4o-mini"), 300)
    counting = estimating.counting("gpt-4o-mini")
    assert 0 < counting.calibrated(counting.raw(cut)) <= 300


def test_an_oversize_system_prompt_raises(counter: TokenCounter) -> None:
    with pytest.raises(SystemPromptTooLarge):
        WindowBuilder(counter).build(spec("gpt-4", context_window=1_000), conversation(3), system="rules " * 2_000)


def test_a_leading_reply_without_its_question_is_left_out(counter: TokenCounter) -> None:
    messages = conversation(40, words=60)
    provider = spec("gpt-4", context_window=1_500, max_output_tokens=200)
    built = WindowBuilder(counter).build(provider, messages[:-1])  # ends with an assistant turn
    assert built.request.messages[0].role == Role.USER
    first = int(built.included_ids[0][1:])
    assert messages[first].role == Role.USER


def test_consecutive_turns_of_one_role_are_joined(counter: TokenCounter) -> None:
    messages = [
        ContextMessage("a", Role.USER, "first try"),
        ContextMessage("b", Role.ASSISTANT, ""),  # the reply failed, nothing stored
        ContextMessage("c", Role.USER, "second try"),
        ContextMessage("s", Role.SYSTEM, "a stray system row"),
        ContextMessage("d", Role.ASSISTANT, "answer"),
        ContextMessage("e", Role.USER, "thanks"),
    ]
    built = WindowBuilder(counter).build(spec("gpt-4o-mini"), messages)
    assert [(t.role, t.content) for t in built.request.messages] == [
        (Role.USER, "first try\n\nsecond try"),
        (Role.ASSISTANT, "answer"),
        (Role.USER, "thanks"),
    ]
    assert built.included_ids == ("a", "c", "d", "e")


def test_domain_messages_are_accepted(counter: TokenCounter) -> None:
    messages = [
        Message(f"m{i}", "c1", Role.USER if i % 2 == 0 else Role.ASSISTANT, f"turn {i}",
                MessageStatus.COMPLETE, created=i, updated=i)
        for i in range(5)
    ]  # fmt: skip
    built = WindowBuilder(counter).build(spec("gpt-4o-mini"), messages)
    assert built.included_ids == tuple(m.id for m in messages)


def test_cached_counts_are_used_and_stale_ones_recounted(counter: TokenCounter) -> None:
    messages = conversation(50)
    builder = WindowBuilder(counter)
    provider = spec("gpt-4")
    first = builder.build(provider, messages)
    assert set(first.new_counts) == {m.id for m in messages}
    again = builder.build(provider, messages, counts=first.new_counts)
    assert again.new_counts == {} and again.input_tokens == first.input_tokens
    # A cached count in another basis is not trusted; a wrong count in this basis is (it is the cache).
    stale = {**first.new_counts, "m3": type(first.new_counts["m3"])(1, ESTIMATE)}
    assert set(builder.build(provider, messages, counts=stale).new_counts) == {"m3"}


def test_estimated_counts_are_not_offered_for_storage(estimating: TokenCounter) -> None:
    built = WindowBuilder(estimating).build(spec("gpt-4o-mini"), conversation(10))
    assert built.basis == ESTIMATE and built.new_counts == {}


def test_reply_budget_is_the_smaller_of_max_output_and_a_quarter(counter: TokenCounter) -> None:
    builder = WindowBuilder(counter)
    messages = conversation(3)
    assert builder.build(spec("gpt-4o-mini"), messages).reply_budget == 16_384
    assert builder.build(spec("claude-sonnet-4-5", "anthropic"), messages).reply_budget == 50_000
    assert builder.build(spec("gpt-4o-mini", context_window=8_000), messages).reply_budget == 2_000
    assert builder.build(spec("gpt-4o-mini"), messages, reply_budget=500).reply_budget == 500
    assert builder.build(spec("gpt-4o-mini", max_output_tokens=1_000), messages).reply_budget == 1_000


def test_unknown_models_get_a_small_window_and_a_hint(counter: TokenCounter) -> None:
    builder = WindowBuilder(counter)
    built = builder.build(spec("llama3.2"), conversation(3))
    assert built.window == 8_192
    assert built.hint is not None and "context_window" in built.hint and "[providers.test]" in built.hint
    configured = builder.build(spec("llama3.2", context_window=32_768), conversation(3))
    assert configured.window == 32_768 and configured.hint is None


def test_nothing_to_send_is_a_value_error(counter: TokenCounter) -> None:
    with pytest.raises(ValueError):
        WindowBuilder(counter).build(spec(), [ContextMessage("a", Role.USER, "  ")])


def test_an_edited_message_is_sent_as_edited(counter: TokenCounter) -> None:
    builder = WindowBuilder(counter)
    messages = conversation(5)
    builder.build(spec("gpt-4o-mini"), messages)
    messages[2] = ContextMessage("m2", Role.USER, "edited text")
    built = builder.build(spec("gpt-4o-mini"), messages)
    assert built.request.messages[2].content == "edited text"
