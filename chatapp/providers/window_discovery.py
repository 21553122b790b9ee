"""Ask an OpenAI-compatible server how large a model's context window is, where it says.

llama.cpp's server reports `n_ctx` at `/props`, vLLM `max_model_len` per model at `/v1/models`, Ollama the
model's `context_length` (and any `num_ctx` it runs with) at `/api/show`. None of the SDKs model these
endpoints, so they are asked with the HTTP client the SDKs bring, briefly; any failure means "not said".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from chatapp.config import is_loopback

_TIMEOUT = 2.0
_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


async def discover_context_window(base_url: str, model: str, api_key: str | None = None) -> int | None:
    """The server's own figure for `model`'s window, or None when it does not report one."""
    import httpx2

    root = base_url.rstrip("/")
    origin = root[: -len("/v1")] if root.endswith("/v1") else root
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx2.AsyncClient(timeout=_TIMEOUT, headers=headers, trust_env=not is_loopback(base_url)) as client:

        async def answer(ask: Callable[[Any, str, str, str], Awaitable[int | None]]) -> int | None:
            try:
                return await ask(client, origin, root, model)
            except (httpx2.HTTPError, ValueError, AttributeError):
                return None

        # Asked together, so a server that answers none of them costs one timeout, not three.
        found = await asyncio.gather(*(answer(ask) for ask in (_llamacpp_props, _vllm_models, _ollama_show)))
    return next((window for window in found if window), None)


async def _llamacpp_props(client: Any, origin: str, root: str, model: str) -> int | None:
    response = await client.get(f"{origin}/props")
    if response.status_code != 200:
        return None
    body = response.json()
    settings = body.get("default_generation_settings") if isinstance(body, dict) else None
    n_ctx = (settings or {}).get("n_ctx") if isinstance(settings, dict) else None
    return _positive(n_ctx if n_ctx is not None else body.get("n_ctx") if isinstance(body, dict) else None)


async def _vllm_models(client: Any, origin: str, root: str, model: str) -> int | None:
    response = await client.get(f"{root}/models")
    if response.status_code != 200:
        return None
    body = response.json()
    entries = body.get("data") if isinstance(body, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("id") == model:
            return _positive(entry.get("max_model_len"))
    return None


async def _ollama_show(client: Any, origin: str, root: str, model: str) -> int | None:
    response = await client.post(f"{origin}/api/show", json={"model": model})
    if response.status_code != 200:
        return None
    body = response.json()
    if not isinstance(body, dict):
        return None
    parameters = body.get("parameters")
    if isinstance(parameters, str) and (match := _NUM_CTX.search(parameters)):
        return _positive(int(match.group(1)))  # what Ollama really runs the model with
    info = body.get("model_info")
    if isinstance(info, dict):
        for key, value in info.items():
            if key.endswith(".context_length"):
                return _positive(value)
    return None


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
