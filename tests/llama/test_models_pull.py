"""`chatapp models pull / ls / rm` against a local server speaking the Hub's download protocol.

`HF_ENDPOINT` points huggingface_hub at `tests/fakehub.py`, which serves the packaged Gemma GGUF under
the fake repo `test/tiny-gguf`; nothing reaches the network. chatapp runs in subprocesses with its XDG
dirs in a temp dir, as a user would run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from envs import clean_env
from fakehub import FakeHub
from llama_fixtures import needs_local

from chatapp.config import Paths, load_settings
from chatapp.pulled_index import hub_dir, load_index

pytestmark = needs_local

REPO = "test/tiny-gguf"
FILE = "gemma-3-270m-Q4_K_M.gguf"
NAME = "gemma-3-270m-q4_k_m"


@pytest.fixture
def hub(llama_paths: Paths, tmp_path: Path) -> Iterator[FakeHub]:
    from chatapp.providers.embedded_model import embedded_model_path

    not_gguf = tmp_path / "page.html"
    not_gguf.write_text("<html><body>Sign in to download this file</body></html>\n" * 50)
    with FakeHub() as server:
        server.add(REPO, FILE, embedded_model_path(llama_paths))
        server.add(REPO, "README.md", not_gguf)
        server.add("test/not-gguf", "model-Q4_K_M.gguf", not_gguf)
        yield server
    assert not server.errors, server.errors


@pytest.fixture
def env(tmp_path: Path, hub: FakeHub) -> dict[str, str]:
    env = {k: v for k, v in clean_env(tmp_path).items() if not k.startswith("HF_")}
    return {**env, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}


def paths_of(env: dict[str, str]) -> Paths:
    return Paths(Path(env["XDG_CONFIG_HOME"]) / "chatapp", Path(env["XDG_DATA_HOME"]) / "chatapp",
                 Path(env["XDG_CACHE_HOME"]) / "chatapp")


def run(env: dict[str, str], *args: str, timeout: float = 180, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatapp", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, input=stdin)


def same_file(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as left, b.open("rb") as right:
        while block := left.read(1 << 22):
            if block != right.read(1 << 22):
                return False
    return True


@pytest.mark.timeout(900)
def test_pull_then_ask_answers_from_the_pulled_model_and_models_lists_it(env, hub, llama_paths):
    pulled = run(env, "models", "pull", REPO)
    assert pulled.returncode == 0, pulled.stderr
    assert f"pulled {REPO}:{FILE} as {NAME}" in pulled.stdout
    assert "253.1/253.1 MB" in pulled.stderr  # the Rich progress bar's size column, at the end
    source = hub.repos[REPO][FILE]
    [model] = load_index(paths_of(env))
    assert model.name == NAME and model.quantization == "Q4_K_M" and not model.has_chat_template
    assert same_file(Path(model.path), source)

    listing = run(env, "models")
    assert listing.returncode == 0, listing.stderr
    [line] = [row for row in listing.stdout.splitlines() if row[2:].startswith(NAME)]
    assert line.startswith("*")  # the default provider now
    assert "pulled" in line and "241 MiB" in line and "32,768" in line and "Q4_K_M" in line
    rows = json.loads(run(env, "models", "ls", "--json").stdout)
    assert {r["name"]: r["size"] for r in rows if r["source"] == "pulled"} == {NAME: source.stat().st_size}

    # No key and no provider in the config; only a longer turn deadline, as 8 test runs share 2 cores here.
    paths = paths_of(env)
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[retry]\ninteractive_deadline = 600\n")
    answer = run(env, "ask", "hi", timeout=600)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()
    assert f"loading the local model {NAME}" in answer.stderr


def test_ctrl_c_leaves_a_partial_that_the_next_pull_resumes(env, hub):
    hub.stall_after(40_000_000)
    proc = subprocess.Popen([sys.executable, "-m", "chatapp", "models", "pull", REPO], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert hub.stalled.wait(120), "the download never started"
        time.sleep(0.5)  # the client has written what it received
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        hub.release()
    assert proc.returncode == 130, err
    assert "partial download is kept" in err and "Traceback" not in err
    folder = hub_dir(paths_of(env)) / REPO
    [partial] = list(folder.rglob(".*.part"))
    kept = partial.stat().st_size
    assert 0 < kept <= 40_000_000  # what had reached the disk (the library writes in 10 MB blocks)
    assert load_index(paths_of(env)) == []

    resumed = run(env, "models", "pull", REPO)
    assert resumed.returncode == 0, resumed.stderr
    assert hub.gets()[-1].range == f"bytes={kept}-"
    [model] = load_index(paths_of(env))
    assert same_file(Path(model.path), hub.repos[REPO][FILE])
    assert not list(folder.rglob(".*.part"))


def test_a_file_that_is_not_gguf_is_refused_and_removed(env, hub):
    result = run(env, "models", "pull", "test/not-gguf")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "chatapp: test/not-gguf:model-Q4_K_M.gguf is not a GGUF model file; it was removed")
    assert "Traceback" not in result.stderr
    assert not list(hub_dir(paths_of(env)).rglob("*.gguf"))
    assert load_index(paths_of(env)) == []


def test_unknown_repo_and_bad_reference_are_one_line(env, hub):
    missing = run(env, "models", "pull", "test/nothing-here")
    assert missing.returncode == 1
    assert missing.stderr.strip() .endswith("no such model repository on the Hub: test/nothing-here "
                                            "(or it is private: set HF_TOKEN)")
    bad = run(env, "models", "pull", "not a ref")
    assert bad.returncode == 1 and "not a model reference" in bad.stderr and "Traceback" not in bad.stderr


def test_rm_asks_unless_yes_and_save_writes_a_provider_block(env, hub):
    assert run(env, "models", "pull", f"{REPO}:{FILE}", "--save").returncode == 0
    paths = paths_of(env)
    config = paths.config_file.read_text()
    assert f"[providers.{NAME}]" in config and 'kind = "llamacpp"' in config
    settings = load_settings(env, paths)
    spec = settings.providers[NAME]
    assert spec.kind == "llamacpp" and spec.model_path == load_index(paths)[0].path
    assert [n for n, s in settings.providers.items() if s.model_path == spec.model_path] == [NAME]  # no twin

    refused = run(env, "models", "rm", NAME, stdin="")
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert load_index(paths)
    kept = load_index(paths)[0].path
    removed = run(env, "models", "rm", NAME, "--yes")
    assert removed.returncode == 0, removed.stderr
    assert load_index(paths, present_only=False) == [] and not os.path.exists(kept)
    unknown = run(env, "models", "rm", NAME, "--yes")
    assert unknown.returncode == 2 and f"no pulled model named {NAME!r}" in unknown.stderr
