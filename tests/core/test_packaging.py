"""The wheel carries every package folder, the bundled themes and the styles (an explicit list in pyproject)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(path.relative_to(ROOT).parts)
        for path in (ROOT / "chatapp").rglob("*")
        if path.is_dir() and path.name != "__pycache__" and any(path.glob("*.py")) | any(path.glob("*.toml"))
    }
    assert folders | {"chatapp", "chatapp.bundled_themes"} == listed


def test_bundled_themes_load():
    from chatapp.tui.themes import bundled_theme_files, theme_from_file

    names = {theme_from_file(path).name for path in bundled_theme_files()}
    assert {"chatapp-dusk", "chatapp-paper"} <= names
