"""Reading the config file: where it is, TOML decoding errors as `file:line: problem`.

The file lives at `platformdirs.user_config_dir("chatapp")/config.toml` (XDG honoured), or where
`CHATAPP_CONFIG` names. With no file, the SDKs' own variables define the providers (see `implied`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatapp.config.settings import ConfigError, Paths, Settings
from chatapp.config.validation import SettingsParser


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
    return SettingsParser(path if raw or text else None, text, environ, paths).parse(raw)


def _decode_error_line(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column \d+\)", message)
    if match:
        problem = message[: match.start()].strip()
        return f"{path}:{match.group(1)}: {problem}"
    return f"{path}: {message}"
