"""The helper process never outlives chatapp and nothing from llama.cpp reaches the terminal.

Each test runs chatapp in a fresh interpreter, as a user would, and watches the helper it starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from llama_fixtures import LlamaFixture, helper_gone, needs_local

pytestmark = needs_local

_SCRIPT = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    from chatapp.config import ProviderSpec
    from chatapp.domain import ChatMessage, ChatRequest, ProviderError, Role
    from chatapp.providers.llamacpp import LlamaCppProvider

    async def main(model, broken, how):
        if broken:  # a file llama.cpp itself rejects: its error log must not reach our stderr
            try:
                await LlamaCppProvider(ProviderSpec("bad", "llamacpp", "m", model_path=broken)).ready()
            except ProviderError:
                pass
        provider = LlamaCppProvider(ProviderSpec("local", "llamacpp", "m", model_path=model, context_window=2048))
        await provider.ready()
        print(provider.server.pid, flush=True)
        if how == "exit":  # a reply too, so an open HTTP client is left behind as well
            request = ChatRequest(model="m", messages=(ChatMessage(Role.USER, "Hi"),), max_tokens=4)
            async for _ in provider.stream(request):
                pass
        else:
            time.sleep(60)  # the test kills us with SIGKILL
        # "exit": leave without aclose(); interpreter exit must still stop the helper

    asyncio.run(main(*sys.argv[1:]))
""")


def _run(llama: LlamaFixture, tmp_path, how: str) -> subprocess.Popen[str]:
    broken = ""
    if how == "exit":
        broken = str(tmp_path / "cut.gguf")
        with llama.model_path.open("rb") as source:
            Path(broken).write_bytes(source.read(40_000_000))
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, str(llama.model_path), broken, how],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_interpreter_exit_stops_the_helper_and_nothing_is_printed(llama: LlamaFixture, tmp_path):
    proc = _run(llama, tmp_path, "exit")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err == ""  # not one line of llama.cpp's log, even for the failed load
    pid = int(out.strip())
    assert helper_gone(pid, within=5)


def test_a_killed_chatapp_does_not_leave_the_helper_running(llama: LlamaFixture, tmp_path):
    proc = _run(llama, tmp_path, "hang")
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert helper_gone(pid, within=5)  # its stdin closed with us
    proc.communicate()
