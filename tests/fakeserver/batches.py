"""The providers' Batch APIs on the scripted server: OpenAI files + batches, Anthropic Message Batches.

A created batch stays in progress for `polls_before_done` status requests, then every request in it is
answered at once with the server's scripts (or its default), exactly as a live request would be: a
`Reply` becomes a result, an `Error` becomes that request's error. `processed` logs each answered
request's custom id, so a test can check nothing was billed twice.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from .script import RecordedRequest
    from .server import FakeServer


class BatchDesk:
    def __init__(self, fake: FakeServer) -> None:
        self._fake = fake
        self.polls_before_done = 1
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.processed: list[str] = []  # custom ids answered (billed), in order
        self.after_create: Callable[[str], None] | None = None
        self._requests: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._polls: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @staticmethod
    def handles(method: str, path: str) -> bool:
        return "/batches" in path or (path.endswith("/files") and method == "POST") or "/files/" in path

    def answer(self, request: RecordedRequest) -> tuple[int, Any]:
        """(status, JSON body or raw bytes) for one batch-API request."""
        with self._lock:
            path, method = request.path, request.method
            if method == "POST" and path.endswith("/files"):
                return self._upload(request)
            if method == "POST" and path.endswith("/v1/batches"):
                return self._created(*self._create_openai(request.body))
            if method == "POST" and path.endswith("/messages/batches"):
                return self._created(*self._create_anthropic(request.body))
            if method == "GET" and path.endswith("/v1/batches"):
                return self._list(request.query, openai=True)
            if method == "GET" and path.endswith("/messages/batches"):
                return self._list(request.query, openai=False)
            parts = path.rstrip("/").split("/")
            if method == "GET" and "/files/" in path and parts[-1] == "content":
                data = self.files.get(parts[-2])
                return (200, data) if data is not None else (404, {"error": {"message": "no such file"}})
            if method == "GET" and parts[-1] == "results":
                return self._anthropic_results(parts[-2])
            if method == "GET" and parts[-1] in self.batches:
                return 200, self._advance(parts[-1], request)
            return 404, {"error": {"message": f"unknown batch request {method} {path}"}}

    def _created(self, status: int, body: Any) -> tuple[int, Any]:
        if status == 200 and self.after_create is not None:
            self.after_create(body["id"])
        return status, body

    def _list(self, query: str, *, openai: bool) -> tuple[int, Any]:
        params = {name: values[-1] for name, values in parse_qs(query).items()}
        limit = int(params.get("limit", 20))
        newest_first = [b for b in reversed(self.batches.values()) if (b.get("object") == "batch") == openai]
        cursor = params.get("after" if openai else "after_id")
        if cursor is not None:
            ids = [b["id"] for b in newest_first]
            newest_first = newest_first[ids.index(cursor) + 1:] if cursor in ids else []
        page = newest_first[:limit]
        body: dict[str, Any] = {"data": page, "has_more": len(newest_first) > limit,
                                "first_id": page[0]["id"] if page else None,
                                "last_id": page[-1]["id"] if page else None}
        if openai:
            body["object"] = "list"
        return 200, body

    # --- OpenAI -------------------------------------------------------------------------------

    def _upload(self, request: RecordedRequest) -> tuple[int, Any]:
        ctype = request.headers.get("content-type", "")
        raw = request.body if isinstance(request.body, str) else json.dumps(request.body)
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + raw.encode("utf-8", "surrogateescape"))
        data = b""
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                data = part.get_payload(decode=True) or b""
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = data
        return 200, {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                     "filename": "input.jsonl", "purpose": "batch", "status": "processed"}

    def _create_openai(self, body: dict[str, Any]) -> tuple[int, Any]:
        data = self.files.get(body.get("input_file_id", ""))
        if data is None:
            return 400, {"error": {"message": "no such input file", "type": "invalid_request_error"}}
        lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        batch_id = f"batch_{next(self._ids)}"
        self._requests[batch_id] = [(line["custom_id"], line["body"]) for line in lines]
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window", "24h"),
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
        }
        return 200, self.batches[batch_id]

    # --- Anthropic ----------------------------------------------------------------------------

    def _create_anthropic(self, body: dict[str, Any]) -> tuple[int, Any]:
        requests = body.get("requests") or []
        batch_id = f"msgbatch_{next(self._ids)}"
        self._requests[batch_id] = [(r["custom_id"], r["params"]) for r in requests]
        now = datetime.now(UTC).isoformat()
        self.batches[batch_id] = {
            "id": batch_id, "type": "message_batch", "processing_status": "in_progress",
            "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0, "canceled": 0,
                               "expired": 0},
            "created_at": now, "expires_at": now, "ended_at": None, "cancel_initiated_at": None,
            "archived_at": None, "results_url": None,
        }
        return 200, self.batches[batch_id]

    def _anthropic_results(self, batch_id: str) -> tuple[int, Any]:
        data = self.files.get(f"results-{batch_id}")
        return (200, data) if data is not None else (404, {"type": "error", "error": {"type": "not_found_error",
                                                                                       "message": "not ended"}})

    # --- processing ---------------------------------------------------------------------------

    def _advance(self, batch_id: str, request: RecordedRequest) -> dict[str, Any]:
        batch = self.batches[batch_id]
        self._polls[batch_id] = self._polls.get(batch_id, 0) + 1
        done = batch.get("status") == "completed" or batch.get("processing_status") == "ended"
        if not done and self._polls[batch_id] > self.polls_before_done:
            self._process(batch_id, batch, request)
        elif not done and "status" in batch:
            batch["status"] = "in_progress"
        return batch

    def _process(self, batch_id: str, batch: dict[str, Any], request: RecordedRequest) -> None:
        openai = batch.get("object") == "batch"
        good: list[bytes] = []
        bad: list[bytes] = []
        for custom_id, body in self._requests.pop(batch_id):
            line, ok = self._run_one(custom_id, body, openai)
            (good if ok or not openai else bad).append(json.dumps(line).encode() + b"\n")
            if ok:
                self.processed.append(custom_id)
        if openai:
            for kind, lines in (("output_file_id", good), ("error_file_id", bad)):
                if lines:
                    file_id = f"file-{next(self._ids)}"
                    self.files[file_id] = b"".join(lines)
                    batch[kind] = file_id
            batch["status"] = "completed"
            batch["request_counts"] = {"total": len(good) + len(bad), "completed": len(good), "failed": len(bad)}
        else:
            succeeded = sum(1 for line in good if b'"succeeded"' in line)
            self.files[f"results-{batch_id}"] = b"".join(good)
            batch["processing_status"] = "ended"
            batch["ended_at"] = datetime.now(UTC).isoformat()
            batch["request_counts"] = {"processing": 0, "succeeded": succeeded, "errored": len(good) - succeeded,
                                       "canceled": 0, "expired": 0}
            host = request.headers.get("host", "127.0.0.1")
            batch["results_url"] = f"http://{host}/v1/messages/batches/{batch_id}/results"

    def _run_one(self, custom_id: str, body: dict[str, Any], openai: bool) -> tuple[dict[str, Any], bool]:
        from .script import Error, RecordedRequest, split_tokens

        wire = "openai" if openai else "anthropic"
        path = "/v1/chat/completions" if openai else "/v1/messages"
        fake_request = RecordedRequest("POST", path, "", {}, body, time.monotonic(), wire)
        script = self._fake._next_script(fake_request)
        if isinstance(script, Error):
            message = script.message or f"HTTP {script.status}"
            if openai:
                error = {"message": message, "type": script.type or "invalid_request_error", "code": script.code}
                return {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "error": None,
                        "response": {"status_code": script.status, "body": {"error": error}}}, False
            kind = script.type or ("invalid_request_error" if script.status < 500 else "api_error")
            return {"custom_id": custom_id, "result": {"type": "errored", "error": {
                "type": "error", "error": {"type": kind, "message": message}}}}, False
        text_source = getattr(script, "text", "")
        text = text_source(fake_request) if callable(text_source) else str(text_source)
        output = len(split_tokens(text))
        prompt = sum(len(split_tokens(str(m.get("content", "")))) for m in body.get("messages", []))
        model = body.get("model", "")
        if openai:
            return {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "error": None, "response": {
                "status_code": 200, "request_id": f"req_{custom_id}", "body": {
                    "id": f"chatcmpl-{custom_id}", "object": "chat.completion", "created": int(time.time()),
                    "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": output,
                              "total_tokens": prompt + output}}}}, True
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": {
            "id": f"msg_{custom_id}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": output}}}}, True
