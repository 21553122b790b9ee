"""Themes are TOML files of Textual `Theme` fields: the bundled ones (the repo's top-level `themes/`
folder, shipped as `chatapp.bundled_themes`) and the user's own in the config dir's `themes/`."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import fields
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from textual.theme import Theme

_FIELDS = {f.name for f in fields(Theme)}


def bundled_theme_files() -> list[Traversable]:
    """The shipped theme files, walked as resources: `chatapp.bundled_themes` is a namespace package in
    an installed wheel, whose root is a MultiplexedPath, not a directory path."""
    try:
        root: Traversable = files("chatapp.bundled_themes")
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[2] / "themes"
    if not root.is_dir():
        return []
    return sorted((entry for entry in root.iterdir() if entry.name.endswith(".toml") and entry.is_file()),
                  key=lambda entry: entry.name)


def load_themes(user_dir: Path, on_problem: Callable[[str], None]) -> Iterator[Theme]:
    """Every valid theme; a broken file is reported through `on_problem` and skipped."""
    user_files: list[Traversable] = [*sorted(user_dir.glob("*.toml"))] if user_dir.is_dir() else []
    for path in [*bundled_theme_files(), *user_files]:
        try:
            yield theme_from_file(path)
        except (OSError, ValueError, TypeError, tomllib.TOMLDecodeError) as exc:
            on_problem(f"theme {path}: {exc}")


def theme_from_file(path: Traversable) -> Theme:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = set(data) - _FIELDS
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    if not isinstance(data.get("name"), str) or not isinstance(data.get("primary"), str):
        raise ValueError("needs at least `name` and `primary`")
    return Theme(**data)
