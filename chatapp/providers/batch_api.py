"""What the providers' Batch APIs have in common, as chatapp uses them: submit, poll, fetch results.

Each adapter (openai_batch, anthropic_batch) wraps one official SDK's batch endpoints and classifies its
errors like the streaming adapters do. Requests carry a `custom_id` chosen by the caller; results come
back keyed by it, in any order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from chatapp.domain import ChatRequest, Usage


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

    async def submit(self, requests: Sequence[tuple[str, ChatRequest]], *, label: str) -> str:
        """Create one provider batch; returns its id. Raises ProviderError."""
        ...

    async def poll(self, remote_id: str) -> RemoteStatus: ...

    def results(self, remote_id: str) -> AsyncIterator[RemoteResult]: ...

    async def aclose(self) -> None: ...
