"""A scripted local LLM server that speaks the real OpenAI and Anthropic wire formats.

Why hand-written: no library serves both OpenAI chat completions and Anthropic messages, as JSON and as
SSE, with scripted faults (status codes with Retry-After, mid-stream cuts, stalls, missing terminators,
in-band stream errors). Transport mocks (respx and the like) bypass the socket, chunked framing and the
SDKs' own HTTP stack, which is exactly where broken streams and timeouts live. So this server runs on
127.0.0.1 in its own thread, over real sockets, and the official SDKs talk to it as they would to the
real APIs; a CLI run in a subprocess can use it too.

    with FakeServer() as server:
        server.script(Reply("Hi there", chunks=3), Error(429, retry_after=1))
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)

Scripts are consumed first in, first out, one per completion request (`POST .../chat/completions` or
`POST .../messages`); with none queued the server answers with `server.default`. Paths are matched on
their ending, so several "providers" can share one server under different prefixes (`{url}/a/v1`).
Every request is logged (`server.requests`); `wait_for_requests` blocks, so from async code call it via
`asyncio.to_thread`. For rendering benchmarks, `FakeServer(default=Reply(long_markdown(10_000)))` streams
a long Markdown reply as fast as the socket takes it, one token-ish piece per SSE event.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, Literal

Wire = Literal["openai", "anthropic"]
DEFAULT_TEXT = "Hello from the fake server."
DEFAULT_MODELS = ("gpt-4o-mini", "claude-sonnet-4-5")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]+|\s+")


def split_tokens(text: str) -> list[str]:
    """Token-ish pieces (a word or a run of punctuation with its leading space) that join back to `text`."""
    return _TOKEN.findall(text)


def refused_base_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens, so connecting fails with 'connection refused'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


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


# --- What the server received -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
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
                return _content_text(message.get("content"))
        return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


# --- Scripts ----------------------------------------------------------------------------

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
class _Queued:
    script: Script
    remaining: int
    match: str | Callable[[RecordedRequest], bool] | None

    def applies_to(self, request: RecordedRequest) -> bool:
        if callable(self.match):
            return bool(self.match(request))
        return self.match is None or self.match == request.wire or request.path.startswith(self.match)


# --- The server -------------------------------------------------------------------------


class FakeServer:
    """The scripted server; see the module docstring. Thread-safe; use as a context manager."""

    def __init__(
        self, *, api_key: str | None = None, default: Script | None = None, models: Sequence[str] = DEFAULT_MODELS
    ) -> None:
        self.api_key = api_key  # when set, requests without it get a 401 in the real shape
        self.default: Script = default or Reply()
        self.models = list(models)
        self.errors: list[BaseException] = []  # exceptions raised while answering (bugs, failing callables)
        self._requests: list[RecordedRequest] = []
        self._queue: list[_Queued] = []
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="fakeserver", daemon=True)
        self._ids = itertools.count(1)
        from fakeserver_batches import BatchDesk

        self.batch_api = BatchDesk(self)  # OpenAI Batch and Anthropic Message Batches

    # lifecycle
    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and drop every open connection, stalled ones included; returns promptly."""
        self._closing.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown(conn)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # addresses
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # scripting
    def script(self, *scripts: Script, repeat: int = 1,
               match: str | Callable[[RecordedRequest], bool] | None = None) -> None:
        """Queue scripts, each for `repeat` consecutive requests; `match` ("openai", "anthropic", a path
        prefix, or a predicate of the request) limits them to those requests, others skip past them."""
        with self._lock:
            self._queue.extend(_Queued(s, repeat, match) for s in scripts)

    @property
    def pending(self) -> int:
        """Scripted responses not yet consumed."""
        with self._lock:
            return sum(q.remaining for q in self._queue)

    def _next_script(self, request: RecordedRequest) -> Script:
        with self._lock:
            for queued in self._queue:
                if queued.applies_to(request):
                    queued.remaining -= 1
                    if queued.remaining <= 0:
                        self._queue.remove(queued)
                    return queued.script
        return self.default

    # request log
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests have arrived; AssertionError on timeout."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self._requests)} in {timeout}s")
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _new_id(self) -> str:
        return f"{next(self._ids):06d}"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name, which can hang on a machine without DNS.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):  # a client going away is normal here
            super().handle_error(request, client_address)


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


# --- Wire formats -----------------------------------------------------------------------


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    if not isinstance(data, str) and _LONE_SURROGATE.search(payload):
        payload = json.dumps(data)  # a lone surrogate is valid JSON only as an escape: "\ud800"
    return f"{head}data: {payload}\n\n".encode()


_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 504: "timeout_error",
    529: "overloaded_error",
}  # fmt: skip
_OPENAI_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
_PHRASES = {429: "Rate limit exceeded", 529: "Overloaded"}


def error_body(wire: Wire, status: int, message: str, type_: str | None = None, code: str | None = None) -> Any:
    """The body the real API sends for an error with this status."""
    if wire == "anthropic":
        type_ = type_ or _ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": type_, "message": message}}
    if type_ is None:
        type_ = "server_error" if status >= 500 else "requests" if status == 429 else "invalid_request_error"
    return {"error": {"message": message, "type": type_, "param": None, "code": code or _OPENAI_CODES.get(status)}}


@dataclass(slots=True)
class _Frames:
    """A stream cut into the parts the fault options refer to."""

    preamble: list[bytes]
    deltas: list[bytes]
    finish: list[bytes]
    terminator: list[bytes]
    error: bytes


class _Completion:
    """One reply rendered in one wire format: as a JSON body or as SSE frames."""

    def __init__(self, wire: Wire, request: RecordedRequest, reply: Reply, text: str, ident: str) -> None:
        self.wire, self.request, self.reply, self.text = wire, request, reply, text
        self.pieces = _pieces(text, reply.chunks)
        self.input_tokens = reply.input_tokens if reply.input_tokens is not None else _estimate_input(request)
        self.output_tokens = reply.output_tokens if reply.output_tokens is not None else len(split_tokens(text))
        self.model = request.model or "fake-model"
        self.id = f"msg_fake{ident}" if wire == "anthropic" else f"chatcmpl-fake{ident}"
        self.created = int(time.time())

    @property
    def stop_reason(self) -> str | None:
        reason = self.reply.finish_reason
        return _ANTHROPIC_STOP.get(reason, reason) if reason and self.wire == "anthropic" else reason

    def json_body(self) -> dict[str, Any]:
        if self.wire == "anthropic":
            return {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [{"type": "text", "text": self.text}],
                "stop_reason": self.stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            }  # fmt: skip
        message = {"role": "assistant", "content": self.text, "refusal": None}
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.stop_reason}],
            "usage": self._openai_usage(), "system_fingerprint": "fp_fake",
        }  # fmt: skip

    def frames(self) -> _Frames:
        return self._anthropic_frames() if self.wire == "anthropic" else self._openai_frames()

    def _openai_usage(self) -> dict[str, int]:
        total = self.input_tokens + self.output_tokens
        return {"prompt_tokens": self.input_tokens, "completion_tokens": self.output_tokens, "total_tokens": total}

    def _openai_frames(self) -> _Frames:
        options = self.request.body.get("stream_options") or {}
        with_usage = bool(options.get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data: dict[str, Any] = {
                "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }  # fmt: skip
            if with_usage:
                data["usage"] = None
            return _sse(data)

        finish = [chunk({}, self.stop_reason)] if self.stop_reason else []
        if with_usage:
            usage = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                     "model": self.model, "system_fingerprint": "fp_fake", "choices": [],
                     "usage": self._openai_usage()}  # fmt: skip
            finish.append(_sse(usage))
        message = f"The server is overloaded ({self.reply.error_type})."
        return _Frames(
            preamble=[chunk({"role": "assistant", "content": "", "refusal": None})],
            deltas=[chunk({"content": piece}) for piece in self.pieces],
            finish=finish,
            terminator=[_sse("[DONE]")],
            error=_sse({"error": {"message": message, "type": self.reply.error_type, "param": None, "code": None}}),
        )

    def _anthropic_frames(self) -> _Frames:
        start = {
            "type": "message_start",
            "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": 1},
            },
        }  # fmt: skip
        finish = [_sse({"type": "content_block_stop", "index": 0}, "content_block_stop")]
        if self.stop_reason:
            delta = {"type": "message_delta", "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                     "usage": {"output_tokens": self.output_tokens}}  # fmt: skip
            finish.append(_sse(delta, "message_delta"))
        error = error_body("anthropic", 529, "Overloaded", self.reply.error_type)
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        return _Frames(
            preamble=[_sse(start, "message_start"), _sse(block, "content_block_start"), _sse({"type": "ping"}, "ping")],
            deltas=[_sse(_text_delta(piece), "content_block_delta") for piece in self.pieces],
            finish=finish,
            terminator=[_sse({"type": "message_stop"}, "message_stop")],
            error=_sse(error, "error"),
        )


def _text_delta(piece: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}


def _pieces(text: str, chunks: int | None) -> list[str]:
    if chunks is None:
        return split_tokens(text)
    size = max(1, -(-len(text) // max(1, chunks)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _estimate_input(request: RecordedRequest) -> int:
    texts = [_content_text(m.get("content")) for m in request.messages]
    if isinstance(request.body, dict):
        texts.append(_content_text(request.body.get("system")))
    return max(1, sum(len(split_tokens(t)) for t in texts))


# --- The request handler ----------------------------------------------------------------


class _Aborted(Exception):
    """The connection was dropped on purpose (a cut, or the server is closing)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # dispatch
    @property
    def fake(self) -> FakeServer:
        return self.server.fake

    def _handle(self) -> None:
        request = self._read_request()
        self.fake._record(request)
        self._wire: Wire = request.wire or ("anthropic" if "anthropic-version" in request.headers else "openai")
        try:
            self._answer(request)
        except _Aborted:
            self.close_connection = True
        except OSError:  # the client went away
            self.close_connection = True
        except Exception as exc:
            self.fake.errors.append(exc)
            traceback.print_exc()
            self.close_connection = True

    def _read_request(self) -> RecordedRequest:
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self.rfile.read(int(headers.get("content-length") or 0)).decode("utf-8", "replace")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        if path.endswith("/chat/completions"):
            wire: Wire | None = "openai"
        elif path.endswith("/messages"):
            wire = "anthropic"
        else:
            wire = None
        return RecordedRequest(self.command, path, query, headers, body, time.monotonic(), wire)

    def _answer(self, request: RecordedRequest) -> None:
        wire = self._wire
        if self.fake.batch_api.handles(self.command, request.path) and self._authorized(wire, request.headers):
            return self._send_json(*self.fake.batch_api.answer(request), {})
        is_completion = request.wire is not None and self.command == "POST"
        is_models = self.command == "GET" and request.path.endswith("/models")
        if not (is_completion or is_models):
            return self._send_error(wire, Error(404, f"Unknown request URL: {self.command} {request.path}"))
        if not self._authorized(wire, request.headers):
            message = "invalid x-api-key" if wire == "anthropic" else "Incorrect API key provided."
            return self._send_error(wire, Error(401, message))
        if is_models:
            return self._send_json(200, _models_body(wire, self.fake.models), {})
        if problem := _invalid(wire, request.body):
            return self._send_error(wire, Error(400, problem))

        script = self.fake._next_script(request)
        self._sleep(script.latency)
        if isinstance(script, Disconnect):
            raise _Aborted
        if isinstance(script, Error):
            return self._send_error(wire, script)
        text = script.text(request) if callable(script.text) else script.text
        completion = _Completion(wire, request, script, text, self.fake._new_id())
        if request.stream:
            self._stream(completion)
        else:
            self._send_json_reply(completion)

    def _authorized(self, wire: Wire, headers: Mapping[str, str]) -> bool:
        key = self.fake.api_key
        # Anthropic takes `x-api-key`, and also a Bearer token: SDK 2.x sends its api_key that way.
        bearer = headers.get("authorization") == f"Bearer {key}"
        return key is None or bearer or (wire == "anthropic" and headers.get("x-api-key") == key)

    # responses
    def _start(self, status: int, content_type: str, headers: Mapping[str, str], length: int | None) -> None:
        self.send_response(status, _PHRASES.get(status))
        self.send_header("content-type", content_type)
        if length is None:
            self.send_header("transfer-encoding", "chunked")
            self.send_header("cache-control", "no-cache")
        else:
            self.send_header("content-length", str(length))
        request_id = f"req_fake{self.fake._new_id()}"
        self.send_header("request-id" if self._wire == "anthropic" else "x-request-id", request_id)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        if not isinstance(body, bytes):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        else:
            data = body
        self._start(status, "application/json", headers, len(data))
        self.wfile.write(data)

    def _send_error(self, wire: Wire, error: Error) -> None:
        headers = dict(error.headers)
        if error.retry_after is not None:
            headers["retry-after"] = f"{error.retry_after:g}"
        message = error.message or _PHRASES.get(error.status) or self.responses.get(error.status, ("Error",))[0]
        body = error.body if error.body is not None else error_body(wire, error.status, message, error.type, error.code)
        self._send_json(error.status, body, headers)

    def _send_json_reply(self, completion: _Completion) -> None:
        reply = completion.reply
        data = json.dumps(completion.json_body()).encode()
        self._start(200, "application/json", reply.headers, len(data))
        if reply.accept_then_silent:
            self._sleep(reply.stall_seconds)
            raise _Aborted
        if reply.stall_after is not None:
            self._sleep(reply.stall_seconds)
        if reply.cut_after is not None:
            self.wfile.write(data[: len(data) // 2])
            raise _Aborted
        self.wfile.write(data)

    def _stream(self, completion: _Completion) -> None:
        reply, frames = completion.reply, completion.frames()
        self._start(200, "text/event-stream; charset=utf-8", reply.headers, None)
        if reply.accept_then_silent:
            self._sleep(reply.stall_seconds)
            raise _Aborted
        self._write_chunks(frames.preamble)
        for index, delta in enumerate([*frames.deltas, None]):
            if reply.stall_after == index:
                self._sleep(reply.stall_seconds)
            if reply.raw_after is not None and reply.raw_after[0] == index:
                self._write_chunks([reply.raw_after[1]])  # malformed JSON, invalid UTF-8: whatever a test needs
            if reply.error_after == index:
                self._write_chunks([frames.error])
                return self._end_body()
            if reply.cut_after == index:
                raise _Aborted
            if delta is not None:
                if index:
                    self._sleep(reply.delay)
                self._write_chunks([delta])
        self._write_chunks(frames.finish)
        if not reply.no_terminator:
            self._write_chunks(frames.terminator)
        self._end_body()

    def _write_chunks(self, events: list[bytes]) -> None:
        for data in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_body(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _sleep(self, seconds: float) -> None:
        """Wait, unless the server closes meanwhile: then drop the connection."""
        if seconds > 0 and self.fake._closing.wait(seconds):
            raise _Aborted

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            if self.close_connection:
                _shutdown(self.connection)


def _models_body(wire: Wire, models: list[str]) -> dict[str, Any]:
    if wire == "anthropic":
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in models]
        first, last = (models[0], models[-1]) if models else (None, None)
        return {"data": data, "has_more": False, "first_id": first, "last_id": last}
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]}


def _invalid(wire: Wire, body: Any) -> str | None:
    """What the real API would reject with a 400, in its words (roughly)."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    for name in ("model", "messages") + (("max_tokens",) if wire == "anthropic" else ()):
        if name not in body:
            return f"{name}: Field required" if wire == "anthropic" else f"Missing required parameter: '{name}'."
    return None
