"""Help text names arguments as a user would (issue 18: `--provider ASK_PROVIDER`)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", [[], ["ask"], ["batch"]])
def test_help_shows_plain_argument_names(command, tmp_path):
    from envs import clean_env

    result = subprocess.run([sys.executable, "-m", "chatapp", *command, "--help"], env=clean_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--provider NAME" in result.stdout and "--model MODEL" in result.stdout
    assert "ASK_" not in result.stdout and "BATCH_" not in result.stdout
