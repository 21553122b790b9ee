"""Imports point down only (DESIGN.md). The contracts live in pyproject ([tool.importlinter]) and
import-linter checks them; the subprocess checks below catch what a static graph cannot: what an import
actually loads."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chatapp"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": ""}, timeout=120)


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_tui_module_that_reaches_past_the_service_fails_with_the_offending_line(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "chatapp", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    status = tmp_path / "chatapp" / "tui" / "widgets" / "status.py"
    lines = status.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(("import ", "from "))) + 1
    lines.insert(at - 1, "import chatapp.store.conversations")
    status.write_text("\n".join(lines) + "\n")

    result = _lint_imports(tmp_path)

    assert result.returncode != 0
    assert f"chatapp.tui.widgets.status -> chatapp.store.conversations (l.{at})" in result.stdout


def test_every_package_folder_is_a_package_so_the_contracts_see_it():
    """import-linter's graph skips a folder without __init__.py, and the contracts with it."""
    folders = {p.parent for p in PACKAGE.rglob("*.py")} - {PACKAGE / "__pycache__"}
    assert [str(f.relative_to(ROOT)) for f in sorted(folders) if not (f / "__init__.py").exists()] == []


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
    assert not re.search(r"\bchatapp\.(engine|templates)\b", " ".join(loaded))
