"""Fixtures every test may use: the scripted LLM server and an isolated environment.

Keep this file generic; fixtures for one area belong in that area's test files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeserver import FakeServer  # tests/ is on sys.path (pytest's rootdir conftest, no __init__.py)

from chatapp.config import Paths


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """A scripted OpenAI + Anthropic server on 127.0.0.1; fails the test if answering raised."""
    with FakeServer() as server:
        yield server
    assert not server.errors, f"the fake server failed while answering: {server.errors!r}"


@pytest.fixture
def openai_base_url(fake_server: FakeServer) -> str:
    return fake_server.openai_base_url


@pytest.fixture
def anthropic_base_url(fake_server: FakeServer) -> str:
    return fake_server.anthropic_base_url


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """XDG config/data/cache/state dirs and HOME under tmp_path; no OPENAI_*, ANTHROPIC_*, CHATAPP_* or tiktoken
    cache variables (so what chatapp sets for tiktoken is undone after each test).

    Autouse, so no test can read a real config or write a real home; a test asks for it by name to get the
    chatapp paths as they now resolve (config file, database, ...).
    """
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_", "CHATAPP_", "TIKTOKEN_", "DATA_GYM_")):
            monkeypatch.delenv(name)
    for kind in ("config", "data", "cache", "state"):
        monkeypatch.setenv(f"XDG_{kind.upper()}_HOME", str(tmp_path / kind))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return Paths.from_platform()
