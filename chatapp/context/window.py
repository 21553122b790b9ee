"""The window builder: system prompt + summaries + the newest turns that fit, as one ChatRequest.

Rules, in order of priority:

1. The request never exceeds the window: input ≤ window − reply budget − safety margin, where the
   margin is 5% of the window when counts are approximate (Claude, local models, or encodings still
   loading) and 0 when exact. `max_tokens` is set to the reply budget, so input + output fit too.
2. The system prompt and the newest message are always sent whole. If they cannot fit, a typed error
   says so (`SystemPromptTooLarge`, `MessageTooLarge`): the UI offers to truncate (see `truncate`) or
   to cancel. Nothing is ever cut silently.
3. Messages covered by a summary are sent as that summary (in the system prompt), never verbatim as
   well; when summaries and the newest message do not fit together, the oldest summaries go first.
4. Then the newest uncovered turns, newest first, as many as fit, contiguous: an older small message is
   never slipped in after a newer one was left out.
5. The turns sent start with the user and alternate: a leading assistant turn (its question is gone) is
   left out, and consecutive turns of one role (a reply that failed, a blank one skipped) are joined.

Reply budget: min(the model's max output, 25% of the window). A quarter leaves three quarters of the
window for history while covering every model's usual answer; models with a small output limit
(gpt-4o: 16k of 128k) keep their whole limit and lose no history to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chatapp.config import ProviderSpec
from chatapp.context.ledger import (
    Covered,
    Ledger,
    compose_system,
    is_sendable,
    last_sendable,
    summary_chain,
)
from chatapp.context.records import HistoryMessage, Summary
from chatapp.context.tokens import TokenCount, TokenCounter
from chatapp.context.truncate import Keep, truncate_to_tokens
from chatapp.domain import ChatMessage, ChatRequest, Role
from chatapp.model_facts import ModelLimits, limits

REPLY_SHARE = 0.25
APPROXIMATE_MARGIN = 0.05


class ContextError(Exception):
    """The request cannot be built as asked. Never raised for a mere shortage of room for history."""


class MessageTooLarge(ContextError):
    """The newest message alone does not fit: offer `WindowBuilder.truncate(text, spec, limit)` or cancel."""

    def __init__(self, message_id: str, tokens: int, limit: int, exact: bool) -> None:
        self.message_id = message_id
        self.tokens = tokens  # the message's content, in the model's tokens
        self.limit = limit  # the most its content may have; pass to WindowBuilder.truncate
        self.exact = exact
        about = "" if exact else "about "
        super().__init__(
            f"this message is {about}{tokens:,} tokens; the model can take at most {limit:,} "
            "with the system prompt and room for a reply"
        )


class NothingToSend(ContextError, ValueError):
    """No message in the history has content: there is no request to build."""


class SystemPromptTooLarge(ContextError):
    def __init__(self, tokens: int, limit: int) -> None:
        self.tokens = tokens
        self.limit = limit
        super().__init__(f"the system prompt is {tokens:,} tokens; the model's window allows {limit:,}")


@dataclass(frozen=True, slots=True)
class Budget:
    """How the window is shared out for one request, in the model's tokens."""

    limits: ModelLimits
    reply: int  # max_tokens of the request
    margin: int  # kept free because counts are estimates

    @property
    def window(self) -> int:
        return self.limits.context_window

    @property
    def input(self) -> int:
        return self.window - self.reply - self.margin


def model_limits(spec: ProviderSpec) -> ModelLimits:
    """The table's facts for the spec's model, with the spec's `context_window` / `max_output_tokens`."""
    return limits(
        spec.model,
        context_window=spec.context_window,
        max_output_tokens=spec.max_output_tokens,
        provider=spec.name,
    )


def default_reply_budget(model: ModelLimits) -> int:
    return max(1, min(model.max_output_tokens, math.floor(model.context_window * REPLY_SHARE)))


def plan_budget(spec: ProviderSpec, exact: bool, reply: int | None = None) -> Budget:
    model = model_limits(spec)
    reply = default_reply_budget(model) if reply is None else max(1, min(reply, model.max_output_tokens))
    margin = 0 if exact else math.ceil(model.context_window * APPROXIMATE_MARGIN)
    return Budget(model, reply, margin)


@dataclass(frozen=True, slots=True)
class BuiltContext:
    """One request, ready to send, with the figures behind it."""

    request: ChatRequest
    input_tokens: int  # estimated input tokens of the request, in the model's tokens
    raw_input_tokens: int  # the same, uncalibrated, in `basis`: pass it to TokenCounter.observe
    basis: str
    exact: bool
    budget: Budget
    included_ids: tuple[str, ...]  # messages sent verbatim, oldest first
    summaries: tuple[Summary, ...]  # summaries sent, oldest first
    omitted: int  # messages neither sent nor summarized (a summary is due)
    new_counts: Mapping[str, TokenCount]  # counts made during the build: store them

    @property
    def summary_used(self) -> bool:
        return bool(self.summaries)

    @property
    def window(self) -> int:
        return self.budget.window

    @property
    def reply_budget(self) -> int:
        return self.budget.reply

    @property
    def hint(self) -> str | None:
        """Set when the model's window is a guess: show it once to the user."""
        return self.budget.limits.hint


class WindowBuilder:
    """Builds requests for any provider from stored history. Pure: reads counts, returns new ones
    (its only state is a memo of the ChatMessage made per message id, for speed).

    CPU-bound for history that has no cached counts (a 1 MB paste takes ~0.1 s to count): call it via
    `asyncio.to_thread` from the service.
    """

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self._turn_memo: dict[str, ChatMessage] = {}

    def build(
        self,
        spec: ProviderSpec,
        messages: Sequence[HistoryMessage],
        *,
        system: str | None = None,
        summaries: Sequence[Summary] = (),
        counts: Mapping[str, TokenCount] | None = None,
        reply_budget: int | None = None,
        temperature: float | None = None,
    ) -> BuiltContext:
        """The request for `messages` (oldest first; the last sendable one is the turn being answered).

        `counts`: cached raw counts by message id; those whose basis differs from the current one are
        recounted. Raises `MessageTooLarge` / `SystemPromptTooLarge`; `NothingToSend` if nothing is sendable.
        """
        counting = self.counter.counting(spec.model, spec.kind)
        budget = plan_budget(spec, counting.exact, reply_budget)
        ledger = Ledger(counting, counts)
        raw_budget = counting.raw_budget(budget.input)
        newest = last_sendable(messages)
        if newest < 0:
            raise NothingToSend("no message with content to send")

        base = counting.overhead.per_request + ledger.system(system, ())
        if base > raw_budget:
            raise SystemPromptTooLarge(counting.calibrated(base), budget.input)
        newest_cost = ledger.cost(messages[newest])
        if base + newest_cost > raw_budget:
            room = raw_budget - base - counting.overhead.per_message
            raise MessageTooLarge(
                messages[newest].id,
                tokens=counting.calibrated(ledger.content(messages[newest])),
                limit=max(0, math.floor(room * counting.ratio)),
                exact=counting.exact,
            )

        chain = summary_chain(messages, summaries, newest)
        used_chain = list(chain)
        fixed = counting.overhead.per_request + ledger.system(system, [c.summary for c in used_chain])
        while used_chain and fixed + newest_cost > raw_budget:
            used_chain.pop(0)
            fixed = counting.overhead.per_request + ledger.system(system, [c.summary for c in used_chain])
        stop = chain[-1].last + 1 if chain else 0

        older, used = ledger.take_newest(messages, newest - 1, stop, raw_budget - fixed - newest_cost)
        used += fixed + newest_cost
        picked = [newest, *older]
        picked.reverse()
        omitted = _count_unsent(messages, picked[0], used_chain)
        while len(picked) > 1 and messages[picked[0]].role == Role.ASSISTANT:
            used -= ledger.cost(messages[picked.pop(0)])
            omitted += 1

        used_summaries = tuple(c.summary for c in used_chain)
        request = ChatRequest(
            model=spec.model,
            messages=_turns(messages, picked, self._turn_memo),
            system=compose_system(system, used_summaries),
            max_tokens=budget.reply,
            temperature=temperature,
        )
        return BuiltContext(
            request=request,
            input_tokens=counting.calibrated(used),
            raw_input_tokens=used,
            basis=counting.basis,
            exact=counting.exact,
            budget=budget,
            included_ids=tuple(messages[i].id for i in picked),
            summaries=used_summaries,
            omitted=omitted,
            new_counts=ledger.new_counts,
        )

    def truncate(self, text: str, spec: ProviderSpec, limit: int, *, keep: Keep = "both") -> str:
        """`text` cut to `limit` tokens (`MessageTooLarge.limit`), with a marker where it was cut."""
        return truncate_to_tokens(text, limit, self.counter.counting(spec.model, spec.kind), keep=keep)


def _count_unsent(messages: Sequence[HistoryMessage], end: int, chain: Sequence[Covered]) -> int:
    """Sendable messages before index `end` that no summary in `chain` covers."""
    total, position = 0, 0
    for span in chain:
        total += sum(1 for m in messages[position : min(span.first, end)] if is_sendable(m))
        position = max(position, span.last + 1)
    total += sum(1 for m in messages[position:end] if is_sendable(m))
    return total


_ROLES = {Role.USER: Role.USER, Role.ASSISTANT: Role.ASSISTANT}  # str keys hash alike: no Enum call
_TURN_MEMO_LIMIT = 50_000


def _turns(
    messages: Sequence[HistoryMessage], picked: Sequence[int], memo: dict[str, ChatMessage]
) -> tuple[ChatMessage, ...]:
    """The picked messages as turns, consecutive turns of one role joined into one.

    `memo` keeps the ChatMessage made for each message id: a frozen dataclass costs ~1 µs to create,
    which is most of a 10,000-turn build, and the same turns are sent again on every send.
    """
    if len(memo) > _TURN_MEMO_LIMIT:
        memo.clear()
    turns: list[ChatMessage] = []
    for i in picked:
        message = messages[i]
        content = message.content
        role = _ROLES.get(message.role) or Role(message.role)
        if turns and turns[-1].role == role:
            turns[-1] = ChatMessage(role, f"{turns[-1].content}\n\n{content}")
            continue
        turn = memo.get(message.id)
        if turn is None or turn.role != role or (turn.content is not content and turn.content != content):
            turn = memo[message.id] = ChatMessage(role, content)
        turns.append(turn)
    return tuple(turns)
