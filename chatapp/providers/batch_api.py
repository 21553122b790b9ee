"""What the providers' Batch APIs have in common, as chatapp uses them: submit, poll, fetch results.

Each adapter (openai_batch, anthropic_batch) wraps one official SDK's batch endpoints and classifies its
errors like the streaming adapters do. Requests carry a `custom_id` chosen by the caller; results come
back keyed by it, in any order.

Each create carries a `tag` the caller chose and recorded first, so a caller that died before it could
record the new batch's id can find that batch again (`find`) instead of paying for it twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from chatapp.domain import ChatRequest, Usage

# How far the provider's clock may be behind ours when matching a batch's creation time to a recorded intent.
CLOCK_SKEW = 600.0


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    ended: bool  # results (or some of them) can be fetched; nothing more will change
    state: str  # the provider's word: validating, in_progress, completed, ended, expired, ...
    finished: int = 0  # requests done so far, as the provider counts them
    total: int = 0


@dataclass(frozen=True, slots=True)
class RemoteResult:
    custom_id: str
    text: str | None = None
    usage: Usage | None = None
    error_class: str | None = None  # an ErrorKind value, or "expired" / "canceled"
    error: str | None = None


class BatchAPI(Protocol):
    name: str

    async def submit(self, requests: Sequence[tuple[str, ChatRequest]], *, label: str, tag: str) -> str:
        """Create one provider batch; returns its id. Raises ProviderError."""
        ...

    async def find(self, tag: str, *, count: int, since: float, exclude: Collection[str]) -> str | None:
        """The id of the batch created by `submit(..., tag=tag)` with `count` requests no earlier than
        `since` (epoch seconds), or None when the provider has none; ids in `exclude` are never it."""
        ...

    async def poll(self, remote_id: str) -> RemoteStatus: ...

    def results(self, remote_id: str) -> AsyncIterator[RemoteResult]: ...

    async def aclose(self) -> None: ...
