"""What the model picker shows: each provider's state and the models it lists.

Listings come from the providers' own endpoints (OpenAI-compatible `/models`, Anthropic's models list),
fetched in the background with a short timeout and cached for the run. Servers found on this machine
(`Settings.local_servers`) join as "found" providers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from chatapp.config import Settings
from chatapp.domain import LoadState, ProviderError
from chatapp.providers.discovery import FoundServer, probe_server
from chatapp.providers.registry import ProviderPool

LISTING_TIMEOUT = 5.0
LISTING_TTL = 600.0  # seconds a listing is reused before it is asked again


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """One provider as the picker shows it. `state`: available, found, loading, no key, unavailable,
    breaker open, disabled (after an auth failure; `reenable_provider` puts it back)."""

    name: str
    kind: str
    model: str  # the provider's default model
    state: str
    detail: str = ""
    models: tuple[str, ...] = ()
    listing: str = "not asked"  # not asked, fetching, listed, failed
    listing_error: str | None = None

    @property
    def usable(self) -> bool:
        return self.state in ("available", "found", "loading")


@dataclass(slots=True)
class _Listing:
    models: tuple[str, ...] = ()
    error: str | None = None
    fetched: float = 0.0
    task: asyncio.Task[None] | None = None


class ModelCatalog:
    def __init__(self, settings: Settings, pool: ProviderPool,
                 breaker: Callable[[str], tuple[str, str | None]], redact: Callable[[str], str]) -> None:
        self._settings = settings
        self._pool = pool
        self._breaker = breaker
        self._redact = redact
        self._listings: dict[str, _Listing] = {}
        self._found: set[str] = set()
        self._discovery: asyncio.Task[list[FoundServer]] | None = None

    # --- state -------------------------------------------------------------------------------

    def entries(self) -> list[ProviderEntry]:
        return [self.entry(name) for name in self._settings.providers]

    def entry(self, name: str) -> ProviderEntry:
        spec = self._settings.provider(name)
        listing = self._listings.get(name)
        models: tuple[str, ...]
        if listing is None:
            shown, models, error = "not asked", (), None
        elif listing.task is not None and not listing.task.done():
            shown, models, error = "fetching", listing.models, None
        else:
            shown = "failed" if listing.error else "listed"
            models, error = listing.models, listing.error
        state, detail = self._state(name)
        return ProviderEntry(name, spec.kind, spec.model, state, detail, models, shown, error)

    def _state(self, name: str) -> tuple[str, str]:
        availability = self._pool.availability(name)
        if not availability.available:
            return ("no key" if availability.reason.startswith("no API key") else "unavailable"), availability.reason
        loading = self._pool.loading_state(name)
        if loading is not None and loading.state is LoadState.LOADING:
            return "loading", "loading the model"
        if loading is not None and loading.state is LoadState.FAILED:
            return "unavailable", loading.detail or "the model failed to load"
        breaker, reason = self._breaker(name)
        if breaker == "disabled":
            return "disabled", f"{reason or 'the key was refused'}: fix the key, then re-enable it"
        if breaker in ("open", "half_open"):
            return "breaker open", reason or "too many failures: resting"
        return ("found" if name in self._found else "available"), ""

    # --- listings ----------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> None:
        """Start fetching the listing of every usable provider whose cached one is missing or stale."""
        now = time.monotonic()
        for name in self._settings.providers:
            listing = self._listings.setdefault(name, _Listing())
            busy = listing.task is not None and not listing.task.done()
            fresh = listing.fetched and now - listing.fetched < LISTING_TTL and not listing.error
            if busy or (fresh and not force) or not self.entry(name).usable:
                continue
            listing.task = asyncio.get_running_loop().create_task(self._fetch(name, listing),
                                                                  name=f"models-{name}")

    async def wait(self) -> None:
        """Wait for the listings being fetched (each is bounded by LISTING_TIMEOUT)."""
        tasks = [t for t in (listing.task for listing in self._listings.values()) if t is not None]
        if tasks:
            await asyncio.wait(tasks)

    async def _fetch(self, name: str, listing: _Listing) -> None:
        try:
            provider = self._pool.get(name)
            list_models = getattr(provider, "list_models", None)
            if list_models is None:
                models = [self._settings.provider(name).model]
            else:
                # The SDK is imported on first use: do that in a thread, never on the event loop.
                module = self._pool.sdk_module(name)
                if module:
                    await asyncio.to_thread(__import__, module)
                models = await asyncio.wait_for(list_models(LISTING_TIMEOUT), LISTING_TIMEOUT + 1)
            listing.models, listing.error = tuple(models), None
        except ProviderError as exc:
            listing.error = self._redact(str(exc))
        except TimeoutError:
            listing.error = f"no model list within {LISTING_TIMEOUT:g} s"
        listing.fetched = time.monotonic()

    # --- servers on this machine ------------------------------------------------------------

    async def discover(self) -> list[FoundServer]:
        """Probe `local_servers` once per run; found ones become providers for this run."""
        if self._discovery is None:
            self._discovery = asyncio.get_running_loop().create_task(self._probe_all(), name="discover-servers")
        return await asyncio.shield(self._discovery)

    async def _probe_all(self) -> list[FoundServer]:
        configured = {(s.base_url or "").rstrip("/") for s in self._settings.providers.values()}
        urls = [u.rstrip("/") for u in self._settings.local_servers if u.rstrip("/") not in configured]
        results = await asyncio.gather(*(asyncio.to_thread(probe_server, url) for url in urls))
        found = [server for server in results if server is not None]
        for server in found:
            if server.name in self._settings.providers:
                continue
            self._settings.add_found_provider(server.spec())
            self._found.add(server.name)
            self._listings[server.name] = _Listing(server.models, None, time.monotonic())
        return found
