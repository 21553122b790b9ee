"""Shared by the batch tests: inputs, a config with fast retries, running `chatapp batch` in a subprocess."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from envs import clean_env

from chatapp.config import Paths

FAST_RETRY = "[retry]\nbase_delay = 0.01\nmax_delay = 0.05\n"


def write_jsonl(path: Path, count: int, *, poison: set[int] = frozenset()) -> list[str]:
    """`count` items q0..q{count-1}; those in `poison` carry a prompt the server rejects. Returns the ids."""
    ids = [f"q{i}" for i in range(count)]
    with path.open("w") as handle:
        for i, ident in enumerate(ids):
            prompt = f"poison {ident}" if i in poison else f"say {ident}"
            handle.write(json.dumps({"id": ident, "prompt": prompt}) + "\n")
    return ids


def batch_env(tmp_path: Path, base_url: str, *, extra: str = "", kind: str = "openai") -> dict[str, str]:
    """XDG dirs under tmp_path and a config with one provider `p` at `base_url` and fast retries."""
    env = clean_env(tmp_path)
    paths = Paths(config_dir=tmp_path / "config" / "chatapp", data_dir=tmp_path / "data" / "chatapp",
                  cache_dir=tmp_path / "cache" / "chatapp")
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    model = "gpt-4o-mini" if kind == "openai" else "claude-sonnet-4-5"
    paths.config_file.write_text(
        f'default_provider = "p"\n{FAST_RETRY}\n[providers.p]\nkind = "{kind}"\nbase_url = "{base_url}"\n'
        f'api_key = "sk-batch-test-key"\nmodel = "{model}"\n{extra}\n'
    )
    return env


def chatapp(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatapp", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "chatapp", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def only_job(env: dict[str, str]) -> str:
    """The one job in the sidecar database (read directly: a `chatapp batch status` costs seconds here)."""
    database = Path(env["XDG_DATA_HOME"]) / "chatapp" / "batches.db"
    with sqlite3.connect(database) as conn:
        [(job_id,)] = conn.execute("SELECT id FROM jobs").fetchall()
    return str(job_id)


def wait_until(condition: Any, timeout: float = 300.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Billing:
    """The server's record of paid replies: the reply text callable runs once per successful answer."""

    def __init__(self) -> None:
        self.paid: list[tuple[str, float]] = []  # (prompt, time.monotonic())
        self._lock = threading.Lock()

    def reply(self, request: Any) -> str:
        with self._lock:
            self.paid.append((request.prompt, time.monotonic()))
        return f"echo {request.prompt}"

    def count(self) -> int:
        with self._lock:
            return len(self.paid)

    def times_by_prompt(self) -> dict[str, list[float]]:
        with self._lock:
            result: dict[str, list[float]] = {}
            for prompt, at in self.paid:
                result.setdefault(prompt, []).append(at)
            return result
