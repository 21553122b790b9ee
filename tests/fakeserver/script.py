"""The script language: what a test queues (`Reply`, `Error`, `Disconnect`) and what the server records."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Wire = Literal["openai", "anthropic"]
DEFAULT_TEXT = "Hello from the fake server."
DEFAULT_MODELS = ("gpt-4o-mini", "claude-sonnet-4-5")
_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]+|\s+")


def split_tokens(text: str) -> list[str]:
    """Token-ish pieces (a word or a run of punctuation with its leading space) that join back to `text`."""
    return _TOKEN.findall(text)


def long_markdown(approx_tokens: int = 10_000) -> str:
    """A long Markdown reply (headings, prose, lists, code, tables) for rendering benchmarks."""
    sections: list[str] = []
    tokens = 0
    for n in itertools.count(1):
        section = (
            f"## Section {n}\n\nThis paragraph explains **point {n}** with `inline code`, a "
            f"[link](https://example.com/{n}) and *emphasis*, so the renderer has real work to do.\n\n"
            f"- first item of list {n}\n- second item, a little longer than the first\n- third item\n\n"
            f"```python\ndef section_{n}(x: int) -> int:\n    return x * {n}\n```\n\n"
            f"| key | value |\n| --- | --- |\n| n | {n} |\n| square | {n * n} |\n\n"
        )
        sections.append(section)
        tokens += len(split_tokens(section))
        if tokens >= approx_tokens:
            return "".join(sections)
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server read it."""

    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lowercase names
    body: Any  # parsed JSON, or the raw text if it was not JSON, or None
    received: float  # time.monotonic() when the request was read
    wire: Wire | None  # which API the path belongs to

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or []) if isinstance(self.body, dict) else []

    @property
    def prompt(self) -> str:
        """The text of the last user message ('' if there is none)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return content_text(message.get("content"))
        return ""


def content_text(content: Any) -> str:
    """The text of a message's `content`, a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


TextSource = str | Callable[[RecordedRequest], str]


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful completion, streamed or JSON as the request asked.

    A "chunk" is one text delta event; the role/`message_start` preamble comes before chunk 0. Faults:
    `cut_after=N` sends N chunks then closes the socket without the final zero-length HTTP chunk;
    `stall_after=N` goes silent for `stall_seconds` after N chunks, then carries on; `accept_then_silent`
    sends the headers and then nothing for `stall_seconds`, then closes; `no_terminator` omits `[DONE]` /
    `message_stop` but ends the body cleanly (add `finish_reason=None` to omit the finish chunk /
    `message_delta` too); `error_after=N` sends an in-band stream error after N chunks (Anthropic
    `event: error`, OpenAI `data: {"error": ...}`) on HTTP 200. For JSON replies `accept_then_silent`,
    `stall_after` (any N: a stall before the body) and `cut_after` (any N: half the body, then a close)
    apply to the whole body; `delay`, `no_terminator` and `error_after` are for streams only.
    """

    text: TextSource = DEFAULT_TEXT  # or a callable of the request, e.g. to echo `request.prompt`
    chunks: int | None = None  # None: one token-ish piece per event; N: N roughly equal pieces
    delay: float = 0.0  # seconds between chunks
    latency: float = 0.0  # seconds before the response starts
    input_tokens: int | None = None  # default: estimated from the request
    output_tokens: int | None = None  # default: token-ish pieces in the text
    finish_reason: str | None = "stop"  # OpenAI's words; stop/length/content_filter are mapped for Anthropic
    cut_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 60.0
    accept_then_silent: bool = False
    no_terminator: bool = False
    error_after: int | None = None
    error_type: str = "overloaded_error"
    headers: Mapping[str, str] = field(default_factory=dict)
    raw_after: tuple[int, bytes] | None = None  # (N, bytes): these bytes as one HTTP chunk after N deltas


@dataclass(frozen=True, slots=True)
class Error:
    """An HTTP error in the wire format's real shape; `type` and `message` default from the status."""

    status: int
    message: str | None = None
    type: str | None = None
    code: str | None = None  # OpenAI's error.code, e.g. "context_length_exceeded"
    retry_after: float | None = None  # sets the `retry-after` header (seconds)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # replaces the generated body: a str is sent as is, anything else as JSON
    latency: float = 0.0


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Read the request, then close the connection without answering."""

    latency: float = 0.0


Script = Reply | Error | Disconnect


@dataclass(slots=True)
class Queued:
    """A script waiting in the server's queue for `remaining` more requests."""

    script: Script
    remaining: int
    match: str | Callable[[RecordedRequest], bool] | None

    def applies_to(self, request: RecordedRequest) -> bool:
        if callable(self.match):
            return bool(self.match(request))
        return self.match is None or self.match == request.wire or request.path.startswith(self.match)
