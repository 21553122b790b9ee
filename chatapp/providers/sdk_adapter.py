"""What the SDK-backed adapters share: their identity, connection settings and a lazily built client.

Each adapter builds its own client in `_get_client` (the SDK is imported there, never at chatapp
import); this base only holds the settings and closes whatever client was built.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from chatapp.config import ProviderSpec


class _Closable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closable)


class SdkAdapter(Generic[ClientT]):
    """name/model for the `Provider` protocol; `base_url` None means the spec's (or the SDK's default)."""

    def __init__(self, spec: ProviderSpec, api_key: str | None, base_url: str | None = None) -> None:
        self.name = spec.name
        self.model = spec.model
        self._spec = spec
        self._api_key = api_key
        self._base_url = base_url if base_url is not None else spec.base_url
        self._client: ClientT | None = None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
