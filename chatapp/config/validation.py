"""Validating the TOML tree into Settings: unknown keys, types, ranges and URLs, each refused in one line
naming the file, line and key."""

from __future__ import annotations

import math
import re
import stat
from dataclasses import fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args, get_type_hints
from urllib.parse import urlsplit

from chatapp.config import implied
from chatapp.config.settings import (
    DEFAULT_BASE_URL_ENV,
    DEFAULT_LOCAL_SERVERS,
    DEFAULT_MODELS,
    ConfigError,
    Paths,
    ProviderSpec,
    RetrySettings,
    Settings,
)
from chatapp.domain import ProviderKind


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


class SettingsParser:
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
        providers = implied.providers_from_env(self.environ)
        table = raw.get("providers", {})
        if not isinstance(table, dict):
            raise self.error("providers", "must be a table of [providers.NAME] blocks")
        for name, block in table.items():
            providers[name] = self._provider(name, block)
        pulled = implied.pulled(self.paths, providers)
        providers.update(pulled)
        providers.update(implied.embedded(providers))
        default = raw.get("default_provider")
        if default is not None:
            if not isinstance(default, str):
                raise self.error("default_provider", "must be a string")
            if default not in providers:
                raise self.error("default_provider", f"no provider named {default!r}")
        else:
            default = implied.pick_default(providers, pulled)
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

    def _warnings(self, providers: Any) -> tuple[str, ...]:
        if self.path is None or not isinstance(providers, dict):
            return ()
        if not any(isinstance(b, dict) and b.get("api_key") for b in providers.values()):
            return ()
        if _readable_by_others(self.path):
            return (f"{self.path} holds an api_key and other users can read it: chmod 600 {self.path}",)
        return ()

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
