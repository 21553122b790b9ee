"""One reply, wire-neutral: the text cut into chunks, token counts and ids, and the SSE frame container."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from .script import RecordedRequest, Reply, Wire, content_text, split_tokens

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; `data` that is not a string is sent as JSON."""
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    if not isinstance(data, str) and _LONE_SURROGATE.search(payload):
        payload = json.dumps(data)  # a lone surrogate is valid JSON only as an escape: "\ud800"
    return f"{head}data: {payload}\n\n".encode()


@dataclass(slots=True)
class Frames:
    """A stream cut into the parts the fault options refer to."""

    preamble: list[bytes]
    deltas: list[bytes]
    finish: list[bytes]
    terminator: list[bytes]
    error: bytes


class Completion:
    """What a reply says, before a wire encoder shapes it."""

    def __init__(self, wire: Wire, request: RecordedRequest, reply: Reply, text: str, ident: str) -> None:
        self.wire, self.request, self.reply, self.text = wire, request, reply, text
        self.pieces = _pieces(text, reply.chunks)
        self.input_tokens = reply.input_tokens if reply.input_tokens is not None else _estimate_input(request)
        self.output_tokens = reply.output_tokens if reply.output_tokens is not None else len(split_tokens(text))
        self.model = request.model or "fake-model"
        self.id = f"msg_fake{ident}" if wire == "anthropic" else f"chatcmpl-fake{ident}"
        self.created = int(time.time())


def _pieces(text: str, chunks: int | None) -> list[str]:
    if chunks is None:
        return split_tokens(text)
    size = max(1, -(-len(text) // max(1, chunks)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _estimate_input(request: RecordedRequest) -> int:
    texts = [content_text(m.get("content")) for m in request.messages]
    if isinstance(request.body, dict):
        texts.append(content_text(request.body.get("system")))
    return max(1, sum(len(split_tokens(t)) for t in texts))
