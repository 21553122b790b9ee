"""The Anthropic messages wire format: JSON body, SSE events, error and model-list bodies."""

from __future__ import annotations

from typing import Any

from .completion import Completion, Frames, sse

_STOP = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 504: "timeout_error",
    529: "overloaded_error",
}  # fmt: skip


def error_body(status: int, message: str, type_: str | None = None) -> Any:
    type_ = type_ or _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": type_, "message": message}}


def _stop_reason(c: Completion) -> str | None:
    """The reply's finish reason (OpenAI's words) in Anthropic's words."""
    reason = c.reply.finish_reason
    return _STOP.get(reason, reason) if reason else reason


def json_body(c: Completion) -> dict[str, Any]:
    return {
        "id": c.id, "type": "message", "role": "assistant", "model": c.model,
        "content": [{"type": "text", "text": c.text}],
        "stop_reason": _stop_reason(c), "stop_sequence": None,
        "usage": {"input_tokens": c.input_tokens, "output_tokens": c.output_tokens},
    }  # fmt: skip


def frames(c: Completion) -> Frames:
    start = {
        "type": "message_start",
        "message": {
            "id": c.id, "type": "message", "role": "assistant", "model": c.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": c.input_tokens, "output_tokens": 1},
        },
    }  # fmt: skip
    finish = [sse({"type": "content_block_stop", "index": 0}, "content_block_stop")]
    if stop_reason := _stop_reason(c):
        delta = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                 "usage": {"output_tokens": c.output_tokens}}  # fmt: skip
        finish.append(sse(delta, "message_delta"))
    error = error_body(529, "Overloaded", c.reply.error_type)
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    return Frames(
        preamble=[sse(start, "message_start"), sse(block, "content_block_start"), sse({"type": "ping"}, "ping")],
        deltas=[sse(_text_delta(piece), "content_block_delta") for piece in c.pieces],
        finish=finish,
        terminator=[sse({"type": "message_stop"}, "message_stop")],
        error=sse(error, "error"),
    )


def _text_delta(piece: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}


def models_body(models: list[str]) -> dict[str, Any]:
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in models]
    first, last = (models[0], models[-1]) if models else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}


def missing_field(name: str) -> str:
    return f"{name}: Field required"
