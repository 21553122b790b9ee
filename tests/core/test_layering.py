"""Imports point down only (DESIGN.md): checked in fresh interpreters, as harlequin does."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "chatapp"
FORBIDDEN_IN_TUI = {"openai", "anthropic", "httpx", "httpx2", "sqlite3", "aiosqlite", "xllamacpp"}
FORBIDDEN_IN_PROVIDERS = {"textual", "chatapp.tui", "chatapp.store", "sqlite3"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _violations(folder: str, forbidden: set[str]) -> list[str]:
    found = []
    for path in (PACKAGE / folder).rglob("*.py"):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in forbidden):
                found.append(f"{path.relative_to(PACKAGE)} imports {name}")
    return found


def test_tui_imports_no_sdk_http_or_sql():
    assert _violations("tui", FORBIDDEN_IN_TUI) == []


def test_providers_import_no_ui_or_store():
    assert _violations("providers", FORBIDDEN_IN_PROVIDERS) == []


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_service_layer_loads_no_textual_and_no_sdk():
    loaded = _loaded_after("import chatapp.service, chatapp.cli")
    assert not {m for m in loaded if m.split(".")[0] in {"textual", "openai", "anthropic", "tiktoken"}}


def test_tui_import_loads_no_sdk():
    """The SDKs cost 0.8-2 s to import: they must stay off the path to the first paint."""
    loaded = _loaded_after("import chatapp.tui.app")
    assert not {m for m in loaded if m.split(".")[0] in {"openai", "anthropic", "xllamacpp"}}
