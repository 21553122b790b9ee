"""Compression planning: when a conversation nears the window, which old turns to summarize.

The trigger is `compress_at` (Settings.compress_at, default 0.75) of the *usable* window (window minus
reply budget and safety margin), not of the raw window: the usable part is what runs out, and measuring
against it makes the summary land before any turn has to be left out of a request.

The plan takes the oldest turns no summary covers yet, up to the point where what stays verbatim is at
most `target` (default 0.4) of the usable window: well below the trigger, so a summary is not due again
two turns later. The newest `keep_recent` turns always stay verbatim, and the range ends just before a
user turn, so the verbatim part starts with a question rather than with half an exchange.

Summaries roll: the new summary folds in the summaries before it (`previous`) and covers from the
first of them to the end of the range, so one summary, not a growing pile of them, stands for the past.
Messages are never deleted; superseded summaries can stay (the builder prefers the widest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chatapp.config import ProviderSpec
from chatapp.context.ledger import Covered, Ledger, is_sendable, last_sendable, summary_chain
from chatapp.context.records import HistoryMessage, Summary
from chatapp.context.tokens import TokenCount, TokenCounter
from chatapp.context.window import plan_budget
from chatapp.domain import Role

DEFAULT_TARGET = 0.4
DEFAULT_KEEP_RECENT = 4


@dataclass(frozen=True, slots=True)
class CompressionPlan:
    """Summarize `messages` (and fold in `previous`) into one Summary covering first_id .. last_id."""

    first_id: str
    last_id: str
    messages: tuple[HistoryMessage, ...]  # the turns to condense, oldest first (sendable ones only)
    previous: tuple[Summary, ...]  # earlier summaries the new one replaces
    tokens: int  # model tokens of `messages`
    usage: float  # share of the usable window in use before compressing
    new_counts: Mapping[str, TokenCount]  # counts made while planning: store them


def plan_compression(
    spec: ProviderSpec,
    messages: Sequence[HistoryMessage],
    counter: TokenCounter,
    *,
    system: str | None = None,
    summaries: Sequence[Summary] = (),
    counts: Mapping[str, TokenCount] | None = None,
    compress_at: float = 0.75,
    target: float = DEFAULT_TARGET,
    keep_recent: int = DEFAULT_KEEP_RECENT,
    min_messages: int = 2,
) -> CompressionPlan | None:
    """The range to summarize now, or None while the conversation is below `compress_at`."""
    if not 0 < target < compress_at:
        raise ValueError("target must be between 0 and compress_at")
    counting = counter.counting(spec.model, spec.kind)
    usable = plan_budget(spec, counting.exact).input
    ledger = Ledger(counting, counts)
    chain = summary_chain(messages, summaries, last_sendable(messages))
    start = chain[-1].last + 1 if chain else 0
    previous = _rolling(messages, chain)

    sendable = [i for i in range(start, len(messages)) if is_sendable(messages[i])]
    in_use = counting.overhead.per_request + ledger.system(system, [c.summary for c in chain])
    in_use += sum(ledger.cost(messages[i]) for i in sendable)
    usage = counting.calibrated(in_use) / usable if usable > 0 else float("inf")
    if usage < compress_at:
        return None

    candidates = sendable[: max(0, len(sendable) - max(1, keep_recent))]
    remaining, target_raw = in_use, counting.raw_budget(target * usable)

    def user_follows(taken: int) -> bool:
        return messages[sendable[taken]].role == Role.USER

    for taken, i in enumerate(candidates, start=1):
        remaining -= ledger.cost(messages[i])
        if remaining <= target_raw and user_follows(taken):
            break
    else:
        # All candidates taken and still above target: stop short of the keep_recent boundary if it
        # falls mid-exchange, so the verbatim turns still begin with the user.
        taken = len(candidates)
        while taken and not user_follows(taken):
            taken -= 1
    if taken < min_messages:
        return None
    condensed = tuple(messages[i] for i in sendable[:taken])
    first_id = previous[0].first_id if previous else condensed[0].id
    return CompressionPlan(
        first_id=first_id,
        last_id=condensed[-1].id,
        messages=condensed,
        previous=tuple(previous),
        tokens=counting.calibrated(sum(ledger.content(m) for m in condensed)),
        usage=usage,
        new_counts=ledger.new_counts,
    )


def _rolling(messages: Sequence[HistoryMessage], chain: Sequence[Covered]) -> list[Summary]:
    """The summaries ending the chain with nothing sendable between them: the ones to fold in.

    A gap (messages no summary covers, left over from an older scheme) stops the fold, so the new
    summary never claims to cover turns it has not seen.
    """
    run: list[Summary] = []
    for k in range(len(chain) - 1, -1, -1):
        run.insert(0, chain[k].summary)
        if k == 0:
            break
        gap = messages[chain[k - 1].last + 1 : chain[k].first]
        if any(is_sendable(m) for m in gap):
            break
    return run
