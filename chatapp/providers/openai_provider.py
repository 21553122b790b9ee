"""OpenAI chat completions through the official async SDK; also any OpenAI-compatible server.

The SDK is imported when the first client is built, never at chatapp import (it costs ~0.8 s).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from chatapp.config import ProviderSpec, is_loopback
from chatapp.domain import ChatRequest, ErrorKind, Finish, ProviderError, ProviderKind, StreamEvent, TextDelta, Usage
from chatapp.providers.errors import classify
from chatapp.providers.sdk_adapter import SdkAdapter
from chatapp.providers.sse import drain, sse_batches

if TYPE_CHECKING:
    import openai

_FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter"}
# Local servers commonly need no key, but the SDK insists on one.
_PLACEHOLDER_KEY = "not-needed"


class OpenAIProvider(SdkAdapter["openai.AsyncOpenAI"]):
    """Streams chat completions; `include_usage` asked for, tolerated when a server ignores it."""

    kind = ProviderKind.OPENAI

    def __init__(self, spec: ProviderSpec, api_key: str | None, base_url: str | None = None, *,
                 extra_body: dict[str, Any] | None = None) -> None:
        super().__init__(spec, api_key, base_url)
        self._usage_supported = True
        self._extra_body = extra_body or {}  # server-specific fields, e.g. llama.cpp's sampling options

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self._api_key or _PLACEHOLDER_KEY,
                base_url=self._base_url,
                max_retries=0,  # one retry loop: chatapp.engine owns it
                timeout=self._spec.timeout,
                # HTTP(S)_PROXY would otherwise carry loopback traffic, and its key, to the proxy.
                http_client=openai.DefaultAsyncHttpxClient(trust_env=False) if is_loopback(self._base_url) else None,
            )
        return self._client

    async def list_models(self, timeout: float) -> list[str]:
        """The model ids the server lists (`GET /models`); raises a classified ProviderError."""
        try:
            page = await self._get_client().with_options(timeout=timeout).models.list()
            return sorted(model.id for model in page.data)
        except Exception as exc:
            raise classify(exc, self.name) from exc

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend({"role": m.role.value, "content": m.content} for m in request.messages)
        params: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        if self._usage_supported:
            params["stream_options"] = {"include_usage": True}
        if request.max_tokens is not None:
            params["max_completion_tokens" if self._base_url is None else "max_tokens"] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if self._extra_body:
            params["extra_body"] = self._extra_body
        return params

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        client = self._get_client()
        finish: str | None = None
        detail: str | None = None
        started = False
        try:
            async with self._open(client, request) as response:
                chunks = response.iter_text()
                done = False
                async for batch in sse_batches(chunks):
                    texts: list[str] = []  # the batch's text goes on as one delta
                    for _event, data in batch:
                        if data == "[DONE]":
                            done = True
                            break
                        started = True
                        try:
                            chunk = json.loads(data)
                        except json.JSONDecodeError:
                            if texts:  # what came before the bad chunk is the reply's
                                yield TextDelta("".join(texts))
                            raise
                        if "error" in chunk:  # some compatible servers report failures in-band
                            if texts:
                                yield TextDelta("".join(texts))
                            raise ProviderError(ErrorKind.INTERRUPTED, _in_band_message(chunk), provider=self.name)
                        for choice in chunk.get("choices") or ():
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                texts.append(text)
                            if choice.get("finish_reason"):
                                detail = str(choice["finish_reason"])
                                finish = _FINISH_REASONS.get(detail, "other")
                        usage = chunk.get("usage")
                        if usage and usage.get("prompt_tokens") is not None:
                            if texts:
                                yield TextDelta("".join(texts))
                                texts = []
                            yield Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
                    if texts:
                        yield TextDelta("".join(texts))
                    if done:
                        await drain(chunks)
                        break
        except ProviderError:
            raise
        except json.JSONDecodeError as exc:
            raise ProviderError(ErrorKind.INTERRUPTED, "the server sent a malformed stream chunk",
                                provider=self.name) from exc
        except Exception as exc:
            raise classify(exc, self.name, mid_stream=started) from exc
        if finish is None:
            raise ProviderError(ErrorKind.INTERRUPTED, "the stream ended before the reply was finished",
                                provider=self.name)
        yield Finish(finish, detail)

    @asynccontextmanager
    async def _open(self, client: openai.AsyncOpenAI, request: ChatRequest) -> AsyncIterator[Any]:
        """The raw streaming response; HTTP errors arrive as the SDK's typed exceptions."""
        params = self._params(request)
        create = client.chat.completions.with_streaming_response.create
        manager = create(**params)
        try:
            response = await manager.__aenter__()
        except Exception as exc:
            # Some compatible servers reject stream_options; ask once more without it.
            if not (self._usage_supported and getattr(exc, "status_code", None) in (400, 422)
                    and "stream_options" in str(getattr(exc, "body", "") or exc)):
                raise
            self._usage_supported = False
            params.pop("stream_options", None)
            manager = create(**params)
            response = await manager.__aenter__()
        try:
            yield response
        finally:
            await manager.__aexit__(None, None, None)


def _in_band_message(chunk: Mapping[str, Any]) -> str:
    error = chunk.get("error")
    message = error.get("message") if isinstance(error, Mapping) else error
    return f"the stream reported an error: {message}"
