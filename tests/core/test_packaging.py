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


# Run inside a fresh virtualenv holding the built wheel: what a user gets from a normal (non-editable) install.
_WHEEL_CHECK = """
import json, sys
from pathlib import Path
import chatapp
from chatapp.config import load_settings
from chatapp.templates import TemplateLibrary
from chatapp.tui.themes import load_themes
problems = []
themes = [t.name for t in load_themes(Path("/nonexistent"), problems.append)]
templates = [t.name for t in TemplateLibrary.from_paths(load_settings().paths).list()]
styles = sorted(p.name for p in Path(chatapp.__file__).parent.rglob("*.tcss"))
print(json.dumps({"file": chatapp.__file__, "themes": themes, "templates": templates, "styles": styles,
                  "problems": problems}))
"""


def test_a_wheel_install_loads_every_bundled_theme_and_template(tmp_path):
    """CI installs in editable mode, which hides resources that only the source tree has."""
    import json
    import shutil
    import subprocess
    import sys
    import sysconfig
    import venv

    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "chatapp", source / "chatapp", ignore=ignore)
    shutil.copytree(ROOT / "themes", source / "themes", ignore=ignore)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = wheels.glob("chatapp-*.whl")

    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-index", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # The dependencies come from the test venv, added as a plain path: its .pth files (the editable
    # install's finder among them) are not processed, so `chatapp` can only come from the wheel.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    result = subprocess.run([str(python), "-c", _WHEEL_CHECK], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["file"].startswith(site), seen["file"]
    assert seen["problems"] == []
    shipped = {path.stem for path in (ROOT / "themes").glob("*.toml")}
    assert shipped <= set(seen["themes"])
    builtin = {path.stem for path in (ROOT / "chatapp" / "templates" / "builtin").glob("*.toml")}
    assert builtin <= set(seen["templates"])
    assert {"app.tcss", "stats.tcss"} <= set(seen["styles"])
