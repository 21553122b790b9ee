"""Anthropic messages through the official async SDK's streaming helper.

The system prompt goes in the top-level `system` parameter. The SDK is imported lazily (~2 s).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from chatapp.config import is_loopback
from chatapp.domain import ChatRequest, ErrorKind, Finish, ProviderError, ProviderKind, StreamEvent, TextDelta, Usage
from chatapp.model_facts import lookup
from chatapp.providers.errors import classify
from chatapp.providers.sdk_adapter import SdkAdapter
from chatapp.providers.sse import drain, sse_events

if TYPE_CHECKING:
    import anthropic

_STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter"}
_DEFAULT_MAX_TOKENS = 8192
_INPUT_USAGE_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class AnthropicProvider(SdkAdapter["anthropic.AsyncAnthropic"]):
    kind = ProviderKind.ANTHROPIC

    def _get_client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            import anthropic

            self._client = anthropic.AsyncAnthropic(
                api_key=self._api_key,
                base_url=self._base_url,
                max_retries=0,  # one retry loop: chatapp.engine owns it
                timeout=self._spec.timeout,
                # HTTP(S)_PROXY would otherwise carry loopback traffic, and its key, to the proxy.
                http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False) if is_loopback(self._base_url) else None,
            )
        return self._client

    async def list_models(self, timeout: float) -> list[str]:
        """The model ids Anthropic's models list offers; raises a classified ProviderError."""
        try:
            client = self._get_client().with_options(timeout=timeout)
            return sorted([model.id async for model in client.models.list(limit=1000)])
        except Exception as exc:
            raise classify(exc, self.name) from exc

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        max_tokens = request.max_tokens or min(
            self._spec.max_output_tokens or lookup(request.model).max_output_tokens, _DEFAULT_MAX_TOKENS
        )
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": max_tokens,
            "messages": [{"role": m.role.value, "content": m.content} for m in request.messages],
        }
        if request.system:
            params["system"] = request.system
        if request.temperature is not None:
            params["temperature"] = request.temperature
        return params

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        client = self._get_client()
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        terminated = started = False
        params = {**self._params(request), "stream": True}
        try:
            async with client.messages.with_streaming_response.create(**params) as response:
                lines = response.iter_lines()
                async for name, data in sse_events(lines):
                    if name == "ping":
                        continue
                    started = True
                    event = json.loads(data)
                    kind = event.get("type", name)
                    if kind == "content_block_delta":
                        delta = event.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            yield TextDelta(delta["text"])
                    elif kind == "message_start":
                        usage = (event.get("message") or {}).get("usage") or {}
                        input_tokens = sum(usage.get(k) or 0 for k in _INPUT_USAGE_KEYS)
                        output_tokens = usage.get("output_tokens") or 0
                    elif kind == "message_delta":
                        stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
                        output_tokens = (event.get("usage") or {}).get("output_tokens") or output_tokens
                    elif kind == "message_stop":
                        terminated = True
                        await drain(lines)
                        break
                    elif kind == "error":
                        raise _in_band_error(event, self.name)
        except ProviderError:
            raise
        except json.JSONDecodeError as exc:
            raise ProviderError(ErrorKind.INTERRUPTED, "the server sent a malformed stream event",
                                provider=self.name) from exc
        except Exception as exc:
            raise classify(exc, self.name, mid_stream=started) from exc
        if not terminated:
            raise ProviderError(ErrorKind.INTERRUPTED, "the stream ended before the reply was finished",
                                provider=self.name)
        yield Usage(input_tokens, output_tokens)
        yield Finish(_STOP_REASONS.get(stop_reason or "", "other"), stop_reason)


def _in_band_error(event: dict[str, Any], provider: str) -> ProviderError:
    """An `error` event inside an HTTP 200 stream, e.g. `overloaded_error`."""
    error = event.get("error") or {}
    kind_name = error.get("type", "")
    message = error.get("message") or kind_name or "unknown error"
    if kind_name == "overloaded_error":
        return ProviderError(ErrorKind.TRANSIENT, f"the server is overloaded: {message}", provider=provider)
    if kind_name == "rate_limit_error":
        return ProviderError(ErrorKind.RATE_LIMITED, f"rate limited: {message}", provider=provider)
    return ProviderError(ErrorKind.INTERRUPTED, f"the stream reported an error: {message}", provider=provider)
