"""`chatapp models rm` and the config block `models pull --save` wrote: removed with the model when it is
untouched, kept (and said) when the user edited it or names the provider elsewhere. A block left behind
stayed the default provider with its file gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from envs import clean_env

from chatapp.config import Paths, load_settings
from chatapp.providers.hub import save_to_config
from chatapp.pulled_index import PulledModel, load_index, save_index

NAME = "tiny-it"


def _setup(tmp_path: Path, before: str = "", after: str = "") -> tuple[dict[str, str], Paths, PulledModel]:
    env = clean_env(tmp_path)
    paths = Paths(tmp_path / "config" / "chatapp", tmp_path / "data" / "chatapp", tmp_path / "cache" / "chatapp")
    gguf = paths.data_dir / "models" / "hub" / "o" / NAME / f"{NAME}.gguf"
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"GGUF")
    model = PulledModel(NAME, f"o/{NAME}", gguf.name, str(gguf), 4, "Q4_K_M", 32768, True)
    save_index(paths, [model])
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(before)
    save_to_config(paths.config_file, model)  # what `models pull --save` writes
    if after:
        with paths.config_file.open("a") as handle:
            handle.write(after)
    paths.config_file.chmod(0o600)
    return env, paths, model


def _rm(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatapp", "models", "rm", NAME, "--yes"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_rm_removes_the_block_save_wrote_and_keeps_the_rest_of_the_file(tmp_path):
    before = '# mine\ntheme = "chatapp-dusk"\n\n[providers.other]\nkind = "openai"\nmodel = "m"\n'
    after = '\n[retry]\nmax_attempts = 3\n'
    env, paths, model = _setup(tmp_path, before, after)
    assert NAME in load_settings(env, paths).providers
    result = _rm(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"removed [providers.{NAME}] from {paths.config_file}"
    assert paths.config_file.read_text() == before + after
    assert paths.config_file.stat().st_mode & 0o777 == 0o600
    assert load_index(paths, present_only=False) == [] and not Path(model.path).exists()
    settings = load_settings(env, paths)
    assert NAME not in settings.providers and settings.default_provider != NAME


@pytest.mark.parametrize(("before", "after", "reason"), [
    (f'default_provider = "{NAME}"\n', "", f"the file names {NAME!r} elsewhere"),
    ("", "# my notes about this model\nthreads = 2\n", "it was edited"),
])
def test_rm_keeps_a_block_the_user_changed_or_relies_on_and_says_so(tmp_path, before, after, reason):
    env, paths, _ = _setup(tmp_path, before, after)
    text = paths.config_file.read_text()
    result = _rm(env)
    assert result.returncode == 0, result.stderr
    assert paths.config_file.read_text() == text
    last = result.stdout.splitlines()[-1]
    assert last.startswith(f"{paths.config_file} still has [providers.{NAME}]") and reason in last
    assert "delete that block" in last and "Traceback" not in result.stderr


def test_rm_without_a_saved_block_says_nothing_about_the_config(tmp_path):
    env, paths, _ = _setup(tmp_path)
    paths.config_file.write_text('theme = "chatapp-dusk"\n')
    result = _rm(env)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith(f"removed {NAME} (")
    assert paths.config_file.read_text() == 'theme = "chatapp-dusk"\n'
