"""Environments for running chatapp in a subprocess (tests/ is on sys.path: ``from envs import clean_env``)."""

from __future__ import annotations

import os
from pathlib import Path


def clean_env(tmp_path: Path) -> dict[str, str]:
    """This process's environment without provider keys or chatapp settings, XDG dirs under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "CHATAPP_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    return env


def provider_config(paths, base_url: str, *, name: str = "p", model: str = "gpt-4o-mini", extra: str = "",
                    before: str = "") -> None:
    """Write a config.toml with one OpenAI-protocol provider at `base_url` (the scripted server)."""
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(
        f'{before}\n[providers.{name}]\nkind = "openai"\nbase_url = "{base_url}"\napi_key = "k"\n'
        f'model = "{model}"\n{extra}\n'
    )
