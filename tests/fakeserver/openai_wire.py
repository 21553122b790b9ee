"""The OpenAI chat-completions wire format: JSON body, SSE chunks, error and model-list bodies."""

from __future__ import annotations

from typing import Any

from .completion import Completion, Frames, sse

_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


def error_body(status: int, message: str, type_: str | None = None, code: str | None = None) -> Any:
    if type_ is None:
        type_ = "server_error" if status >= 500 else "requests" if status == 429 else "invalid_request_error"
    return {"error": {"message": message, "type": type_, "param": None, "code": code or _CODES.get(status)}}


def _usage(c: Completion) -> dict[str, int]:
    total = c.input_tokens + c.output_tokens
    return {"prompt_tokens": c.input_tokens, "completion_tokens": c.output_tokens, "total_tokens": total}


def json_body(c: Completion) -> dict[str, Any]:
    message = {"role": "assistant", "content": c.text, "refusal": None}
    return {
        "id": c.id, "object": "chat.completion", "created": c.created, "model": c.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": c.reply.finish_reason}],
        "usage": _usage(c), "system_fingerprint": "fp_fake",
    }  # fmt: skip


def frames(c: Completion) -> Frames:
    options = c.request.body.get("stream_options") or {}
    with_usage = bool(options.get("include_usage"))
    stop_reason = c.reply.finish_reason

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }  # fmt: skip
        if with_usage:
            data["usage"] = None
        return sse(data)

    finish = [chunk({}, stop_reason)] if stop_reason else []
    if with_usage:
        usage = {"id": c.id, "object": "chat.completion.chunk", "created": c.created,
                 "model": c.model, "system_fingerprint": "fp_fake", "choices": [],
                 "usage": _usage(c)}  # fmt: skip
        finish.append(sse(usage))
    message = f"The server is overloaded ({c.reply.error_type})."
    return Frames(
        preamble=[chunk({"role": "assistant", "content": "", "refusal": None})],
        deltas=[chunk({"content": piece}) for piece in c.pieces],
        finish=finish,
        terminator=[sse("[DONE]")],
        error=sse({"error": {"message": message, "type": c.reply.error_type, "param": None, "code": None}}),
    )


def models_body(models: list[str]) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]}


def missing_field(name: str) -> str:
    return f"Missing required parameter: '{name}'."
