"""The providers half of ChatService: which provider and model a turn goes to, their state, switching.

A target is the explicit choice, else the conversation's last provider, else the default; the chain adds the
configured fallbacks. Local models load in the background after the first paint.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from chatapp import model_facts
from chatapp.config import ProviderSpec, Settings
from chatapp.domain import ModelLoad, ProviderKind, Target
from chatapp.providers.registry import Availability, ProviderPool
from chatapp.store.conversations import Store

if TYPE_CHECKING:
    from chatapp.engine import RequestEngine
    from chatapp.service.model_catalog import ModelCatalog, ProviderEntry
    from chatapp.service.probe import ProbeResult


class ProviderChoice:
    settings: Settings
    _store: Store
    _pool: ProviderPool
    _learned_windows: dict[tuple[str, str], int | None]
    _hinted: set[str]  # providers whose setup hint was given this run

    if TYPE_CHECKING:  # built on first use by ChatService
        @property
        def _engine(self) -> RequestEngine: ...

        @property
        def catalog(self) -> ModelCatalog: ...

    def providers(self) -> list[Availability]:
        return self._pool.all()

    @property
    def default_provider(self) -> str | None:
        return self.settings.default_provider

    def target_for(self, conversation_id: str | None, provider: str | None = None,
                   model: str | None = None) -> Target:
        """Explicit choice, else the conversation's last provider, else the default."""
        conversation = self._store.get_conversation(conversation_id) if conversation_id else None
        if provider is None and conversation is not None and conversation.provider in self.settings.providers:
            provider = conversation.provider
            model = model or conversation.model
        spec = self.settings.provider(provider)
        return Target(spec.name, model or spec.model)

    def _spec(self, target: Target) -> ProviderSpec:
        """The provider's settings for `target`, with the window its server reported, once learned."""
        spec = self.settings.provider(target.provider).with_model(target.model)
        window = self._learned_windows.get((spec.name, spec.model))
        return replace(spec, context_window=window) if window and spec.context_window is None else spec

    async def _learned_spec(self, target: Target) -> ProviderSpec:
        """`_spec`, first asking an OpenAI-compatible server for the window of a model the table does not know
        (llama.cpp `/props`, vLLM `/v1/models`, Ollama `/api/show`); once per provider and model per run."""
        spec = self.settings.provider(target.provider).with_model(target.model)
        key = (spec.name, spec.model)
        if (key not in self._learned_windows and spec.context_window is None and spec.kind is ProviderKind.OPENAI
                and spec.base_url and not model_facts.lookup(spec.model).known):
            from chatapp.providers.window_discovery import discover_context_window

            self._learned_windows[key] = await discover_context_window(
                spec.base_url, spec.model, spec.resolve_api_key(self.settings.environ))
        return self._spec(target)

    def window_hint(self, name: str) -> str | None:
        """What to set when the provider's model window is a guess (for `doctor`); None when it is known."""
        from chatapp.context.window import model_limits

        return model_limits(self._spec(self.target_for(None, name))).hint

    def start_provider(self, name: str) -> None:
        """Begin loading a local model in the background (call it after the first paint)."""
        self._pool.start(name)

    def breaker_state(self, name: str) -> str:
        """A provider's circuit breaker: closed, open, half_open or disabled (a rejected key)."""
        return self._engine.breaker_state(name)

    def provider_availability(self, name: str) -> Availability:
        return self._pool.availability(name)

    async def probe(self, name: str) -> ProbeResult:
        """A tiny timed request to one provider (loads a local model first); raises ProviderError."""
        from chatapp.service.probe import probe

        return await probe(self._pool, self.settings.provider(name))

    def provider_loading(self, name: str) -> ModelLoad | None:
        """A started local model's load: loading, ready (with its time) or failed (with why)."""
        return self._pool.loading_state(name)

    def is_local(self, name: str) -> bool:
        """The provider runs a model in-process (it loads after the first paint, and may fail to)."""
        return self.settings.provider(name).kind is ProviderKind.LLAMACPP

    def warm_provider(self, name: str | None = None) -> None:
        """Import the SDK a provider needs. Blocking: call it from a worker thread after first paint."""
        module = self._pool.sdk_module(name or self.default_provider or "")
        if module:
            __import__(module)

    def first_hint(self, provider: str) -> bool:
        """True the first time this run a setup hint for `provider` is due (each is given once)."""
        if provider in self._hinted:
            return False
        self._hinted.add(provider)
        return True

    def next_available_provider(self, current: str | None) -> Target | None:
        """The provider after `current` in config order that can take a turn now (wrapping), at its default
        model; None when no other provider is available."""
        names = list(self.settings.providers)
        if not names:
            return None
        start = names.index(current) + 1 if current in names else 0
        for name in names[start:] + names[:start]:
            if name != current and self.catalog.entry(name).usable:
                return Target(name, self.settings.provider(name).model)
        return None

    # --- models and providers for the picker -------------------------------------------------

    def model_entries(self) -> list[ProviderEntry]:
        """Every provider with its state and the models it listed (cached; see `refresh_models`)."""
        return self.catalog.entries()

    def refresh_models(self, *, force: bool = False) -> None:
        """Fetch missing or stale model listings in the background (needs a running event loop)."""
        self.catalog.refresh(force=force)

    async def wait_models(self) -> None:
        await self.catalog.wait()

    async def discover_servers(self) -> list[str]:
        """Probe the configured loopback ports once; the names of the servers found (now providers)."""
        return [server.name for server in await self.catalog.discover()]

    def reenable_provider(self, name: str) -> None:
        """Put a provider that was disabled (a refused key) or resting (breaker) back in service."""
        if "_engine" in self.__dict__:
            self._engine.reset_provider(name)

    def _breaker(self, name: str) -> tuple[str, str | None]:
        if "_engine" not in self.__dict__:  # no request ran yet: nothing can have tripped
            return "closed", None
        return self._engine.breaker_state(name), self._engine.breaker_reason(name)

    def chain(self, first: str, *, explicit: bool = False) -> tuple[str, ...]:
        """The provider and then its fallbacks, in the configured order; only the provider itself when the
        user chose it explicitly, unless the config consents to falling back from an explicit choice."""
        if explicit and not self.settings.fallback_on_explicit:
            return (first,)
        return (first, *(name for name in self.settings.fallback if name != first))

