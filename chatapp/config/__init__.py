"""Settings from TOML and the environment; every path chatapp uses comes from here.

`settings` holds the values, `loading` reads the file, `validation` turns its tree into Settings, and
`implied` adds the providers the file does not name (keys in the environment, local models).
"""

from chatapp.config.loading import load_settings
from chatapp.config.settings import (
    APP_NAME,
    DEFAULT_BASE_URL_ENV,
    DEFAULT_KEY_ENV,
    DEFAULT_LOCAL_SERVERS,
    DEFAULT_MODELS,
    EMBEDDED_PROVIDER,
    LOCAL_MODEL_INSTALL,
    NO_PROVIDER_ADVICE,
    ConfigError,
    Paths,
    ProviderSpec,
    RetrySettings,
    Settings,
    is_loopback,
)

__all__ = [
    "APP_NAME",
    "DEFAULT_BASE_URL_ENV",
    "DEFAULT_KEY_ENV",
    "DEFAULT_LOCAL_SERVERS",
    "DEFAULT_MODELS",
    "EMBEDDED_PROVIDER",
    "LOCAL_MODEL_INSTALL",
    "NO_PROVIDER_ADVICE",
    "ConfigError",
    "Paths",
    "ProviderSpec",
    "RetrySettings",
    "Settings",
    "is_loopback",
    "load_settings",
]
