"""Streaming render cost through the whole app: server → SDK → engine → service → TUI, headless.

    python tests/benchmarks/stream_render.py [--sizes 500 2000 10000] [--runs 3]

The scripted local server sends a Markdown reply (headings, prose, lists, fenced code, tables) one
token-ish SSE event at a time, as fast as it can. The clock runs from Enter until the reply is
fully rendered on the (headless) screen. Prints the median seconds and microseconds per token for
each size and the per-token ratio of the largest size to the smallest (target: at most 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for the scripted server

from fakeserver import long_markdown, split_tokens

_SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from fakeserver import FakeServer, Reply, long_markdown
server = FakeServer()
server.start()
print(server.openai_base_url, flush=True)
for line in sys.stdin:  # one size per line: the next reply to send
    server.script(Reply(long_markdown(int(line))))
"""


class ServerProcess:
    """The scripted server in its own process, as a real server would be (no GIL shared with the app)."""

    def __init__(self) -> None:
        tests = str(Path(__file__).resolve().parents[1])
        self._proc = subprocess.Popen([sys.executable, "-c", _SERVER.format(tests=tests)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self.openai_base_url = self._proc.stdout.readline().strip()

    def script(self, tokens: int) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{tokens}\n")
        self._proc.stdin.flush()
        time.sleep(0.05)

    def close(self) -> None:
        self._proc.kill()
        self._proc.wait()


FRAMES = [0]
RENDERS: list[int] = []


def count_frames() -> None:
    """Count the widget's renders of the live reply: how smoothly it was painted while streaming."""
    from chatapp.tui.widgets.message_view import MessageView

    original = MessageView._flush

    def counted(self: MessageView) -> None:
        FRAMES[0] += 1
        original(self)

    MessageView._flush = counted  # type: ignore[method-assign]


async def one_run(tokens: int, server: ServerProcess) -> tuple[float, int, int]:
    from chatapp.config import load_settings
    from chatapp.service import ChatService
    from chatapp.tui.app import ChatApp
    from chatapp.tui.widgets.message import AssistantMessage
    from chatapp.tui.widgets.prompt import PromptInput

    text = long_markdown(tokens)
    pieces = len(split_tokens(text))
    server.script(tokens)
    service = ChatService.open(load_settings())
    app = ChatApp(service, service.target_for(None))
    async with app.run_test(size=(120, 40)) as pilot:
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("go")
        started = time.perf_counter()
        FRAMES[0] = 0
        await pilot.press("enter")
        while not app.screen.query(AssistantMessage):
            await asyncio.sleep(0.001)
        view = app.screen.query_one(AssistantMessage)
        await view.wait_finished()
        await pilot.pause()
        elapsed = time.perf_counter() - started
        assert view.text == text, "the rendered reply differs from what was sent"
        RENDERS.append(view.block_renders)
    return elapsed, pieces, FRAMES[0]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 10_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = ServerProcess()
    with tempfile.TemporaryDirectory() as home:
        for name in ("CONFIG", "DATA", "CACHE"):
            os.environ[f"XDG_{name}_HOME"] = f"{home}/{name.lower()}"
        os.environ["OPENAI_API_KEY"] = "sk-benchmark"
        os.environ["OPENAI_BASE_URL"] = server.openai_base_url
        count_frames()
        await one_run(200, server)  # warm-up: imports, encodings
        per_token: dict[int, float] = {}
        for size in args.sizes:
            RENDERS.clear()
            results = [await one_run(size, server) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in results)
            pieces = results[0][1]
            frames = statistics.median(r[2] for r in results)
            per_token[size] = seconds / pieces * 1e6
            print(f"{size:>6} tokens ({pieces} SSE events): {seconds:.2f} s, {per_token[size]:.0f} µs/token, "
                  f"{frames:.0f} frames painted while streaming ({frames / seconds:.0f}/s), "
                  f"{statistics.median(RENDERS):.0f} Rich block renders (medians of {args.runs})")
        low, high = min(args.sizes), max(args.sizes)
        print(f"per-token ratio {high}/{low}: {per_token[high] / per_token[low]:.2f} (target ≤ 1.5)")
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
