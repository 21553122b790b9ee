"""The inputs the context layer works on: history messages and summaries of ranges of them.

Any object with `id`, `role` and `content` is a history message, so `chatapp.domain.Message` works as
is, and so does `ContextMessage`, a light record for rows the store reads without their other columns.
Token counts are not part of a message: they are passed alongside, keyed by message id, because they
depend on the counting basis (see tokens.py) while the message does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chatapp.context.tokens import TokenCount
from chatapp.domain import Role


class HistoryMessage(Protocol):
    """One stored turn, oldest first in every sequence the context layer is given."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def content(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ContextMessage:
    id: str
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Summary:
    """A derived record: the condensed text of messages `first_id` .. `last_id` (inclusive).

    The messages themselves are never deleted. `input_hash` is the cache key the text was produced from
    (compression.summary_key); `tokens` an optional cached count of `text`.
    """

    first_id: str
    last_id: str
    text: str
    input_hash: str = ""
    tokens: TokenCount | None = None
