"""Shared bookkeeping for the window builder and the compression planner.

`Ledger` gives each message its raw cost (content + per-message overhead) from the cached counts when
their basis matches, counting and remembering the rest. `summary_chain` picks which summaries stand in
for which old messages. Both are pure: nothing here stores anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chatapp.context.records import HistoryMessage, Summary
from chatapp.context.tokens import ESTIMATE, Counting, TokenCount
from chatapp.domain import Role

SUMMARY_HEADER = "Summary of the earlier part of this conversation (those messages are not repeated below):"
_JOIN_SLACK = 2  # tokens a "\n\n" join may add when texts counted apart are sent together


def is_sendable(message: HistoryMessage) -> bool:
    """Blank messages are rejected by the APIs, and system turns belong in the system prompt."""
    content = message.content
    return bool(content) and not content.isspace() and message.role != Role.SYSTEM


def last_sendable(messages: Sequence[HistoryMessage]) -> int:
    """Index of the newest sendable message (the turn being answered), -1 if there is none."""
    for i in range(len(messages) - 1, -1, -1):
        if is_sendable(messages[i]):
            return i
    return -1


class Ledger:
    """Raw token costs for one `Counting`, cached counts first; `new_counts` holds what was counted."""

    __slots__ = ("_cached", "_counted", "_per_message", "counting")

    def __init__(self, counting: Counting, counts: Mapping[str, TokenCount] | None) -> None:
        self.counting = counting
        self._cached: Mapping[str, TokenCount] = counts or {}
        self._per_message = counting.overhead.per_message
        self._counted: dict[str, TokenCount] = {}

    @property
    def new_counts(self) -> dict[str, TokenCount]:
        """Counts made here, worth storing. Estimates are left out: they cost less to redo than to
        store, and storing them would overwrite exact counts while an encoding is still loading."""
        if self.counting.basis == ESTIMATE:
            return {}
        return dict(self._counted)

    def content(self, message: HistoryMessage) -> int:
        """Raw tokens of the message's content alone."""
        cached = self._cached.get(message.id)
        if cached is None or cached.basis != self.counting.basis:
            cached = self._counted.get(message.id)
            if cached is None:
                cached = self.counting.count(message.content)
                self._counted[message.id] = cached
        return cached.tokens

    def cost(self, message: HistoryMessage) -> int:
        """Raw tokens the message adds to a request: content plus per-message overhead."""
        return self.content(message) + self._per_message

    def take_newest(
        self, messages: Sequence[HistoryMessage], start: int, stop: int, room: int
    ) -> tuple[list[int], int]:
        """Sendable messages from index `start` down to `stop` (inclusive) while they fit in `room` raw
        tokens: their indexes, newest first, and the raw tokens they use. Stops at the first misfit.

        The builder's hot loop (10,000 messages in a few ms): `is_sendable` and `cost` inlined.
        """
        cached, counted = self._cached, self._counted
        basis, per_message, count = self.counting.basis, self._per_message, self.counting.count
        picked: list[int] = []
        used = 0
        for i in range(start, stop - 1, -1):
            message = messages[i]
            content = message.content
            if not content or message.role == Role.SYSTEM or content.isspace():
                continue
            found = cached.get(message.id)
            if found is None or found.basis != basis:
                found = counted.get(message.id)
                if found is None:
                    found = counted[message.id] = count(content)
            cost = found.tokens + per_message
            if used + cost > room:
                break
            used += cost
            picked.append(i)
        return picked, used

    def summary(self, summary: Summary) -> int:
        if summary.tokens is not None and summary.tokens.basis == self.counting.basis:
            return summary.tokens.tokens
        return self.counting.raw(summary.text)

    def system(self, system: str | None, summaries: Sequence[Summary]) -> int:
        """Raw tokens of the composed system prompt (see `compose_system`), 0 when there is none.

        Counted piecewise, so a cached summary count is reused, with a little slack per join.
        """
        if not system and not summaries:
            return 0
        raw = self._per_message
        if system:
            raw += self.counting.raw(system)
        if summaries:
            raw += self.counting.raw(SUMMARY_HEADER) + _JOIN_SLACK
            raw += sum(self.summary(summary) + _JOIN_SLACK for summary in summaries)
        return raw


def compose_system(system: str | None, summaries: Sequence[Summary]) -> str | None:
    """The system text sent: the prompt, then the summaries under a header saying what they are.

    Summaries go in the system prompt rather than in a fake turn: both protocols accept it, and the
    turns that follow still begin with the user and alternate, as chat templates (Gemma's) require.
    """
    parts = [system] if system else []
    if summaries:
        parts.append(SUMMARY_HEADER)
        parts.extend(summary.text for summary in summaries)
    return "\n\n".join(parts) if parts else None


@dataclass(frozen=True, slots=True)
class Covered:
    """A summary and the indexes (inclusive) of the messages it stands in for."""

    first: int
    last: int
    summary: Summary


def summary_chain(
    messages: Sequence[HistoryMessage], summaries: Sequence[Summary], newest: int | None = None
) -> list[Covered]:
    """The summaries to use, oldest first, non-overlapping, widest first where they overlap.

    A summary whose ids are not in `messages` (deleted or edited away) is ignored, and so is one that
    would cover the newest message (index `newest`, default the last), which is always sent verbatim.
    Where summaries overlap, the one starting first and reaching furthest wins: a rolling summary
    covering 1..80 supersedes 1..40.
    """
    if not summaries or not messages:
        return []
    index = {message.id: i for i, message in enumerate(messages)}
    newest = len(messages) - 1 if newest is None else newest
    spans: list[Covered] = []
    for summary in summaries:
        first, last = index.get(summary.first_id), index.get(summary.last_id)
        if first is None or last is None or first > last or last >= newest:
            continue
        spans.append(Covered(first, last, summary))
    spans.sort(key=lambda span: (span.first, -span.last))
    chain: list[Covered] = []
    covered_to = -1
    for span in spans:
        if span.first > covered_to:
            chain.append(span)
            covered_to = span.last
    return chain
