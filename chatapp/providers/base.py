"""The provider seam: one adapter per wire protocol, all speaking the same small event vocabulary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from chatapp.domain import ChatRequest, StreamEvent


@runtime_checkable
class Provider(Protocol):
    """Turns one request into a stream of `TextDelta`, `Usage` and one final `Finish`.

    Implementations raise `chatapp.domain.ProviderError` for every failure (never an SDK exception),
    and raise it with kind INTERRUPTED when a stream ends without its terminator.
    Cancellation (the consuming task being cancelled) must close the underlying HTTP response.
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...  # a ProviderKind for the real adapters

    @property
    def model(self) -> str: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...
