"""Build provider adapters from config, lazily, and say which ones can be used right now."""

from __future__ import annotations

from dataclasses import dataclass

from chatapp.config import ProviderSpec, Settings
from chatapp.domain import ErrorKind, LoadState, ModelLoad, ProviderError, ProviderKind
from chatapp.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Availability:
    name: str
    kind: ProviderKind
    model: str
    available: bool
    reason: str = ""


_SDK_MODULE = {ProviderKind.OPENAI: "openai", ProviderKind.ANTHROPIC: "anthropic", ProviderKind.LLAMACPP: "openai"}


class ProviderPool:
    """Owns one adapter per configured provider, built on first use and closed together."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._providers: dict[str, Provider] = {}

    def availability(self, name: str) -> Availability:
        spec = self._settings.provider(name)
        if spec.needs_key and not spec.resolve_api_key(self._settings.environ):
            return Availability(name, spec.kind, spec.model, False, f"no API key: set {spec.key_env}")
        if spec.kind is ProviderKind.LLAMACPP:
            from chatapp.providers.llamacpp import unavailable_reason

            reason = unavailable_reason(spec)
            if reason:
                return Availability(name, spec.kind, spec.model, False, reason)
        return Availability(name, spec.kind, spec.model, True)

    def all(self) -> list[Availability]:
        return [self.availability(name) for name in self._settings.providers]

    def get(self, name: str) -> Provider:
        provider = self._providers.get(name)
        if provider is None:
            state = self.availability(name)
            if not state.available:
                raise ProviderError(ErrorKind.UNAVAILABLE, state.reason, provider=name)
            provider = self._build(self._settings.provider(name))
            self._providers[name] = provider
        return provider

    def _build(self, spec: ProviderSpec) -> Provider:
        key = spec.resolve_api_key(self._settings.environ)
        if spec.kind is ProviderKind.OPENAI:
            from chatapp.providers.openai_provider import OpenAIProvider

            return OpenAIProvider(spec, key)
        if spec.kind is ProviderKind.ANTHROPIC:
            from chatapp.providers.anthropic_provider import AnthropicProvider

            return AnthropicProvider(spec, key)
        if spec.kind is ProviderKind.LLAMACPP:
            from chatapp.providers.llamacpp import LlamaCppProvider

            return LlamaCppProvider(spec, self._settings.paths)
        raise ProviderError(ErrorKind.UNAVAILABLE, f"unknown provider kind {spec.kind!r}", provider=spec.name)

    def start(self, name: str) -> None:
        """Begin loading a local model in the background; nothing to do for remote providers."""
        try:
            provider = self.get(name)
        except ProviderError:
            return
        start = getattr(provider, "start", None)
        if callable(start):
            start()

    def loading_state(self, name: str) -> ModelLoad | None:
        """A local model that was started: loading, ready (with its load time) or failed (with why)."""
        provider = self._providers.get(name)
        state = getattr(provider, "state", None)
        if provider is None or not isinstance(state, LoadState):
            return None
        if state is LoadState.FAILED:
            return ModelLoad(state, getattr(provider, "error", None))
        if state is LoadState.READY:
            seconds = getattr(provider, "load_seconds", None)
            return ModelLoad(state, f"{seconds:.1f} s" if seconds is not None else None)
        return ModelLoad(state)

    async def wait_ready(self, name: str) -> bool:
        """Wait for a local model to load (cancellable); False when there was nothing to wait for."""
        provider = self.get(name)
        ready = getattr(provider, "ready", None)
        if not callable(ready) or getattr(provider, "state", LoadState.READY) is LoadState.READY:
            return False
        await ready()
        return True

    def sdk_module(self, name: str) -> str | None:
        """The SDK a provider needs, so the UI can import it in the background after first paint."""
        spec = self._settings.providers.get(name)
        return _SDK_MODULE.get(spec.kind) if spec else None

    async def aclose(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.aclose()
