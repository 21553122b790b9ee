"""Anthropic Message Batches through the official SDK: create with custom ids, poll, stream the results.

A message batch has no metadata, so `find` cannot match the caller's tag: it takes the batch unknown to
chatapp with the same number of requests created nearest the moment the intent was recorded. Another
client creating a batch of the same size on the same account within those seconds could be taken for it;
its items would then come back without results and be dead-lettered as "expired", never paid twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import TYPE_CHECKING, Any

from chatapp.config import ProviderSpec, is_loopback
from chatapp.domain import ChatRequest, Usage
from chatapp.model_facts import lookup
from chatapp.providers.batch_api import CLOCK_SKEW, RemoteResult, RemoteStatus
from chatapp.providers.errors import classify

if TYPE_CHECKING:
    import anthropic

_DEFAULT_MAX_TOKENS = 8192
_ERROR_CLASSES = {"invalid_request_error": "invalid_request", "rate_limit_error": "rate_limited",
                  "overloaded_error": "transient", "api_error": "transient", "authentication_error": "auth",
                  "permission_error": "auth", "not_found_error": "not_found"}


class AnthropicBatch:
    def __init__(self, spec: ProviderSpec, api_key: str | None) -> None:
        self.name = spec.name
        self._spec = spec
        self._api_key = api_key
        self._client: anthropic.AsyncAnthropic | None = None

    def _get_client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            import anthropic

            base_url = self._spec.base_url
            self._client = anthropic.AsyncAnthropic(
                api_key=self._api_key, base_url=base_url, max_retries=0, timeout=self._spec.timeout,
                http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False) if is_loopback(base_url) else None,
            )
        return self._client

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        max_tokens = request.max_tokens or min(
            self._spec.max_output_tokens or lookup(request.model).max_output_tokens, _DEFAULT_MAX_TOKENS)
        params: dict[str, Any] = {
            "model": request.model, "max_tokens": max_tokens,
            "messages": [{"role": m.role.value, "content": m.content} for m in request.messages],
        }
        if request.system:
            params["system"] = request.system
        if request.temperature is not None:
            params["temperature"] = request.temperature
        return params

    async def submit(self, requests: Sequence[tuple[str, ChatRequest]], *, label: str, tag: str) -> str:
        payload = [{"custom_id": custom_id, "params": self._params(request)} for custom_id, request in requests]
        try:
            batch = await self._get_client().messages.batches.create(requests=payload)  # type: ignore[arg-type]
        except Exception as exc:
            raise classify(exc, self.name) from None
        return batch.id

    async def find(self, tag: str, *, count: int, since: float, exclude: Collection[str]) -> str | None:
        del tag  # see the module docstring: matched by size and time instead
        found: tuple[float, str] | None = None  # (distance from `since`, id)
        try:
            async for batch in self._get_client().messages.batches.list(limit=100):
                created = batch.created_at.timestamp()
                if created < since - CLOCK_SKEW:
                    break  # newest first: the rest are older still
                counts = batch.request_counts
                size = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
                distance = abs(created - since)
                if size == count and batch.id not in exclude and (found is None or distance < found[0]):
                    found = (distance, batch.id)
        except Exception as exc:
            raise classify(exc, self.name) from None
        return found[1] if found else None

    async def poll(self, remote_id: str) -> RemoteStatus:
        try:
            batch = await self._get_client().messages.batches.retrieve(remote_id)
        except Exception as exc:
            raise classify(exc, self.name) from None
        counts = batch.request_counts
        finished = counts.succeeded + counts.errored + counts.canceled + counts.expired
        return RemoteStatus(batch.processing_status == "ended", batch.processing_status, finished,
                            finished + counts.processing)

    async def results(self, remote_id: str) -> AsyncIterator[RemoteResult]:
        try:
            stream = await self._get_client().messages.batches.results(remote_id)
            async for entry in stream:
                yield _result(entry)
        except Exception as exc:
            raise classify(exc, self.name) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _result(entry: Any) -> RemoteResult:
    result = entry.result
    if result.type == "succeeded":
        message = result.message
        text = "".join(getattr(block, "text", "") for block in message.content)
        return RemoteResult(entry.custom_id, text=text,
                            usage=Usage(message.usage.input_tokens, message.usage.output_tokens))
    if result.type == "errored":
        error = getattr(result.error, "error", None)
        kind = getattr(error, "type", "api_error")
        return RemoteResult(entry.custom_id, error_class=_ERROR_CLASSES.get(kind, "transient"),
                            error=str(getattr(error, "message", kind)))
    return RemoteResult(entry.custom_id, error_class=result.type, error=f"the request was {result.type}")
