"""OpenAI Batch through the official SDK: a JSONL file of chat-completion requests, one batch per file.

The file is spooled to disk and uploaded from there, so a 50,000-request file never sits in memory;
results are streamed back line by line. Failed requests come in the batch's error file; requests in
neither file (an expired batch) are reported as "expired" by the caller.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Collection, Sequence
from typing import TYPE_CHECKING, Any, Final

from chatapp.config import ProviderSpec, is_loopback
from chatapp.domain import ChatRequest, Usage
from chatapp.providers.batch_api import CLOCK_SKEW, RemoteResult, RemoteStatus
from chatapp.providers.errors import classify

if TYPE_CHECKING:
    import openai

_ENDPOINT: Final = "/v1/chat/completions"
_ENDED = {"completed", "failed", "expired", "cancelled"}


class OpenAIBatch:
    def __init__(self, spec: ProviderSpec, api_key: str | None) -> None:
        self.name = spec.name
        self._spec = spec
        self._api_key = api_key
        self._client: openai.AsyncOpenAI | None = None
        self._files: dict[str, tuple[str | None, str | None]] = {}  # batch id -> (output, error) file ids

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            import openai

            base_url = self._spec.base_url
            self._client = openai.AsyncOpenAI(
                api_key=self._api_key or "not-needed", base_url=base_url, max_retries=0, timeout=self._spec.timeout,
                http_client=openai.DefaultAsyncHttpxClient(trust_env=False) if is_loopback(base_url) else None,
            )
        return self._client

    async def submit(self, requests: Sequence[tuple[str, ChatRequest]], *, label: str, tag: str) -> str:
        client = self._get_client()
        try:
            with tempfile.TemporaryFile() as spool:
                for custom_id, request in requests:
                    line = {"custom_id": custom_id, "method": "POST", "url": _ENDPOINT, "body": _body(request)}
                    spool.write(json.dumps(line, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
                spool.seek(0)
                uploaded = await client.files.create(file=(f"{label}.jsonl", spool), purpose="batch")
            batch = await client.batches.create(
                input_file_id=uploaded.id, endpoint=_ENDPOINT, completion_window="24h",
                metadata={"chatapp_job": label, "chatapp_tag": tag})
        except Exception as exc:
            raise classify(exc, self.name) from None
        return batch.id

    async def find(self, tag: str, *, count: int, since: float, exclude: Collection[str]) -> str | None:
        """The batch whose metadata carries `tag`; the list is newest first, so the scan ends at `since`."""
        try:
            async for batch in self._get_client().batches.list(limit=100):
                if batch.created_at < since - CLOCK_SKEW:
                    return None
                if (batch.metadata or {}).get("chatapp_tag") == tag and batch.id not in exclude:
                    return batch.id
        except Exception as exc:
            raise classify(exc, self.name) from None
        return None

    async def poll(self, remote_id: str) -> RemoteStatus:
        try:
            batch = await self._get_client().batches.retrieve(remote_id)
        except Exception as exc:
            raise classify(exc, self.name) from None
        self._files[remote_id] = (batch.output_file_id, batch.error_file_id)
        counts = batch.request_counts
        finished = (counts.completed + counts.failed) if counts else 0
        return RemoteStatus(batch.status in _ENDED, batch.status, finished, counts.total if counts else 0)

    async def results(self, remote_id: str) -> AsyncIterator[RemoteResult]:
        if remote_id not in self._files:
            await self.poll(remote_id)
        for file_id in self._files[remote_id]:
            if not file_id:
                continue
            try:
                async with self._get_client().files.with_streaming_response.content(file_id) as response:
                    async for line in response.iter_lines():
                        if line.strip():
                            yield _result(json.loads(line))
            except Exception as exc:
                raise classify(exc, self.name) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _body(request: ChatRequest) -> dict[str, Any]:
    messages: list[dict[str, str]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend({"role": m.role.value, "content": m.content} for m in request.messages)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


def _result(line: dict[str, Any]) -> RemoteResult:
    custom_id = str(line.get("custom_id"))
    response = line.get("response") or {}
    body = response.get("body") or {}
    if line.get("error") or response.get("status_code") != 200:
        error = line.get("error") or body.get("error") or {}
        status = response.get("status_code")
        kind = _error_class(status, error.get("code") or error.get("type") or "")
        return RemoteResult(custom_id, error_class=kind, error=str(error.get("message") or f"HTTP {status}"))
    choices = body.get("choices") or [{}]
    text = (choices[0].get("message") or {}).get("content") or ""
    usage = body.get("usage") or {}
    return RemoteResult(custom_id, text=text,
                        usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)))


def _error_class(status: Any, code: str) -> str:
    if "context_length" in code:
        return "context_too_long"
    if status == 429:
        return "rate_limited"
    if isinstance(status, int) and 400 <= status < 500:
        return "invalid_request"
    return "transient"
